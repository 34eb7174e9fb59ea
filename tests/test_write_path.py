"""One write path: every change is a service in one unit of work, audited; the workflow
table has no exceptions; the audit chain does not serialise offices."""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.transactions import atomic
from tests.conftest import engine_of, user_named
from tests.test_copies import _submitted, do, state_of


@pytest.fixture()
def doc_type(db_session, office):
    from app.offices.services import offered_document_types

    return offered_document_types(db_session, office("A").id)[0]


def audit_mark(session) -> int:
    from app.audit import AuditEvent

    return session.scalar(select(func.max(AuditEvent.id))) or 0


def events_of(session, prefix: str, object_id: int | None = None, since: int = 0) -> list[str]:
    """Audit events of that kind written after ``since`` (SQLite reuses deleted ids)."""
    from app.audit import AuditEvent

    session.expire_all()
    stmt = select(AuditEvent.event).where(AuditEvent.event.like(f"{prefix}_%"),
                                          AuditEvent.id > since)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id)))


def newest_id(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.max(model.id)))


# --- FAB's generic add / edit / delete go through the services, audited -----------------

def _register_form(book: str) -> dict:
    year = dt.date.today().year
    return {"name": f"Sổ thử {book}", "book_number": book, "type_symbol": f"W{book}",
            "year": str(year), "start_number": "1", "opening_date": f"{year}-01-01",
            "closing_date": ""}


def _cases(session, office):
    """(user, view route, event prefix, model, add form, edit form, deletable)."""
    from app.offices.models import DocumentType, Office, OfficeDocumentType
    from app.users import StaffUser
    from modules.appointments.models import AppointmentSettings, Closure, WorkingSession
    from modules.registers.models import Register
    from modules.signing.models import SignerProfile

    tag = uuid.uuid4().hex[:6]
    spare_type = DocumentType(code=f"W-{tag}", name_vi=f"Loại {tag}", name_en="Spare",
                              active=True)
    session.add(spare_type)
    session.commit()
    officer_b = session.scalars(select(StaffUser).where(StaffUser.username == "officer.a")).one()
    today = dt.date.today() + dt.timedelta(days=400)
    return [
        ("officeadmin.a", "/officedocumenttypeview", "office_document_type", OfficeDocumentType,
         {"document_type": str(spare_type.id), "active": "y", "note": "mang bản chính"},
         {"active": "y", "note": "mang bản chính và CCCD"}, True),
        ("clerk.a", "/registerview", "register", Register, _register_form(tag),
         {**_register_form(tag), "name": f"Sổ thử {tag} (sửa)"}, True),
        ("officeadmin.a", "/workingsessionview", "working_session", WorkingSession,
         {"weekday": "6", "start_time": "08:00", "end_time": "09:00"},
         {"weekday": "6", "start_time": "08:00", "end_time": "10:00"}, True),
        ("officeadmin.a", "/closureview", "closure", Closure,
         {"name": f"Nghỉ {tag}", "date_from": today.isoformat(), "date_to": today.isoformat()},
         {"name": f"Nghỉ {tag} (sửa)", "date_from": today.isoformat(),
          "date_to": today.isoformat()}, True),
        ("officeadmin.a", "/signerprofileview", "signer_profile", SignerProfile,
         {"user": str(officer_b.id), "title": "Phó Chủ tịch", "tsa_name": "", "active": "y"},
         {"user": str(officer_b.id), "title": "Chủ tịch", "tsa_name": "", "active": "y"},
         False),
        ("officeadmin.a", "/appointmentsettingsview", "appointment_settings",
         AppointmentSettings, None,
         {"slot_minutes": "15", "capacity": "4", "horizon_days": "30", "min_notice_hours": "2",
          "cancel_cutoff_hours": "2", "what_to_bring": "CCCD"}, False),
        ("admin", "/officeview", "office", Office,
         {"kind": "commune", "code": f"W{tag}", "name": f"UBND Xã {tag}",
          "parent": str(office("A").parent_id), "active": "y"},
         {"kind": "commune", "code": f"W{tag}", "name": f"UBND Xã {tag} mới",
          "parent": str(office("A").parent_id), "active": "y"}, True),
        ("admin", "/documenttypeview", "document_type", DocumentType,
         {"code": f"X-{tag}", "name_vi": "Giấy thử", "name_en": "Test paper", "active": "y"},
         {"code": f"X-{tag}", "name_vi": "Giấy thử (sửa)", "name_en": "Test paper",
          "active": "y"}, True),
    ]


