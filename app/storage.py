"""Content-addressed file store under SAOY_DATA_DIR/files.

Files are named by their sha256 and written atomically (temporary file, fsync,
rename), so a crash never leaves a half-written file under a real name and the
database can refer to files by hash alone.  Files are never modified in place.  A file
written by a unit of work that then rolled back is referred to by no row: ``sweep``
moves such files aside once they are old (``saoy files sweep``, daily).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from app import timing

CHUNK = 1024 * 1024


class FileTooLargeError(ValueError):
    """The stream exceeded the configured limit; nothing was kept."""


HEX = frozenset("0123456789abcdef")
SHA256_HEX_LENGTH = 64


def is_hash(name: str) -> bool:
    """A file-store name: 64 lowercase hex digits (a SHA-256)."""
    return len(name) == SHA256_HEX_LENGTH and set(name) <= HEX


class FileStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not is_hash(sha256):
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
        with timing.span("store"):
            return self._put_stream(chunks, max_bytes)

    def _put_stream(self, chunks: Iterator[bytes], max_bytes: int | None) -> tuple[str, int]:
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
                os.utime(final)  # in use again: young for ``sweep`` until its unit commits
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, final)
                _fsync_dir(final.parent)
            return sha, size
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def orphans(self, referenced: Callable[[str], set[str]],
                older_than_seconds: float) -> Iterator[Path]:
        """Files no row refers to (``referenced(prefix)``: the hashes with that two-digit
        prefix that rows hold), untouched for ``older_than_seconds`` — what a unit of
        work wrote before it rolled back, never a file a unit is using (it is young)."""
        cutoff = time.time() - older_than_seconds
        for bucket in sorted(p for p in self.root.iterdir() if p.is_dir() and p != self.tmp):
            wanted = referenced(bucket.name)
            for path in bucket.rglob("*"):
                if path.is_file() and path.name not in wanted and path.stat().st_mtime < cutoff:
                    yield path

    def sweep(self, referenced: Callable[[str], set[str]], quarantine: Path,
              older_than_seconds: float) -> tuple[list[str], int]:
        """Move the ``orphans`` into ``quarantine`` (kept, not deleted) and remove the
        temporary files a crash left behind.  Returns (hashes moved, temporaries removed)."""
        moved: list[str] = []
        for path in list(self.orphans(referenced, older_than_seconds)):
            quarantine.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, quarantine / path.name)
            except FileNotFoundError:
                continue  # another process swept it first
            moved.append(path.name)
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.tmp.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return moved, removed

    def read_bytes(self, sha256: str) -> bytes:
        with timing.span("read"):
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
