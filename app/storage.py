"""Content-addressed file store under SAOY_DATA_DIR/files.

Files are named by their sha256 and written atomically (temporary file, fsync,
rename), so a crash never leaves a half-written file under a real name and the
database can refer to files by hash alone.  Files are never modified in place.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


class FileTooLargeError(ValueError):
    """The stream exceeded the configured limit; nothing was kept."""


class FileStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream(iter([data]))[0]

    def put_file(self, fileobj: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        return self.put_stream(iter(lambda: fileobj.read(CHUNK), b""), max_bytes)

    def put_stream(
        self, chunks: Iterator[bytes], max_bytes: int | None = None
    ) -> tuple[str, int]:
        """Store chunks; returns (sha256, size).  Refuses past ``max_bytes`` while streaming."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileTooLargeError(size)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, final)
                _fsync_dir(final.parent)
            return sha, size
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_store() -> FileStore:
    """The store of the running app."""
    from flask import current_app

    return current_app.extensions["saoy_files"]