def test_every_generic_add_edit_delete_leaves_an_audit_event(login, db_session, office):
    from modules.appointments.models import AppointmentSettings

    for username, route, prefix, model, add_form, edit_form, deletable in _cases(
            db_session, office):
        web = login(username)
        since = audit_mark(db_session)
        if add_form is not None:
            r = web.post(f"{route}/add", data=add_form)
            assert r.status_code == 302, (route, r.get_data(as_text=True)[:3000])
            pk = newest_id(db_session, model)
            assert events_of(db_session, prefix, pk, since) == [f"{prefix}_created"], route
        else:
            pk = db_session.scalars(select(model.id).where(
                AppointmentSettings.office_id == office("A").id)).one()
        r = web.post(f"{route}/edit/{pk}", data=edit_form)
        assert r.status_code == 302, (route, r.get_data(as_text=True)[:3000])
        assert events_of(db_session, prefix, pk, since)[-1] == f"{prefix}_updated", route
        if deletable:
            assert web.post(f"{route}/delete/{pk}").status_code == 302
            db_session.expire_all()
            assert db_session.get(model, pk) is None, route
            assert events_of(db_session, prefix, pk, since)[-1] == f"{prefix}_deleted", route


def test_rest_writes_of_registers_and_offered_types_are_audited(api, db_session, office):
    from app.offices.models import DocumentType
    from modules.registers.models import Register

    since = audit_mark(db_session)
    clerk, headers = api("clerk.a")
    book = uuid.uuid4().hex[:6]
    form = _register_form(book)
    r = clerk.post("/api/v1/register/", headers=headers, json={
        **{k: v for k, v in form.items() if v}, "year": int(form["year"]),
        "start_number": 1})
    assert r.status_code == 201, r.get_json()
    pk = r.get_json()["id"]
    assert clerk.put(f"/api/v1/register/{pk}", headers=headers,
                     json={"name": "Sổ đổi tên"}).status_code == 200
    assert events_of(db_session, "register", pk, since) == ["register_created",
                                                             "register_updated"]
    assert db_session.get(Register, pk).created_by_id == user_named(db_session, "clerk.a").id

    spare = DocumentType(code=f"R-{book}", name_vi="Loại R", name_en="R", active=True)
    db_session.add(spare)
    db_session.commit()
    admin, admin_headers = api("officeadmin.a")
    r = admin.post("/api/v1/office_document_type/", headers=admin_headers,
                   json={"document_type": spare.id, "note": "x"})
    assert r.status_code == 201, r.get_json()
    assert events_of(db_session, "office_document_type", r.get_json()["id"], since) == [
        "office_document_type_created"]
    again = admin.post("/api/v1/office_document_type/", headers=admin_headers,
                       json={"document_type": spare.id})
    assert again.status_code == 409 and "already" in again.get_json()["message"].lower() or \
        "đã" in again.get_json()["message"]


