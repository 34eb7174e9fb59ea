"""Notifications with real peers: aiosmtpd, a local SMS gateway, two dispatchers."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.conftest import BACKENDS, build_app, migrate_and_seed
from tests.servers import SmsGateway, SmtpServer, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=BACKENDS)
def outbox_app(request, backend_url_factory, tmp_path_factory):
    """Its own database: dispatching must only see this module's messages."""
    url = backend_url_factory(request.param)
    app = build_app(url, tmp_path_factory.mktemp("outbox"))
    migrate_and_seed(app)
    return app


@pytest.fixture()
def session(outbox_app):
    """Each test starts with an empty outbox (no app context kept pushed)."""
    from sqlalchemy.orm import Session

    from app.notifications.models import InboxItem, Message
    from tests.conftest import engine_of

    s = Session(bind=engine_of(outbox_app))
    s.query(InboxItem).delete()
    s.query(Message).delete()
    s.commit()
    yield s
    s.rollback()
    s.close()


@pytest.fixture()
def gateway():
    gw = SmsGateway()
    yield gw
    gw.close()


def _sms(session, text="Lịch hẹn ABC lúc 08:00", phone="0912 345 678", office_id=None):
    from app.notifications.models import Channel
    from app.notifications.services import enqueue

    message = enqueue(session, kind="test_message", channel=Channel.sms, recipient=phone,
                      context={"text": text}, office_id=office_id)
    session.commit()
    return message


def _reload(session, message):
    from app.notifications.models import Message

    session.expire_all()
    return session.get(Message, message.id)


def _make_due(session, message):
    from app.notifications.models import Message

    session.execute(update(Message).where(Message.id == message.id)
                    .values(next_attempt_at=dt.datetime(2000, 1, 1)))
    session.commit()


def sms_dispatcher(app, gateway, **extra):
    from app.notifications.dispatcher import dispatcher_for_app

    return dispatcher_for_app(app, SMS_GATEWAY_URL=gateway.url, SMS_GATEWAY_TOKEN="tok-123",
                              SMS_TIMEOUT=1, **extra)


# --- SMS gateway -------------------------------------------------------------------


def test_sms_goes_to_the_gateway_with_normalised_phone_and_key(outbox_app, session, gateway):
    from app.notifications.models import Status

    message = _sms(session)
    assert sms_dispatcher(outbox_app, gateway).drain() == 1
    request = gateway.requests[0]
    assert request.body == {"phone": "84912345678", "text": "SaoY: Lịch hẹn ABC lúc 08:00",
                            "id": message.idempotency_key}
    assert request.headers["Authorization"] == "Bearer tok-123"
    row = _reload(session, message)
    assert row.status is Status.sent and row.attempts == 1 and row.provider_message_id == "gw-1"


def test_unaccented_setting_keeps_the_meaning(outbox_app, session, gateway):
    _sms(session, text="Đến Ủy ban nhận bản sao đã chứng thực")
    sms_dispatcher(outbox_app, gateway, SMS_UNACCENTED=True).drain()
    assert gateway.requests[0].body["text"] == "SaoY: Den Uy ban nhan ban sao da chung thuc"


def test_server_errors_are_retried_with_exponential_backoff(outbox_app, session, gateway):
    from app.notifications.models import Status

    gateway.script = [500, 503, 502]
    message = _sms(session)
    dispatcher = sms_dispatcher(outbox_app, gateway, OUTBOX_BACKOFF_SECONDS=30,
                                OUTBOX_MAX_ATTEMPTS=5)
    delays = []
    for attempt in (1, 2, 3):
        before = dt.datetime.utcnow()
        dispatcher.drain()
        row = _reload(session, message)
        assert row.status is Status.failed and row.attempts == attempt
        delays.append(round((row.next_attempt_at - before).total_seconds() / 30))
        assert dispatcher.drain() == 0  # not due yet: nothing is sent early
        _make_due(session, message)
    assert delays == [1, 2, 4]
    dispatcher.drain()
    row = _reload(session, message)
    assert row.status is Status.sent and row.attempts == 4 and row.last_error is None
    assert len(gateway.requests) == 4
    assert len(set(gateway.ids())) == 1  # every attempt carries the same idempotency key


def test_client_error_is_permanent_and_dead_at_once(outbox_app, session, gateway):
    from app.notifications.models import Status

    gateway.script = [400]
    message = _sms(session)
    sms_dispatcher(outbox_app, gateway).drain()
    row = _reload(session, message)
    assert row.status is Status.dead and row.attempts == 1 and "400" in row.last_error


def test_timeouts_retry_then_die_after_max_attempts(outbox_app, session, gateway):
    from app.notifications.models import Status

    gateway.script = [("sleep", 2), ("sleep", 2)]
    message = _sms(session)
    dispatcher = sms_dispatcher(outbox_app, gateway, OUTBOX_MAX_ATTEMPTS=2)
    dispatcher.drain()
    row = _reload(session, message)
    assert row.status is Status.failed and "unreachable" in row.last_error
    _make_due(session, message)
    dispatcher.drain()
    assert _reload(session, message).status is Status.dead


