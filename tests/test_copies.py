"""Copy requests: the whole procedure through the web views and the REST API, scan
checks, fees and due dates, returns, double clicks, failures, and office scoping."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.transactions import atomic
from modules.registers.services import number_shown
from tests.conftest import engine_of, user_named
from tests.pdfs import pdfsig, scan_pdf

CITIZEN_IDENTITY = "079203001234"


def upload(data: bytes, name="scan.pdf"):
    return (io.BytesIO(data), name)


def intake_web(web, doc_type, *, pages=3, copies=2, identity=CITIZEN_IDENTITY, **extra):
    data = {"document_type_id": doc_type.id, "copies": copies, "identity_number": identity,
            "scan": upload(scan_pdf(pages=pages)), **extra}
    return web.post("/copies/intake", data=data, content_type="multipart/form-data")


def request_id_from(response) -> int:
    return int(re.search(r"/copies/request/(\d+)", response.headers["Location"]).group(1))


def do(web, pk, event, **form):
    return web.post(f"/copies/request/{pk}/do/{event}", data=form)


def state_of(db_session, pk):
    from modules.copies.models import CopyRequest

    db_session.expire_all()
    return db_session.get(CopyRequest, pk)


# --- the whole path, on the web --------------------------------------------------------

def test_walk_in_to_delivery_through_the_web_views(app, login, db_session, doc_type,
                                                   register_of, tmp_path):
    from app.notifications.models import Channel, Message
    from modules.copies.models import State
    from modules.signing.services import validate_bytes

    officer, leader, clerk = login("officer.a"), login("leader.a"), login("clerk.a")
    r = intake_web(officer, doc_type, pages=3, copies=2, note="Bản gốc còn tốt")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    pk = request_id_from(r)
    copy = state_of(db_session, pk)
    assert copy.state is State.awaiting_signature and copy.pages == 3
    assert copy.fee == 2 * (2000 + 2000 + 1000)
    slip = officer.get(f"/copies/request/{pk}/slip").get_data(as_text=True)
    assert "10.000 đ" in slip and copy.due_text in slip

    queue = leader.get("/copies-to-sign/list/").get_data(as_text=True)
    assert f"/copies/request/{pk}" in queue
    assert do(leader, pk, "sign").status_code == 302
    assert state_of(db_session, pk).state is State.signed
    assert do(leader, pk, "forward").status_code == 302
    assert f"/copies/request/{pk}" in clerk.get("/copies-to-seal/list/").get_data(as_text=True)

    page = clerk.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="do-seal"' in page and 'id="do-sign"' not in page
    register = register_of("A")
    expected_number = number_shown(db_session, register)
    assert do(clerk, pk, "seal", register_id=register.id).status_code == 302
    copy = state_of(db_session, pk)
    assert copy.state is State.sealed and copy.number == str(expected_number)
    r = do(clerk, pk, "deliver")
    assert "chưa nộp lệ phí" in clerk.get(r.headers["Location"]).get_data(as_text=True)
    assert state_of(db_session, pk).state is State.sealed  # fee not paid: refused
    do(clerk, pk, "pay", receipt="BL-000123")
    do(clerk, pk, "deliver")
    copy = state_of(db_session, pk)
    assert copy.state is State.delivered and copy.delivered_to == "portal"
    assert db_session.scalars(select(Message).where(
        Message.kind == "copy_delivered", Message.related_id == pk,
        Message.channel == Channel.portal)).one()

    citizen = login("citizen")
    mine = citizen.get("/mycopies/").get_data(as_text=True)
    assert doc_type.name_vi in mine and copy.number in mine
    detail = citizen.get(f"/mycopies/{pk}").get_data(as_text=True)
    assert copy.book in detail and "/verify/" in detail
    pdf = citizen.get(f"/mycopies/{pk}/file")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    with app.app_context():
        report = validate_bytes(pdf.data)
    assert report.valid and {s.role for s in report.signatures} == {"leader", "seal"}
    out = pdfsig(app, tmp_path, pdf.data)
    assert out.count("Signature is Valid.") == 2 and out.count("Certificate is Trusted.") == 2
    assert len(PdfReader(io.BytesIO(pdf.data)).pages) == 4  # 3 scanned + attestation page


def test_returned_request_is_continued_with_a_new_scan_and_resubmitted(
        login, db_session, doc_type):
    from app.notifications.models import InboxItem, Message
    from modules.copies.models import State

    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    r = do(leader, pk, "return", ground="2", reason="Trang 1 mờ")
    assert r.status_code == 302
    copy = state_of(db_session, pk)
    assert copy.state is State.returned and "Trang 1 mờ" in copy.reason
    assert copy.reason.startswith("Bản chính bị hư hỏng") and copy.return_ground == 2
    returned = officer.get("/copies-returned/list/").get_data(as_text=True)
    assert "Trang 1 mờ" in returned
    officer_id = user_named(db_session, "officer.a").id
    assert db_session.scalars(select(Message).where(
        Message.kind == "copy_returned_to_officer", Message.related_id == pk,
        Message.recipient_user_id == officer_id)).first() is not None or db_session.scalars(
        select(InboxItem).where(InboxItem.user_id == officer_id)).first()

    r = do(officer, pk, "resume")
    assert r.headers["Location"].endswith(f"/copies/request/{pk}/edit")
    r = officer.post(f"/copies/request/{pk}/edit", content_type="multipart/form-data", data={
        "document_type_id": doc_type.id, "copies": 3, "note": "Đã quét lại",
        "scan": upload(scan_pdf(pages=2, seed=9)), "submit": "1"})
    assert r.status_code == 302
    copy = state_of(db_session, pk)
    assert copy.state is State.awaiting_signature and copy.pages == 2 and copy.copies == 3
    assert copy.fee == 3 * 4000
    assert do(leader, pk, "sign").status_code == 302
    assert state_of(db_session, pk).state is State.signed


def test_returned_request_can_be_cancelled_and_then_nothing_more(login, db_session, doc_type):
    from modules.copies.models import State

    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    do(leader, pk, "return", reason="Giấy tờ tự lập không có xác nhận")
    page = officer.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="do-cancel"' in page and 'id="do-resume"' in page
    do(officer, pk, "cancel", reason="Người yêu cầu rút hồ sơ")
    assert state_of(db_session, pk).state is State.cancelled
    r = do(officer, pk, "resume")
    assert state_of(db_session, pk).state is State.cancelled
    page = officer.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="do-' not in page


# --- the whole path, through the REST API ---------------------------------------------

def test_rest_api_path_with_email_requester_return_resume_and_delivery(
        app, api, db_session, doc_type, register_of):
    from app.notifications.models import Channel, Message
    from modules.signing.services import validate_bytes

    officer, oh = api("officer.a")
    leader, lh = api("leader.a")
    clerk, ch = api("clerk.a")
    r = officer.post("/api/v1/copy/", headers=oh, content_type="multipart/form-data", data={
        "scan": upload(scan_pdf(pages=2)), "document_type_id": doc_type.id, "copies": 1,
        "email": "khach.le@example.vn", "name": "Khách Lẻ"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["state"] == "draft" and body["pages"] == 2 and body["fee"] == 4000
    pk = body["id"]

    r = leader.post(f"/api/v1/copy/{pk}/sign", headers=lh, json={})
    assert r.status_code == 409 and r.get_json()["allowed_events"] == []
    assert officer.post(f"/api/v1/copy/{pk}/submit", headers=oh).get_json()["state"] == \
        "awaiting_signature"
    r = officer.post(f"/api/v1/copy/{pk}/sign", headers=oh, json={})
    assert r.status_code == 403
    r = leader.post(f"/api/v1/copy/{pk}/return", headers=lh, json={})
    assert r.status_code == 422
    r = leader.post(f"/api/v1/copy/{pk}/return", headers=lh, json={"reason": "Thiếu trang"})
    assert r.get_json()["state"] == "returned"
    r = officer.post(f"/api/v1/copy/{pk}/forward", headers=oh, json={})
    assert r.status_code in (403, 409)
    r = officer.post(f"/api/v1/copy/{pk}/submit", headers=oh, json={})
    assert r.status_code == 409 and set(r.get_json()["allowed_events"]) == {"cancel", "resume"}
    assert officer.post(f"/api/v1/copy/{pk}/resume", headers=oh).get_json()["state"] == "draft"
    officer.post(f"/api/v1/copy/{pk}/submit", headers=oh)
    r = leader.post(f"/api/v1/copy/{pk}/sign", headers=lh, json={"page": 1,
                                                                  "rect": [40, 40, 560, 380]})
    assert r.status_code == 200, r.get_json()
    assert leader.post(f"/api/v1/copy/{pk}/forward", headers=lh).get_json()["state"] == \
        "awaiting_seal"
    assert clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch, json={}).status_code == 422
    r = clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch,
                   json={"register_id": register_of("A").id})
    assert r.status_code == 200 and r.get_json()["number"]
    r = clerk.post(f"/api/v1/copy/{pk}/deliver", headers=ch)
    message = r.get_json()["message"].lower()
    assert r.status_code == 409 and ("fee" in message or "lệ phí" in message)
    clerk.post(f"/api/v1/copy/{pk}/pay", headers=ch, json={"receipt_number": "BL-7"})
    r = clerk.post(f"/api/v1/copy/{pk}/deliver", headers=ch)
    assert r.status_code == 200 and r.get_json()["state"] == "delivered"

    detail = clerk.get(f"/api/v1/copy/{pk}", headers=ch).get_json()
    events = [h["event"] for h in detail["history"]]
    assert events[:2] == ["copy_created", "copy_submit"] and events[-1] == "copy_deliver"
    assert "copy_return" in events and "copy_resume" in events
    validation = clerk.get(f"/api/v1/copy/{pk}/validation", headers=ch).get_json()
    assert validation["valid"] is True
    document = clerk.get(f"/api/v1/copy/{pk}/document", headers=ch)
    with app.app_context():
        assert validate_bytes(document.data).valid
    assert len(PdfReader(io.BytesIO(document.data)).pages) == 2  # attestation on page 1
    mail = db_session.scalars(select(Message).where(
        Message.kind == "copy_delivered", Message.related_id == pk,
        Message.channel == Channel.email)).one()
    assert mail.recipient == "khach.le@example.vn"
    assert mail.attachments and mail.attachments[0]["filename"].endswith(".pdf")
    listed = clerk.get("/api/v1/copy/?state=delivered&q=" + detail["number"],
                       headers=ch).get_json()["result"]
    assert pk in [row["id"] for row in listed]


# --- scan checks ------------------------------------------------------------------------

def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(scan_pdf())))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _empty_pdf() -> bytes:
    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()


@pytest.mark.parametrize("name,data,status,words", [
    ("not-a-pdf.pdf", b"Hello, this is a Word file really", 422, "PDF"),
    ("encrypted.pdf", None, 422, "encrypted"),
    ("empty.pdf", None, 422, "page"),
    ("truncated.pdf", None, 422, "damaged"),
    ("zero.pdf", b"", 422, "empty"),
])
def test_bad_scans_are_refused_with_a_reason_and_leave_nothing(
        app, api, db_session, doc_type, name, data, status, words):
    from modules.copies.models import CopyRequest

    data = {"encrypted.pdf": _encrypted_pdf, "empty.pdf": _empty_pdf,
            "truncated.pdf": lambda: scan_pdf()[:3000]}.get(name, lambda: data)()
    files_before = _stored_files(app)
    count_before = db_session.scalar(select(func.count(CopyRequest.id)))
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers={**headers, "Accept-Language": "en"},
                    content_type="multipart/form-data", data={
                        "scan": upload(data, name), "document_type_id": doc_type.id,
                        "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == status
    assert words.lower() in r.get_json()["message"].lower()
    assert db_session.scalar(select(func.count(CopyRequest.id))) == count_before
    assert _stored_files(app) == files_before


def _stored_files(app) -> set[str]:
    from pathlib import Path

    root = Path(app.config["DATA_DIR"]) / "files"
    return {p.name for p in root.rglob("*")
            if p.is_file() and "tmp" not in p.relative_to(root).parts}


def test_too_large_upload_is_refused_while_streaming(app, api, login, doc_type, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    big = scan_pdf(pages=1) + b"%" + b"x" * (3 * 2**20)
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                    data={"scan": upload(big), "document_type_id": doc_type.id,
                          "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == 413 and "1 MB" in r.get_json()["message"]
    web = login("officer.a")
    r = web.post("/copies/intake", content_type="multipart/form-data", data={
        "scan": upload(big), "document_type_id": doc_type.id,
        "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == 413 and "1 MB" in r.get_data(as_text=True)


def test_low_resolution_scan_is_accepted_with_a_warning(api, login, doc_type):
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data", data={
        "scan": upload(scan_pdf(pages=1, dpi=100)), "document_type_id": doc_type.id,
        "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == 201 and 95 <= r.get_json()["dpi"] <= 105 and r.get_json()["warning"]
    web = login("officer.a")
    r = intake_web(web, doc_type, pages=1)
    assert r.status_code == 302
    r = web.post("/copies/intake", content_type="multipart/form-data", follow_redirects=True,
                 data={"scan": upload(scan_pdf(pages=1, dpi=120)),
                       "document_type_id": doc_type.id, "identity_number": CITIZEN_IDENTITY})
    assert "dpi" in r.get_data(as_text=True)


def test_a_user_without_an_office_gets_a_clear_403_not_a_500(api, login, doc_type):
    client, headers = api("admin")
    r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                    data={"scan": upload(scan_pdf()), "document_type_id": doc_type.id,
                          "identity_number": CITIZEN_IDENTITY})
    message = r.get_json()["message"].lower()
    assert r.status_code == 403 and ("office" in message or "cơ quan" in message)
    r = intake_web(login("admin"), doc_type)
    assert r.status_code == 403 and "cơ quan" in r.get_data(as_text=True)


def test_unknown_requester_and_bad_fields_get_clear_messages(api, doc_type):
    client, headers = api("officer.a")

    def post(**fields):
        return client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                           data={"scan": upload(scan_pdf()), "document_type_id": doc_type.id,
                                 **fields})

    assert post(identity_number="079203999999").status_code == 404
    assert post(identity_number="12").status_code == 422
    assert post(email="not-an-email").status_code == 422
    assert post(identity_number=CITIZEN_IDENTITY, copies=0).status_code == 422
    assert post(identity_number=CITIZEN_IDENTITY, document_type_id=999999).status_code == 422
    assert post(identity_number=CITIZEN_IDENTITY, appointment_code="ZZZZ-ZZZZ").status_code == 404


# --- fees and time limits ---------------------------------------------------------------

@pytest.mark.parametrize("pages,copies,fee", [
    (1, 1, 2000), (2, 1, 4000), (3, 1, 5000), (10, 2, 24000),
    (197, 1, 199000), (198, 1, 200000), (500, 1, 200000), (500, 3, 600000),
])
def test_fee_cap_applies_per_copy(app, pages, copies, fee):
    from modules.copies.services import fee_for

    with app.app_context():
        assert fee_for(pages, copies) == fee


def test_due_date_same_day_before_cutoff_next_working_day_after(app, db_session, office):
    from modules.appointments.models import Closure
    from modules.copies.services import due_at

    vn = dt.timezone(dt.timedelta(hours=7))
    a = office("A")
    monday = dt.date(2027, 3, 1)  # a Monday

    def due(day, hour, minute=0):
        received = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=vn)
        with app.app_context():
            return due_at(db_session, a.id, received.astimezone(dt.UTC).replace(tzinfo=None))

    def local(value):
        return value.replace(tzinfo=dt.UTC).astimezone(vn)

    assert local(due(monday, 14, 59)).date() == monday
    assert local(due(monday, 15, 1)).date() == monday + dt.timedelta(days=1)
    assert local(due(monday + dt.timedelta(days=4), 16)).date() == monday + dt.timedelta(days=7)
    assert local(due(monday + dt.timedelta(days=5), 9)).date() == monday + dt.timedelta(days=7)
    db_session.add(Closure(office_id=a.id, name="Giỗ Tổ", date_from=monday + dt.timedelta(days=8),
                           date_to=monday + dt.timedelta(days=8)))
    db_session.commit()
    assert local(due(monday + dt.timedelta(days=7), 15, 30)).date() == \
        monday + dt.timedelta(days=9)


# --- appointments become requests -------------------------------------------------------

def test_process_on_an_appointment_opens_the_filled_in_intake(app, login, db_session, office,
                                                              doc_type):
    from app.citizens.models import Citizen
    from modules.appointments import services as appointments
    from modules.appointments import workflow as appointment_workflow
    from modules.appointments.models import AppointmentStatus
    from modules.copies.models import CopyRequest

    citizen_user = db_session.scalars(select(Citizen).where(
        Citizen.identity_number == CITIZEN_IDENTITY)).one().user
    vn = dt.timezone(dt.timedelta(hours=7))
    day = dt.datetime.now(vn).date() + dt.timedelta(days=2)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    with app.test_request_context(), atomic(db_session):
        existing = [a for a in appointments.listed(db_session, citizen_user) if a.is_active]
        for old in existing:  # the demo citizen may hold bookings from other tests
            appointment_workflow.cancel(db_session, user_named(db_session, "officer.a"), old.id,
                                        "dọn dẹp")
        booked = appointments.book(
            db_session, citizen_user, office_id=office("A").id, document_type_id=doc_type.id,
            start=dt.datetime.combine(day, dt.time(16, 30), tzinfo=vn))
    web = login("officer.a")
    r = web.post(f"/pendingappointments/action/process/{booked.id}")
    assert "/copies/intake?appointment=" in r.headers["Location"]
    form = web.get(r.headers["Location"]).get_data(as_text=True)
    assert CITIZEN_IDENTITY in form and booked.code in form
    r = intake_web(web, doc_type, pages=1, copies=1, appointment_code=booked.code)
    assert r.status_code == 302
    pk = request_id_from(r)
    db_session.expire_all()
    assert db_session.get(CopyRequest, pk).appointment_id == booked.id
    assert db_session.get(appointments.Appointment, booked.id).status is \
        AppointmentStatus.processed


# --- integrity: double clicks, concurrency, failures ------------------------------------

def _submitted(app, db_session, doc_type, officer="officer.a", scan: bytes | None = None
               ) -> int:
    from modules.copies import services, workflow

    user = user_named(db_session, officer)
    with app.test_request_context(), atomic(db_session):
        copy, _info = services.intake(
            db_session, user,
            upload=services.Upload(io.BytesIO(scan or scan_pdf()), "s.pdf"),
            document_type_id=doc_type.id, copies=1,
            requester=services.Requester(identity_number=CITIZEN_IDENTITY))
        workflow.apply(db_session, user, copy.id, workflow.Event.submit)
    return copy.id


def test_concurrent_signing_clicks_sign_once(app, db_session, doc_type):
    """Two tabs of the same leader press "Ký số" at once: one signature, one 409."""
    from app.audit import AuditEvent
    from modules.copies import workflow
    from modules.copies.models import State

    pk = _submitted(app, db_session, doc_type)
    engine = engine_of(app)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def click():
        with app.test_request_context(), Session(bind=engine) as session:
            leader = user_named(session, "leader.a")
            barrier.wait(timeout=30)
            try:
                with atomic(session):
                    workflow.apply(session, leader, pk, "sign")
                results.append("ok")
            except workflow.WorkflowError as exc:
                results.append(str(exc.status))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["409", "ok"], results
    assert state_of(db_session, pk).state is State.signed
    assert db_session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.object_type == "CopyRequest", AuditEvent.object_id == pk,
        AuditEvent.event == "copy_sign")) == 1


def test_failed_seal_keeps_the_state_and_uses_no_number(app, login, db_session, doc_type,
                                                        register_of, office):
    from modules.copies.models import State
    from modules.signing.models import SignerProfile

    pk = _submitted(app, db_session, doc_type)
    leader, clerk = login("leader.a"), login("clerk.a")
    do(leader, pk, "sign")
    do(leader, pk, "forward")
    register = register_of("A")
    before = number_shown(db_session, register)
    seal = db_session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == office("A").id, SignerProfile.user_id.is_(None))).one()
    seal.active = False
    db_session.commit()
    try:
        r = do(clerk, pk, "seal", register_id=register.id)
        page = clerk.get(r.headers["Location"]).get_data(as_text=True)
        assert "alert-danger" in page
    finally:
        seal.active = True
        db_session.commit()
    db_session.expire_all()
    assert state_of(db_session, pk).state is State.awaiting_seal
    assert number_shown(db_session, register_of("A")) == before
    do(clerk, pk, "seal", register_id=register.id)
    assert state_of(db_session, pk).number == str(before)


def _lines(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


def test_batch_signing_opens_the_key_once_and_reports_each_copy(app, api, db_session,
                                                               doc_type, monkeypatch):
    """A leader's batch: the key is opened once for all copies (one token login), each copy
    is signed in its own unit and reported on its own line; a copy of another office,
    one already signed and an unknown id fail alone."""
    from modules.copies.models import State
    from modules.signing import services as signing_services

    opened = []
    real_open = signing_services.open_signer

    def counting_open(key, config, *how):
        opened.append(key.id)
        return real_open(key, config, *how)

    monkeypatch.setattr(signing_services, "open_signer", counting_open)
    mine = [_submitted(app, db_session, doc_type) for _ in range(3)]
    theirs = _submitted(app, db_session, doc_type, officer="officer.b")
    rest, headers = api("leader.a")
    assert rest.post(f"/api/v1/copy/{mine[0]}/sign", headers=headers).status_code == 200
    assert len(opened) == 1
    ids = [*mine, theirs, 99999]
    lines = _lines(rest.post("/api/v1/copy/sign-batch", headers=headers, json={"ids": ids}))
    assert [line["id"] for line in lines] == ids
    assert [line["ok"] for line in lines] == [False, True, True, False, False]
    assert [line.get("status") for line in lines] == [409, None, None, 404, 404]
    assert len(opened) == 2  # one opening for the whole batch
    db_session.expire_all()
    assert [state_of(db_session, pk).state for pk in mine] == [State.signed] * 3
    assert state_of(db_session, theirs).state is State.awaiting_signature


def test_a_certification_validates_its_file_once_at_delivery(app, api, db_session, doc_type,
                                                             register_of, monkeypatch):
    """Signing and sealing make the signatures from stored bytes; the delivery gate
    validates the whole file once (it used to be validated at sealing too)."""
    from modules.signing import services as signing_services
    from modules.signing.models import SignedDocument

    validated = []
    real_validate = signing_services.validate_pdf

    def counting_validate(data, *args, **kwargs):
        validated.append(len(data))
        return real_validate(data, *args, **kwargs)

    monkeypatch.setattr(signing_services, "validate_pdf", counting_validate)
    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    clerk, ch = api("clerk.a")
    for client, headers, event, body in (
            (leader, lh, "sign", {}), (leader, lh, "forward", {}),
            (clerk, ch, "seal", {"register_id": register_of("A").id}),
            (clerk, ch, "pay", {"receipt_number": "BL-1"})):
        assert client.post(f"/api/v1/copy/{pk}/{event}", headers=headers,
                           json=body).status_code == 200, event
    assert validated == []
    assert clerk.post(f"/api/v1/copy/{pk}/deliver", headers=ch).status_code == 200
    assert len(validated) == 1
    db_session.expire_all()
    doc = db_session.get(SignedDocument, state_of(db_session, pk).document_id)
    assert doc.valid and {s["role"] for s in doc.validation["signatures"]} == {"leader", "seal"}


def test_each_answer_says_where_its_time_went(app, api, login, db_session, doc_type,
                                              register_of, monkeypatch):
    """Where the operator switched them on (``SAOY_SERVER_TIMING_PIECES``), Server-Timing
    names the pieces of a certification to the staff making it (an operator's network
    panel, the benchmarks' split): the whole, the key, the attestation, the signature, the
    file store, the database and the commit; no piece longer than the whole. A citizen's
    answers, and everyone's where the setting is off, carry the whole only."""
    from app import timing

    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    clerk, ch = api("clerk.a")
    queue = leader.get("/api/v1/copy/", headers=lh)
    assert set(timing.parse(queue.headers["Server-Timing"])) == {"app"}  # off by default
    monkeypatch.setitem(app.config, "SERVER_TIMING_PIECES", True)
    own = login("citizen").get("/mycopies/")
    assert own.status_code == 200 and set(timing.parse(own.headers["Server-Timing"])) == {"app"}
    pieces = {}
    for client, headers, event, body in (
            (leader, lh, "sign", {}), (leader, lh, "forward", {}),
            (clerk, ch, "seal", {"register_id": register_of("A").id}),
            (clerk, ch, "pay", {"receipt_number": "BL-1"}), (clerk, ch, "deliver", {})):
        r = client.post(f"/api/v1/copy/{pk}/{event}", headers=headers, json=body)
        assert r.status_code == 200, event
        pieces[event] = timing.parse(r.headers["Server-Timing"])
    assert {"app", "key", "revocation", "attestation", "signature", "store", "db",
            "commit"} <= set(pieces["sign"])
    assert {"app", "key", "signature", "store", "read", "db", "commit"} <= set(pieces["seal"])
    assert {"validation", "read"} <= set(pieces["deliver"])
    assert "signature" not in pieces["pay"] and "db" in pieces["pay"]
    for event, found in pieces.items():
        assert all(ms <= found["app"] for ms in found.values()), (event, found)
    sign = pieces["sign"]
    assert sign["attestation"] + sign["signature"] + sign["store"] <= sign["app"]
    missing = leader.post("/api/v1/copy/99999/sign", headers=lh, json={})
    assert missing.status_code == 404
    assert set(timing.parse(missing.headers["Server-Timing"])) <= {"app", "db", "commit"}
    with app.app_context(), timing.span("signature"):  # a job: nothing recorded, no error
        pass


@pytest.mark.parametrize("body", [{"ids": "1,x"}, {"ids": [True]}, {"ids": {"a": 1}},
                                  {"ids": list(range(1, 202))}, {"ids": []}, {}])
def test_batch_signing_refuses_bad_lists_with_a_message(api, body):
    rest, headers = api("leader.a")
    r = rest.post("/api/v1/copy/sign-batch", headers=headers, json=body,
                  environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert r.status_code == 422 and r.get_json()["message"], r.get_data(as_text=True)


# --- scoping ----------------------------------------------------------------------------

def test_another_office_gets_404_on_every_copy_door(app, login, api, db_session, doc_type,
                                                    register_of):
    from modules.copies.models import State

    pk = _submitted(app, db_session, doc_type)
    for username in ("officer.b", "leader.b", "clerk.b"):
        web = login(username)
        rest, headers = api(username)
        paths = ("", "/slip", "/document", "/page/1.png") + (
            ("/edit",) if username == "officer.b" else ())
        for path in paths:  # (only officers may open the edit form at all: 403 for others)
            assert web.get(f"/copies/request/{pk}{path}").status_code == 404, (username, path)
        for event in ("sign", "return", "forward", "seal", "deliver", "cancel", "resume",
                      "submit", "pay"):
            assert do(web, pk, event, reason="x", register_id=register_of("B").id,
                      receipt="x").status_code == 404, (username, event)
            assert rest.post(f"/api/v1/copy/{pk}/{event}", headers=headers, json={
                "reason": "x", "register_id": register_of("B").id, "receipt_number": "x"}
            ).status_code == 404, (username, event)
        for path in ("", "/document", "/validation"):
            assert rest.get(f"/api/v1/copy/{pk}{path}", headers=headers).status_code == 404
        listed = rest.get("/api/v1/copy/", headers=headers).get_json()["result"]
        assert pk not in [row["id"] for row in listed]
        batch = rest.post("/api/v1/copy/sign-batch", headers=headers, json={"ids": [pk]})
        assert [(line["id"], line["status"]) for line in _lines(batch)] == [(pk, 404)]
        assert f'data-id="{pk}"' not in web.get(f"/copies/bulk-sign?ids={pk}").get_data(
            as_text=True)
        for queue in ("/copies", "/copies-to-sign", "/copies-to-seal", "/copies-returned"):
            html = web.get(f"{queue}/list/").get_data(as_text=True)
            assert f"/copies/request/{pk}\"" not in html
    assert login("citizen").get(f"/mycopies/{pk}").status_code == 404  # not delivered yet
    assert state_of(db_session, pk).state is State.awaiting_signature


def test_lists_filter_search_export_and_highlight_overdue(app, login, db_session, doc_type):
    from openpyxl import load_workbook

    from modules.copies.models import CopyRequest

    pk = _submitted(app, db_session, doc_type)
    copy = db_session.get(CopyRequest, pk)
    copy.due_at = copy.received_at - dt.timedelta(days=2)
    db_session.commit()
    web = login("officer.a")
    html = web.get("/copies/list/?_flt_0_requester_identity=" + CITIZEN_IDENTITY
                   + "&psize_CopyRequestView=100").get_data(as_text=True)
    assert f"/copies/request/{pk}\"" in html and "overdue" in html
    xlsx = web.get("/copies/export.xlsx?_flt_0_requester_identity=" + CITIZEN_IDENTITY)
    assert xlsx.status_code == 200
    rows = list(load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(values_only=True))
    assert any(row[0] == pk for row in rows)


def test_first_signatures_at_once_make_whole_fonts(app, tmp_path, monkeypatch):
    """Several first signatures of a fresh server at once (threaded server, empty font
    cache): each block comes out whole.  They once wrote the Vietnamese font subset into
    one temporary file together and renamed a half-written font into place (a concurrent
    sign answered IndexError in reportlab's subsetting)."""
    import concurrent.futures

    from fontTools.ttLib import TTFont
    from pypdf import PdfReader

    from modules.signing import pdf

    names = ["Trần Thị Bình", "Lê Văn Cường", "Nguyễn Thị Mai", "Phạm Quốc Hùng"]
    barrier = threading.Barrier(4)

    monkeypatch.setitem(app.config, "DATA_DIR", str(tmp_path))  # a fresh server's cache

    def first_signature(n: int) -> str:
        from modules.signing.services import fonts

        with app.app_context():
            barrier.wait(timeout=30)
            faces = fonts()
        att = pdf.Attestation("UBND Phường Sài Gòn", names[n], "Phó Chủ tịch",
                              dt.date(2026, 12, 2), "https://saoy.example/verify/X", "X")
        block, _boxes = pdf.render_block(att, faces, pdf.BLOCK_MIN_WIDTH, pdf.BLOCK_MIN_HEIGHT)
        return PdfReader(io.BytesIO(block)).pages[0].extract_text()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(first_signature, range(4)))
    assert all(name in text for name, text in zip(names, texts, strict=True))
    made = sorted((tmp_path / "fonts").glob("*.ttf"))
    assert len(made) == 3 and not list((tmp_path / "fonts").glob("*.tmp"))
    for path in made:
        TTFont(str(path))["glyf"]
