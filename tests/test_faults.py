"""Faults that happen on a working day, against real parts: the database connection killed
in the middle of a transition, every connection dropped (a restarted server), the
timestamp service down or slow, the disk full while a file is stored, the jobs worker
killed while it sends.  After each: the request is before or after, never between; the
files the failed work wrote are orphans the sweep finds, none that a row refers to is
missing; the audit chain verifies; the user read a clear message, not a 500."""
from __future__ import annotations

import contextlib
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from modules.registers.services import number_shown
from tests.conftest import engine_of, user_named
from tests.pdfs import sized_scan_pdf
from tests.servers import free_port
from tests.test_copies import _submitted, state_of

ROOT = Path(__file__).resolve().parent.parent


def _stored(app) -> set[str]:
    root = Path(app.config["DATA_DIR"]) / "files"
    return {p.name for p in root.rglob("*") if p.is_file() and "tmp" not in
            p.relative_to(root).parts}


def _orphans(app) -> set[str]:
    from app.extensions import db
    from app.ops import referenced_files
    from app.storage import file_store

    with app.app_context():
        found = {p.name for p in file_store().orphans(
            lambda prefix: referenced_files(app, db.session, prefix), 0)}
        db.session.remove()
    return found


def _referenced_all_present(app) -> None:
    from app.extensions import db
    from app.ops import referenced_files
    from app.storage import file_store

    with app.app_context():
        store = file_store()
        for prefix in (f"{i:02x}" for i in range(256)):
            for sha in referenced_files(app, db.session, prefix):
                assert store.exists(sha), f"referenced file {sha} is missing"
        db.session.remove()


def _chain_ok(db_session) -> None:
    from app.audit import verify_chain

    db_session.expire_all()
    assert verify_chain(db_session).ok


def _events(db_session, pk: int, event_name: str) -> int:
    from app.audit import AuditEvent

    return len(db_session.scalars(select(AuditEvent.id).where(
        AuditEvent.object_type == "CopyRequest", AuditEvent.object_id == pk,
        AuditEvent.event == event_name)).all())


# --- the database ---------------------------------------------------------------------

@contextlib.contextmanager
def connection_killed_at_commit(app):
    """The server kills the application's connection just before its COMMIT reaches it
    (pg_terminate_backend from another connection): the middle of a transition."""
    from app.extensions import db

    admin = engine_of(app)
    fired = []

    def kill(conn):
        if fired:
            return
        fired.append(True)
        pid = conn.connection.dbapi_connection.get_backend_pid()
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", kill)
    try:
        yield fired
    finally:
        event.remove(engine, "commit", kill)


def _postgresql_only(app) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("PostgreSQL's own connection kill")


def test_connection_killed_in_the_middle_of_signing(app, api, db_session, doc_type):
    _postgresql_only(app)
    pk = _submitted(app, db_session, doc_type)
    before = _stored(app)
    rest, headers = api("leader.a")
    with connection_killed_at_commit(app) as fired:
        r = rest.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                      environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert fired and r.status_code == 503, (r.status_code, r.get_data(as_text=True)[:300])
    assert "Cơ sở dữ liệu" in r.get_json()["message"]
    db_session.expire_all()
    assert state_of(db_session, pk).state.value == "awaiting_signature"
    assert _events(db_session, pk, "copy_sign") == 0
    written = _stored(app) - before
    assert written and written <= _orphans(app)  # the signed version: an orphan, found
    _referenced_all_present(app)
    _chain_ok(db_session)
    again = rest.post(f"/api/v1/copy/{pk}/sign", headers=headers)  # the pool reconnected
    assert again.status_code == 200 and again.get_json()["state"] == "signed"


def test_connection_killed_while_sealing_uses_no_number(app, api, db_session, doc_type,
                                                        register_of):
    _postgresql_only(app)
    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    clerk, ch = api("clerk.a")
    for event_name in ("sign", "forward"):
        assert leader.post(f"/api/v1/copy/{pk}/{event_name}", headers=lh).status_code == 200
    register = register_of("A")
    next_number = number_shown(db_session, register)
    with connection_killed_at_commit(app):
        r = clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch,
                       json={"register_id": register.id})
    assert r.status_code == 503
    db_session.expire_all()
    assert number_shown(db_session, register_of("A")) == next_number
    assert state_of(db_session, pk).state.value == "awaiting_seal"
    _chain_ok(db_session)
    sealed = clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch, json={"register_id": register.id})
    assert sealed.status_code == 200 and sealed.get_json()["number"] == str(next_number)


