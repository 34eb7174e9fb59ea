"""Operations: first-time setup, health, worker heartbeats, backup and restore.

A backup is consistent by construction: the database is dumped first, then the file
store is copied — files are written before the rows that name them and are never
changed or deleted, so every file the dump refers to is already there.  The manifest
lists the SHA-256 of every file; a restore checks all of them and the audit chain.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.modules import resolve, specs_of
from app.storage import is_hash
from app.timeutil import utcnow

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30
#: What is copied from the data folder (the database file apart): files, keys, secrets.
DATA_PARTS = ("files", "keystore", "pki", "secret_key")


# --- heartbeats and health ---------------------------------------------------------------

def heartbeat_dir(app: Flask) -> Path:
    return Path(app.config["DATA_DIR"]) / "heartbeats"


def beat() -> None:
    """A worker says it is alive (a file per process in the shared data folder)."""
    folder = heartbeat_dir(current_app)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{socket.gethostname()}-{os.getpid()}"
    path.write_text(utcnow().isoformat())


def health(app: Flask) -> tuple[dict[str, Any], bool]:
    """What monitoring needs, no secrets: database, file store, workers, outbox, signers."""
    from app.extensions import db
    from app.notifications.models import Message, Status

    report: dict[str, Any] = {}
    ok = True
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception:  # noqa: BLE001 - reported, not raised
        report["database"] = "unavailable"
        ok = False
    store = app.extensions["saoy_files"]
    probe = store.tmp / f".health-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
        report["file_store"] = "ok"
    except OSError:
        report["file_store"] = "not writable"
        ok = False
    beats = [p.stat().st_mtime for p in heartbeat_dir(app).glob("*")] \
        if heartbeat_dir(app).is_dir() else []
    age = round(time.time() - max(beats)) if beats else None
    report["worker"] = {"last_heartbeat_seconds": age,
                        "alive": age is not None and age < 3 * HEARTBEAT_SECONDS}
    if report["database"] == "ok":
        counts = dict(db.session.execute(select(Message.status, func.count(Message.id))
                                         .group_by(Message.status)).all())
        oldest = db.session.scalar(select(func.min(Message.next_attempt_at)).where(
            Message.status.in_([Status.queued, Status.failed])))
        report["outbox"] = {
            "queued": counts.get(Status.queued, 0), "failed": counts.get(Status.failed, 0),
            "dead": counts.get(Status.dead, 0),
            "oldest_due_seconds": round((utcnow() - oldest).total_seconds())
            if oldest else None}
        checks_ok = True
        for spec in specs_of(app):  # each module's own checks (signing: the signers)
            for name, check in spec.health.items():
                report[name], fine = resolve(check)()
                checks_ok = checks_ok and fine
        db.session.rollback()
    else:
        checks_ok = True
    degraded = not report["worker"]["alive"] or report.get("outbox", {}).get("dead") or \
        not checks_ok
    report["status"] = "down" if not ok else "degraded" if degraded else "ok"
    return report, ok


# --- first-time setup ----------------------------------------------------------------------

def init(admin_username: str | None, admin_email: str | None,
         admin_password: str | None) -> list[str]:
    """Roles, reference data and the first administrator (idempotent)."""
    from app.seed import seed_reference_data

    done = [f"reference data: {seed_reference_data()} new rows"]
    sm = current_app.appbuilder.sm
    if admin_username and sm.find_user(username=admin_username) is None:
        if not admin_password:
            raise ValueError("the first administrator needs a password")
        from app.passwords import password_problem

        if problem := password_problem(admin_password, username=admin_username):
            raise ValueError(problem)
        user = sm.add_user(admin_username, "Quản trị", "Hệ thống",
                           admin_email or f"{admin_username}@localhost",
                           [sm.find_role("Admin")], admin_password)
        if not user:
            raise ValueError("the administrator could not be created")
        done.append(f"administrator {admin_username} created")
    return done


# --- backup and restore --------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
            "-U", parsed.username or "postgres"]
    return args + ["-d", parsed.database], env


def backup(app: Flask, target: Path) -> dict[str, Any]:
    """Database dump, then the data folder's files, then the manifest (last: a backup
    without its manifest is incomplete, and restore refuses it)."""
    target.mkdir(parents=True, exist_ok=False)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    data_dir = Path(app.config["DATA_DIR"])
    if url.startswith("sqlite"):
        source = sqlite3.connect(make_url(url).database)
        dest = sqlite3.connect(target / "database.sqlite3")
        with dest:
            source.backup(dest)  # a consistent copy while others write
        source.close()
        dest.close()
        kind = "sqlite"
    else:
        args, env = _pg_args(url)
        subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file",
                        str(target / "database.pgdump"), *args], check=True, env=env)
        kind = "postgresql"
    for part in DATA_PARTS:
        source_path = data_dir / part
        if source_path.is_dir():
            shutil.copytree(source_path, target / "data" / part,
                            ignore=shutil.ignore_patterns("tmp", "*.tmp"))
        elif source_path.is_file():
            (target / "data").mkdir(exist_ok=True)
            shutil.copy2(source_path, target / "data" / part)
    files = {str(p.relative_to(target)): _sha256(p) for p in sorted(target.rglob("*"))
             if p.is_file()}
    manifest = {"created_at": utcnow().isoformat(), "database": kind,
                "revision": _alembic_revision(), "files": files}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _alembic_revision() -> str | None:
    from app.extensions import db

    try:
        return db.session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001
        return None


def restore(app: Flask, source: Path) -> dict[str, Any]:
    """Rebuild this (empty) server from a backup, then check every file and the chain."""
    from app.audit import verify_chain
    from app.extensions import db

    manifest = json.loads((source / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        if _sha256(source / name) != digest:
            raise ValueError(f"the backup is damaged: {name} does not match its manifest")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    data_dir = Path(app.config["DATA_DIR"])
    db.session.remove()
    db.engine.dispose()
    if manifest["database"] == "sqlite":
        if not url.startswith("sqlite"):
            raise ValueError("a SQLite backup restores into a SQLite server")
        shutil.copy2(source / "database.sqlite3", make_url(url).database)
    else:
        args, env = _pg_args(url)
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", *args,
                        str(source / "database.pgdump")], check=True, env=env)
    if (source / "data").is_dir():
        for part in (source / "data").iterdir():
            destination = data_dir / part.name
            if part.is_dir():
                shutil.copytree(part, destination, dirs_exist_ok=True)
            else:
                shutil.copy2(part, destination)
    bad = [p.name for p in (data_dir / "files").rglob("*")
           if p.is_file() and "tmp" not in p.relative_to(data_dir).parts
           and is_hash(p.name) and _sha256(p) != p.name]
    chain = verify_chain(db.session)
    db.session.rollback()
    return {"files_checked": sum(1 for k in manifest["files"] if k.startswith("data/files/")),
            "files_damaged": bad, "audit_events": chain.checked, "audit_ok": chain.ok,
            "revision": manifest["revision"], "created_at": manifest["created_at"]}


def referenced_files(app: Flask, session, prefix: str) -> set[str]:
    """The hashes starting with ``prefix`` that any row refers to: each module's, and the
    audit log's (a replaced scan stays: its history names it)."""
    from sqlalchemy import select

    from app.audit import AuditEvent

    found = set(session.scalars(select(AuditEvent.file_sha256).where(
        AuditEvent.file_sha256.like(f"{prefix}%"))))
    for spec in specs_of(app):
        if spec.file_refs:
            found.update(resolve(spec.file_refs)(session, prefix))
    return found


def sweep_files(app: Flask, older_than_hours: float = 24) -> tuple[list[str], int]:
    """Orphans (written by units of work that rolled back) to DATA_DIR/orphans; stale
    temporary files removed.  Nothing is deleted that a row refers to."""
    from app.extensions import db
    from app.storage import file_store

    with app.app_context():
        quarantine = Path(app.config["DATA_DIR"]) / "orphans"
        return file_store().sweep(lambda prefix: referenced_files(app, db.session, prefix),
                                  quarantine, older_than_hours * 3600)


def sweep_job() -> None:
    from flask import current_app

    moved, removed = sweep_files(current_app._get_current_object())
    if moved or removed:
        log.warning("file store: %s orphan(s) moved to orphans/, %s temporary file(s) removed",
                    len(moved), removed)