def test_a_refused_form_keeps_what_was_typed(login):
    web = login("clerk.a")
    form = {**_register_form("KEEP-ME"), "opening_date": f"{dt.date.today().year}-06-01",
            "closing_date": f"{dt.date.today().year}-01-01"}
    r = web.post("/registerview/add", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "KEEP-ME" in page and "alert-danger" in page


# --- the seal bug ------------------------------------------------------------------------

def test_a_number_race_never_commits_a_seal_audit_for_an_unsealed_request(
        app, login, db_session, doc_type, office, monkeypatch):
    """Another register of the office already holds this request's number (a racing
    transaction committed it between our lookup and our insert).  Today's code rolled
    back the whole unit inside allocate_number — the claim too — and went on sealing:
    a copy_seal audit row committed while the request stayed awaiting seal."""
    from app.audit import AuditEvent
    from modules.copies.models import State
    from modules.registers import services as registers
    from modules.registers.models import EntryStatus, Register, RegisterEntry, RegisterStatus

    pk = _submitted(app, db_session, doc_type)
    leader, clerk = login("leader.a"), login("clerk.a")
    do(leader, pk, "sign")
    do(leader, pk, "forward")
    year = dt.date.today().year
    mine, other = (Register(office_id=office("A").id, name=f"Sổ đua {n}",
                            book_number=f"{uuid.uuid4().hex[:4]}/{year}",
                            type_symbol=f"R{uuid.uuid4().hex[:6]}", year=year, start_number=1,
                            next_number=1, opening_date=dt.date(year, 1, 1),
                            status=RegisterStatus.open) for n in (1, 2))
    db_session.add_all([mine, other])
    db_session.flush()
    db_session.add(RegisterEntry(office_id=office("A").id, register_id=other.id, number=1,
                                 request_key=f"copy:{pk}", status=EntryStatus.issued,
                                 issued_on=dt.date.today()))
    other.next_number = 2
    db_session.commit()
    real_find = registers.find_entry
    calls: list[int] = []

    def racing_find(*args, **kwargs):  # the first lookup runs before the rival committed
        calls.append(1)
        return None if len(calls) == 1 else real_find(*args, **kwargs)

    monkeypatch.setattr(registers, "find_entry", racing_find)
    try:
        do(clerk, pk, "seal", register_id=mine.id)
    finally:
        monkeypatch.setattr(registers, "find_entry", real_find)
    copy = state_of(db_session, pk)
    sealed_events = db_session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.object_type == "CopyRequest", AuditEvent.object_id == pk,
        AuditEvent.event == "copy_seal"))
    assert (copy.state is State.sealed) == (sealed_events == 1)
    assert copy.state is State.awaiting_seal and sealed_events == 0
    db_session.expire_all()
    assert db_session.get(Register, mine.id).next_number == 1  # no number used
    assert copy.document.stage.value == "leader_signed"


# --- the workflow table has no exceptions ------------------------------------------------

def test_paying_is_a_transition_with_roles_and_guards_hide_refused_buttons(
        app, api, login, db_session, doc_type):
    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    r = leader.post(f"/api/v1/copy/{pk}/pay", headers=lh, json={"receipt_number": "BL-1"})
    assert r.status_code == 403 and not state_of(db_session, pk).fee_paid
    officer, oh = api("officer.a")
    assert "pay" in officer.get(f"/api/v1/copy/{pk}", headers=oh).get_json()["allowed_events"]
    assert officer.post(f"/api/v1/copy/{pk}/pay", headers=oh, json={}).status_code == 422
    r = officer.post(f"/api/v1/copy/{pk}/pay", headers=oh, json={"receipt_number": "BL-2"})
    assert r.status_code == 200 and r.get_json()["receipt_number"] == "BL-2"
    assert "pay" not in r.get_json()["allowed_events"]
    again = officer.post(f"/api/v1/copy/{pk}/pay", headers=oh, json={"receipt_number": "X"})
    assert again.status_code == 409 and state_of(db_session, pk).receipt_number == "BL-2"
    history = [h["event"] for h in r.get_json()["history"]]
    assert history.count("copy_fee_paid") == 1


def test_deliver_is_not_offered_while_the_fee_is_unpaid(app, login, api, db_session, doc_type,
                                                       office):
    from modules.registers.models import Register, RegisterStatus

    pk = _submitted(app, db_session, doc_type)
    leader = login("leader.a")
    do(leader, pk, "sign")
    do(leader, pk, "forward")
    register = db_session.scalars(select(Register).where(
        Register.office_id == office("A").id, Register.status == RegisterStatus.open)).first()
    clerk_web = login("clerk.a")
    do(clerk_web, pk, "seal", register_id=register.id)
    page = clerk_web.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="do-deliver"' not in page and 'id="do-pay"' in page
    clerk, ch = api("clerk.a")
    assert clerk.get(f"/api/v1/copy/{pk}", headers=ch).get_json()["allowed_events"] == ["pay"]
    clerk.post(f"/api/v1/copy/{pk}/pay", headers=ch, json={"receipt_number": "BL-9"})
    body = clerk.get(f"/api/v1/copy/{pk}", headers=ch).get_json()
    assert body["allowed_events"] == ["deliver"]
    assert 'id="do-deliver"' in clerk_web.get(f"/copies/request/{pk}").get_data(as_text=True)