def test_every_connection_dropped_the_next_requests_are_served(app, api, login):
    """What a restart of PostgreSQL does to the pool: every connection gone at once."""
    _postgresql_only(app)
    rest, headers = api("officer.a")
    web = login("officer.a")
    assert rest.get("/api/v1/copy/", headers=headers).status_code == 200
    admin = engine_of(app)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        conn.commit()
    assert rest.get("/api/v1/copy/", headers=headers).status_code == 200
    assert web.get("/copies/list/").status_code == 200


# --- the timestamp service --------------------------------------------------------------

class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        time.sleep(3)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def slow_tsa():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()


@pytest.mark.parametrize("which", ["down", "slow"])
def test_timestamp_service_down_or_slow_refuses_and_keeps_the_number(
        app, api, db_session, doc_type, register_of, monkeypatch, slow_tsa, which):
    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    clerk, ch = api("clerk.a")
    for event_name in ("sign", "forward"):
        assert leader.post(f"/api/v1/copy/{pk}/{event_name}", headers=lh).status_code == 200
    url = slow_tsa if which == "slow" else f"http://127.0.0.1:{free_port()}/tsa"
    monkeypatch.setitem(app.config, "TSA_URL", url)
    monkeypatch.setitem(app.config, "TSA_TIMEOUT", 1)
    register = register_of("A")
    next_number = number_shown(db_session, register)
    started = time.monotonic()
    r = clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch, json={"register_id": register.id},
                   environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert time.monotonic() - started < 10  # the timeout, not the server's patience
    assert r.status_code == 503 and "dấu thời gian" in r.get_json()["message"]
    db_session.expire_all()
    assert state_of(db_session, pk).state.value == "awaiting_seal"
    assert number_shown(db_session, register_of("A")) == next_number
    _chain_ok(db_session)
    monkeypatch.setitem(app.config, "TSA_URL", None)
    sealed = clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch, json={"register_id": register.id})
    assert sealed.status_code == 200 and sealed.get_json()["number"] == str(next_number)


# --- the token ---------------------------------------------------------------------------

def test_a_pulled_token_is_a_clear_refusal_then_signs_once_it_is_back(tmp_path):
    """The leader's key is on a token that is pulled out.  SoftHSM discovers tokens only
    when its library starts, and a pulled token disturbs every later session of the
    process, so each phase runs in a server process of its own (``tests.token_fault``):
    pulled — a clear refusal, nothing changed; put back and restarted — it signs."""
    import json

    from tests.softhsm import softhsm_lib

    if softhsm_lib() is None:
        pytest.skip("SoftHSM2 is installed by `make test`")

    def phase(name: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "tests.token_fault", str(tmp_path), name],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    pulled = phase("pull")
    assert 400 <= pulled["status"] < 500 or pulled["status"] == 503, pulled
    assert "chưa được kết nối" in pulled["message"] and "/" not in pulled["message"]
    assert pulled["state"] == "awaiting_signature" and pulled["chain_ok"]
    back = phase("back")
    assert back["status"] == 200 and back["state"] == "signed" and back["chain_ok"], back


# --- the disk ---------------------------------------------------------------------------

@pytest.fixture()
def small_disk(app, tmp_path):
    """The file store on a 1 MB tmpfs volume of its own (a full disk on demand)."""
    from app.storage import FileStore

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:100]}")
    saved = app.extensions["saoy_files"]
    app.extensions["saoy_files"] = FileStore(mount)
    try:
        yield mount
    finally:
        app.extensions["saoy_files"] = saved
        subprocess.run(["umount", str(mount)], capture_output=True)


def _fill(mount: Path) -> Path:
    filler = mount / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_a_full_disk_refuses_intake_and_signing_and_leaves_nothing(
        app, api, login, db_session, doc_type, small_disk):
    from modules.copies.models import CopyRequest

    officer = login("officer.a")
    count = db_session.scalar(select(func.count(CopyRequest.id)))
    r = officer.post("/copies/intake", data={
        "document_type_id": doc_type.id, "identity_number": "079203001234",
        "scan": (io.BytesIO(sized_scan_pdf(int(1.5 * 2**20))), "lon.pdf")},
        content_type="multipart/form-data", headers={"Accept-Language": "vi"})
    assert r.status_code == 503, r.status_code
    assert "kho tệp" in r.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.scalar(select(func.count(CopyRequest.id))) == count
    assert not any((small_disk / "tmp").iterdir())  # no half-written temporary file

    pk = _submitted(app, db_session, doc_type)  # a small scan still fits
    filler = _fill(small_disk)
    rest, headers = api("leader.a")
    r = rest.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                  environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert r.status_code == 503 and "kho tệp" in r.get_json()["message"]
    db_session.expire_all()
    assert state_of(db_session, pk).state.value == "awaiting_signature"
    assert not any((small_disk / "tmp").iterdir())
    _chain_ok(db_session)
    filler.unlink()
    assert rest.post(f"/api/v1/copy/{pk}/sign", headers=headers).status_code == 200