def test_gateway_down_then_back_delivers(outbox_app, session):
    from app.notifications.dispatcher import dispatcher_for_app
    from app.notifications.models import Status

    message = _sms(session)
    dead_url = f"http://127.0.0.1:{free_port()}/sms"
    dispatcher_for_app(outbox_app, SMS_GATEWAY_URL=dead_url, SMS_TIMEOUT=1).drain()
    assert _reload(session, message).status is Status.failed
    gateway = SmsGateway()
    try:
        _make_due(session, message)
        sms_dispatcher(outbox_app, gateway).drain()
        assert _reload(session, message).status is Status.sent
        assert gateway.ids() == [message.idempotency_key]
    finally:
        gateway.close()


def test_two_dispatchers_send_each_of_1000_messages_exactly_once(outbox_app, session, gateway):
    from app.notifications.models import Channel, Message, Status
    from app.notifications.services import enqueue

    for i in range(1000):
        enqueue(session, kind="test_message", channel=Channel.sms, recipient="0987654321",
                context={"text": f"tin {i}"})
    session.commit()
    dispatchers = [sms_dispatcher(outbox_app, gateway, OUTBOX_BATCH=25) for _ in range(2)]
    handled = [0, 0]

    def run(i):
        handled[i] = dispatchers[i].drain(max_rounds=10_000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = gateway.ids()
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert sum(handled) == 1000
    if outbox_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert min(handled) > 0  # SKIP LOCKED: both really worked side by side
    assert session.scalar(select(func.count(Message.id))
                          .where(Message.status == Status.sent)) == 1000


def test_crash_between_sending_and_recording_resends_with_same_key(outbox_app, session, gateway):
    """Kill -9 the dispatcher while the gateway holds its answer: at-least-once."""
    from app.notifications.models import Status

    message = _sms(session)
    release = threading.Event()
    gateway.script = [("hold", release)]
    env = {**os.environ, "SAOY_DATABASE_URL": outbox_app.config["SQLALCHEMY_DATABASE_URI"],
           "SAOY_DATA_DIR": outbox_app.config["DATA_DIR"], "SAOY_SMS_GATEWAY_URL": gateway.url,
           "SAOY_SCHEDULER": "0"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "run", "saoy",
                               "dispatch-outbox", "--once"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert gateway.received.wait(60), "the worker never reached the gateway"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
    row = _reload(session, message)
    assert row.status is Status.sending  # the provider has it; we never recorded it
    # Within the lease nobody touches it; after the lease it is claimed again.
    assert sms_dispatcher(outbox_app, gateway).drain() == 0
    sms_dispatcher(outbox_app, gateway, OUTBOX_LEASE_SECONDS=0).drain()
    row = _reload(session, message)
    assert row.status is Status.sent
    assert gateway.ids() == [message.idempotency_key, message.idempotency_key]


# --- e-mail ------------------------------------------------------------------------


def _email(session, outbox_app, pdf: bytes):
    from app.notifications.models import Channel
    from app.notifications.services import Attachment, enqueue

    sha = outbox_app.extensions["saoy_files"].put_bytes(pdf)
    message = enqueue(session, kind="copy_delivered", channel=Channel.email,
                      recipient="nguyen.thi.mai@example.vn",
                      context={"office": "UBND Phường Sài Gòn", "document_type": "Giấy khai sinh",
                               "number": 15, "book": "01/2026-SCTĐT/BS",
                               "verify_url": "http://127.0.0.1:5000/verify/abc"},
                      attachments=[Attachment(sha, "ban-sao-chung-thuc.pdf")])
    session.commit()
    return message


def test_email_with_vietnamese_text_and_the_pdf_attached(outbox_app, session):
    from app.notifications.dispatcher import dispatcher_for_app
    from app.notifications.models import Status

    smtp = SmtpServer()
    try:
        pdf = b"%PDF-1.7\n" + os.urandom(4096) + b"\n%%EOF\n"
        message = _email(session, outbox_app, pdf)
        dispatcher_for_app(outbox_app, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port,
                           SMTP_SECURITY="none",
                           MAIL_FROM="UBND Phường Sài Gòn <chungthuc@saigon.example>").drain()
        assert _reload(session, message).status is Status.sent
        (mail,) = smtp.messages
        assert mail["Subject"] == "Bản sao điện tử chứng thực từ bản chính — số 15"
        assert "UBND Phường Sài Gòn" in str(mail["From"])
        assert message.idempotency_key in mail["Message-ID"]
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert "Giấy khai sinh" in text and "quyển số 01/2026-SCTĐT/BS" in text
        assert "<b>Giấy khai sinh</b>" in html
        (attachment,) = list(mail.iter_attachments())
        assert attachment.get_filename() == "ban-sao-chung-thuc.pdf"
        assert attachment.get_content() == pdf
    finally:
        smtp.close()


def test_smtp_down_then_back_delivers(outbox_app, session):
    from app.notifications.dispatcher import dispatcher_for_app
    from app.notifications.models import Status

    port = free_port()
    config = dict(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none", SMTP_TIMEOUT=2)
    message = _email(session, outbox_app, b"%PDF-1.7 small")
    dispatcher_for_app(outbox_app, **config).drain()
    row = _reload(session, message)
    assert row.status is Status.failed and "SMTP unavailable" in row.last_error
    smtp = SmtpServer(port)
    try:
        _make_due(session, message)
        dispatcher_for_app(outbox_app, **config).drain()
        assert _reload(session, message).status is Status.sent
        assert len(smtp.messages) == 1
    finally:
        smtp.close()


# --- portal inbox, staff view, templates --------------------------------------------


def _citizen_id(session):
    from app.users import StaffUser

    return session.scalars(select(StaffUser.id).where(StaffUser.username == "citizen")).one()


def test_portal_inbox_with_unread_count(outbox_app, session):
    from app.notifications.dispatcher import dispatcher_for_app
    from app.notifications.services import Recipient, notify

    notify(session, Recipient(user_id=_citizen_id(session)), "test_message",
           {"text": "Hồ sơ của bạn đã được tiếp nhận"})
    session.commit()
    dispatcher_for_app(outbox_app).drain()
    web = outbox_app.test_client()
    web.post("/login/", data={"username": "citizen", "password": "saoy-demo"})
    home = web.get("/").get_data(as_text=True)
    assert 'id="saoy-unread">1<' in home
    assert "Hồ sơ của bạn đã được tiếp nhận" in web.get("/inbox/").get_data(as_text=True)
    web.post("/inbox/read")
    assert 'id="saoy-unread"' not in web.get("/").get_data(as_text=True)
    other = outbox_app.test_client()
    other.post("/login/", data={"username": "officer.a", "password": "saoy-demo"})
    page = other.get("/inbox/").get_data(as_text=True)
    assert "Hồ sơ của bạn đã được tiếp nhận" not in page


def test_staff_see_their_office_outbox_and_resend(outbox_app, session):
    from app.demo import OFFICE_A, OFFICE_B
    from app.notifications.models import Message, Status
    from app.offices.models import Office

    a = session.scalars(select(Office.id).where(Office.code == OFFICE_A)).one()
    b = session.scalars(select(Office.id).where(Office.code == OFFICE_B)).one()
    mine = _sms(session, text="thư của A", office_id=a)
    theirs = _sms(session, text="thư của B", office_id=b)
    session.execute(update(Message).values(status=Status.dead, attempts=8,
                                           last_error="gateway refused (400)"))
    session.commit()
    web = outbox_app.test_client()
    web.post("/login/", data={"username": "officer.a", "password": "saoy-demo"})
    html = web.get("/outboxview/list/").get_data(as_text=True)
    assert "gateway refused (400)" in html and "84912345678" in html
    assert web.get(f"/outboxview/show/{theirs.id}").status_code == 404
    assert web.post("/outboxview/action_post",
                    data={"action": "resend", "rowid": [theirs.id]}).status_code == 404
    assert web.post("/outboxview/action_post",
                    data={"action": "resend", "rowid": [mine.id]}).status_code == 302
    assert _reload(session, mine).status is Status.queued
    assert _reload(session, theirs).status is Status.dead


def test_admin_edits_a_template_and_new_messages_use_it(outbox_app, session):
    from app.notifications.models import Channel, MessageTemplate

    tpl = session.scalars(select(MessageTemplate).where(
        MessageTemplate.kind == "test_message", MessageTemplate.channel == Channel.sms,
        MessageTemplate.locale == "vi")).one()
    web = outbox_app.test_client()
    web.post("/login/", data={"username": "admin", "password": "saoy-demo"})
    bad = web.post(f"/messagetemplateview/edit/{tpl.id}",
                   data={"body": "{{ text ", "active": "y"})
    assert bad.status_code in (200, 302)
    session.expire_all()
    assert session.get(MessageTemplate, tpl.id).body == "SaoY: {{ text }}"
    web.post(f"/messagetemplateview/edit/{tpl.id}",
             data={"body": "UBND thông báo: {{ text }}", "active": "y"})
    session.expire_all()
    try:
        message = _sms(session, text="xin chào")
        assert message.body_text == "UBND thông báo: xin chào"
    finally:
        session.execute(update(MessageTemplate).where(MessageTemplate.id == tpl.id)
                        .values(body="SaoY: {{ text }}"))
        session.commit()


def test_phone_numbers_are_normalised_or_refused():
    from app.vn import InvalidIdentifierError, normalize_phone

    assert normalize_phone("+84 912 345 678") == "84912345678"
    assert normalize_phone("0387.654.321") == "84387654321"
    for bad in ("0212345678", "12345", "+1 212 555 0100", "091234567a"):
        with pytest.raises(InvalidIdentifierError):
            normalize_phone(bad)