def test_a_draft_edit_from_a_stale_page_cannot_undo_a_submit(app, db_session, doc_type):
    """The officer opened the draft; meanwhile it was submitted elsewhere.  The edit must
    be refused (version-guarded claim), not silently applied over the submit."""
    from modules.copies import services, workflow
    from modules.copies.models import State

    officer = user_named(db_session, "officer.a")
    with app.test_request_context(), atomic(db_session):
        import io

        from tests.pdfs import scan_pdf

        copy, _ = services.intake(
            db_session, officer, upload=services.Upload(io.BytesIO(scan_pdf()), "s.pdf"),
            document_type_id=doc_type.id, copies=1,
            requester=services.Requester(identity_number="079203001234"))
    stale = db_session.get(type(copy), copy.id)  # this page's view of the draft
    assert stale.state is State.draft
    with app.test_request_context(), Session(bind=engine_of(app)) as other:
        with atomic(other):
            workflow.apply(other, user_named(other, "officer.a"), copy.id, "submit")
    with app.test_request_context(), pytest.raises(workflow.WorkflowError) as refused:
        with atomic(db_session):
            services.update_draft(db_session, officer, copy.id, copies=5, note="sửa muộn")
    assert refused.value.status == 409
    fresh = state_of(db_session, copy.id)
    assert fresh.state is State.awaiting_signature and fresh.copies == 1
    assert fresh.note != "sửa muộn"


# --- the audit chain does not serialise offices ------------------------------------------

def _forwarded_in(app, db_session, api, letter: str) -> tuple[int, int]:
    """A request of that office signed by its leader (leader.a's key in the server's
    custody, leader.b's own token through the plugin) and forwarded to its clerk."""
    from app.offices.services import offered_document_types
    from modules.copies import workflow
    from modules.registers.models import Register, RegisterStatus
    from tests.test_leader_signing import sign_through_plugin

    officer = user_named(db_session, f"officer.{letter.lower()}")
    doc_type = offered_document_types(db_session, officer.office_id)[0]
    pk = _submitted(app, db_session, doc_type, officer=officer.username)
    leader = user_named(db_session, f"leader.{letter.lower()}")
    if letter == "B":
        sign_through_plugin(app, api, pk, "leader.b")
    with app.test_request_context():
        for event in ("sign", "forward") if letter == "A" else ("forward",):
            with atomic(db_session):
                workflow.apply(db_session, leader, pk, event)
    register = db_session.scalars(select(Register).where(
        Register.office_id == officer.office_id, Register.status == RegisterStatus.open)).first()
    return pk, register.id


def test_two_offices_seal_at_once_without_waiting_on_each_other(app, db_session, api,
                                                               monkeypatch):
    if app.config["SAOY_BACKEND"] != "postgresql":
        pytest.skip("SQLite has one writer for the whole file: the claim is PostgreSQL's")
    from app.audit import verify_chain
    from modules.copies import workflow
    from modules.copies.models import State
    from modules.signing import pdf

    jobs = {"a": _forwarded_in(app, db_session, api, "A"),
            "b": _forwarded_in(app, db_session, api, "B")}
    intervals: dict[str, tuple[float, float]] = {}
    real_seal = pdf.seal_with_number
    phase = threading.local()

    def seal_with_number(*args, **kwargs):  # the pyHanko sealing itself, timed
        started = time.monotonic()
        result = real_seal(*args, **kwargs)
        intervals[phase.office] = (started, time.monotonic())
        return result

    monkeypatch.setattr(pdf, "seal_with_number", seal_with_number)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def seal(letter: str) -> None:
        pk, register_id = jobs[letter]
        phase.office = letter
        try:
            with app.test_request_context(), Session(bind=engine_of(app)) as session:
                clerk = user_named(session, f"clerk.{letter}")
                barrier.wait(timeout=30)
                with atomic(session):
                    workflow.apply(session, clerk, pk, "seal",
                                   workflow.Params(register_id=register_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # With one province-wide audit lock taken before sealing (the old main), office B's
    # number could not be issued until A committed: B's sealing began after A's ended.
    threads = [threading.Thread(target=seal, args=(letter,)) for letter in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    (a_start, a_end), (b_start, b_end) = intervals["a"], intervals["b"]
    overlap = min(a_end, b_end) - max(a_start, b_start)
    print(f"seal A {a_end - a_start:.3f} s, seal B {b_end - b_start:.3f} s, "
          f"overlap {overlap:.3f} s")
    assert overlap > 0, intervals
    for pk, _register in jobs.values():
        assert state_of(db_session, pk).state is State.sealed
    assert verify_chain(db_session).ok