# --- the jobs worker --------------------------------------------------------------------

class _Sink:
    """An SMTP server (aiosmtpd) that holds each message a few seconds before answering:
    long enough to kill the sender in the middle of sending."""

    def __init__(self, hold: float):
        from aiosmtpd.controller import Controller

        self.received: list[str] = []
        self.hold = hold
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                import asyncio
                import email

                await asyncio.sleep(sink.hold)
                if server.transport is None or server.transport.is_closing():
                    return "451 sender gone"  # never accepted: the sender died first
                message = email.message_from_bytes(envelope.content)
                sink.received.append(message["Message-ID"])
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self):
        self.controller.stop()


def _worker(app, port: int) -> subprocess.Popen:
    env = {**os.environ, "SAOY_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SAOY_DATA_DIR": app.config["DATA_DIR"], "SAOY_SMTP_HOST": "127.0.0.1",
           "SAOY_SMTP_PORT": str(port), "SAOY_SMTP_SECURITY": "none",
           "SAOY_MAIL_FROM": "saoy@example.vn", "SAOY_OUTBOX_INTERVAL": "1",
           "SAOY_OUTBOX_LEASE": "3", "SAOY_OUTBOX_BACKOFF": "1",
           "SAOY_SECRET_KEY": app.config["SECRET_KEY"], "SAOY_UPDATE_PERMS": "0"}
    return subprocess.Popen([sys.executable, "-m", "app.console", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_worker_killed_while_sending_sends_once_when_restarted(app, db_session):
    from app.notifications.models import Channel, Message, Status
    from app.notifications.services import Recipient, notify
    from app.transactions import atomic

    sink = _Sink(hold=4)
    try:
        officer = user_named(db_session, "officer.a")
        with app.test_request_context(), atomic(db_session):
            notify(db_session, Recipient(email="cong.dan@example.vn"), "copy_delivered",
                   {"office": "UBND", "document_type": "Giấy khai sinh", "link": "x",
                    "number": "1", "book": "1", "verify_url": "x"},
                   office_id=officer.office_id, channels=(Channel.email,))
        message = db_session.scalars(select(Message).order_by(Message.id.desc())).first()
        first = _worker(app, sink.port)
        try:
            assert _wait(lambda: _status(db_session, message.id) is Status.sending, 60), \
                "the worker did not start sending"
            time.sleep(1)  # in the middle of the SMTP conversation
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
        ours = f"<{message.idempotency_key}@"  # other tests may have left e-mails queued
        assert not [m for m in sink.received if m.startswith(ours)]  # died before accepted
        sink.hold = 0
        second = _worker(app, sink.port)
        try:
            assert _wait(lambda: _status(db_session, message.id) is Status.sent, 60)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(20)
        time.sleep(2)
        assert len([m for m in sink.received if m.startswith(ours)]) == 1
    finally:
        sink.close()


def _status(db_session, message_id: int):
    from app.notifications.models import Message

    db_session.expire_all()
    return db_session.get(Message, message_id).status


def test_the_sweep_moves_orphans_aside_and_keeps_every_referenced_file(app, tmp_path):
    from app.extensions import db
    from app.ops import referenced_files
    from app.storage import FileStore

    store = FileStore(tmp_path / "files")
    kept = store.put_bytes(b"%PDF-1.7 referenced")
    orphan = store.put_bytes(b"%PDF-1.7 written by a unit that rolled back")
    (store.tmp / "crash.tmp").write_bytes(b"half")
    old = time.time() - 7200
    for path in (store.path(kept), store.path(orphan), store.tmp / "crash.tmp"):
        os.utime(path, (old, old))
    with app.app_context():
        real = referenced_files(app, db.session, orphan[:2])
        assert orphan not in real
        moved, removed = store.sweep(lambda prefix: {kept} if prefix == kept[:2] else set(),
                                     tmp_path / "orphans", 3600)
        db.session.remove()
    assert moved == [orphan] and removed == 1
    assert store.exists(kept) and not store.exists(orphan)
    assert (tmp_path / "orphans" / orphan).read_bytes().endswith(b"rolled back")
    store.put_bytes(b"%PDF-1.7 referenced")  # written again: young again, safe from a sweep
    assert time.time() - store.path(kept).stat().st_mtime < 60

