"""Appointments: registration, availability, booking under load, reschedule, cancel,
jobs, and office scoping — through services, the web pages and the REST API."""
from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import threading

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.transactions import atomic
from tests.conftest import engine_of

_serial = itertools.count(1)
VN = dt.timezone(dt.timedelta(hours=7))


def new_identity() -> str:
    return f"0792{random.randint(0, 99):02d}{random.randint(0, 999999):06d}"


def new_phone() -> str:
    return f"09{random.randint(0, 99999999):08d}"


@pytest.fixture()
def citizen_factory(app, db_session):
    """Citizens registered through the service (fast password hash for bulk tests)."""
    from flask_appbuilder.security.sqla.models import Role

    from app.citizens.services import Registration, register_citizen

    def make(name="Trần Văn Khách", email=None):
        with app.app_context():
            role = db_session.scalars(select(Role).where(Role.name == "Citizen")).one()
            with atomic(db_session):
                return register_citizen(db_session, Registration(
                    full_name=name, identity_number=new_identity(), phone=new_phone(),
                    email=email, password="mat-khau-123"), role)

    return make


def future_start(days_ahead: int, slot: int) -> dt.datetime:
    """A Monday–Friday morning slot at least ``days_ahead`` days from now (Vietnam time)."""
    day = dt.datetime.now(VN).date() + dt.timedelta(days=days_ahead)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(7, 30), tzinfo=VN) + dt.timedelta(minutes=15 * slot)


def unique_start() -> dt.datetime:
    """A slot no other test uses: each call moves to the next morning slot."""
    n = next(_serial)
    return future_start(3 + (n // 16) % 18, n % 16)


_closure_serial = itertools.count(0)


def closure_start() -> dt.datetime:
    """A morning on a weekday no other test books: closures close whole days."""
    day = dt.datetime.now(VN).date() + dt.timedelta(days=22)
    for _ in range(next(_closure_serial) % 3 + 1):
        day += dt.timedelta(days=1)
        while day.weekday() > 4:
            day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(8, 0), tzinfo=VN)


@pytest.fixture()
def doc_type(app, db_session, office):
    from app.offices.services import offered_document_types

    return offered_document_types(db_session, office("A").id)[0]


def book(app, session, user, office, doc_type, start, **kw):
    from app.transactions import atomic
    from modules.appointments import services

    with app.test_request_context(), atomic(session):
        return services.book(session, user, office_id=office.id,
                             document_type_id=doc_type.id, start=start, **kw)


# --- registration -----------------------------------------------------------------------

def test_citizen_registers_through_the_api_and_logs_in_with_identity_number(client):
    identity = new_identity()
    r = client.post("/api/v1/citizen/", json={
        "full_name": "Lê Thị Hồng", "identity_number": identity, "phone": "+84 912 345 678",
        "email": f"hong{identity}@example.vn", "password": "mat-khau-123"})
    assert r.status_code == 202, r.get_json()
    created = r.get_json()
    r = client.post("/api/v1/security/login", json={
        "username": identity, "password": "mat-khau-123", "provider": "db"})
    assert r.status_code == 200 and r.get_json()["access_token"]
    # Registering the number again tells nothing and takes nothing over.
    again = client.post("/api/v1/citizen/", json={
        "full_name": "Kẻ Mạo Danh", "identity_number": identity, "phone": "0912345679",
        "password": "mat-khau-khac"})
    assert again.status_code == 202 and again.get_json() == created
    assert client.post("/api/v1/security/login", json={
        "username": identity, "password": "mat-khau-khac", "provider": "db"}).status_code == 401


@pytest.mark.parametrize("field,value", [
    ("identity_number", "12345"), ("identity_number", "999203001234"),
    ("phone", "0212345678"), ("phone", "12345"), ("email", "not-an-email"),
    ("password", "short"), ("full_name", ""),
])
def test_bad_registration_gets_a_clear_422_and_creates_nothing(client, db_session, field,
                                                                value):
    from app.citizens.models import Citizen

    before = db_session.query(Citizen).count()
    body = {"full_name": "Lê Văn Tám", "identity_number": new_identity(),
            "phone": "0987654321", "email": "tam@example.vn", "password": "mat-khau-123",
            field: value}
    r = client.post("/api/v1/citizen/", json=body, headers={"Accept-Language": "vi"})
    assert r.status_code == 422
    data = r.get_json()
    assert field in data["errors"] and data["message"]
    assert db_session.query(Citizen).count() == before


def test_registration_page_in_vietnamese_and_demo_citizen_signs_in_by_identity(client):
    from app.demo import CITIZEN_IDENTITY

    page = client.get("/citizen/register").get_data(as_text=True)
    assert "Số định danh" in page or "CCCD" in page
    r = client.post("/citizen/register", data={
        "full_name": "Phan Văn Đức", "identity_number": "abc", "phone": "0912000111",
        "password": "mat-khau-123", "password_again": "mat-khau-123"})
    assert r.status_code == 422 and "has-error" in r.get_data(as_text=True)
    r = client.post("/login/", data={"username": CITIZEN_IDENTITY, "password": "saoy-demo"})
    assert r.status_code == 302 and "/login" not in r.headers["Location"]


# --- availability and booking -----------------------------------------------------------

def test_slots_follow_the_plan_hide_closed_days_and_full_slots(app, client, db_session, office,
                                                               doc_type, citizen_factory):
    from modules.appointments.models import Closure

    a = office("A")
    start = closure_start()
    day = start.date().isoformat()
    r = client.get(f"/api/v1/appointment/slots?office_id={a.id}&date_from={day}&date_to={day}")
    slots = r.get_json()["slots"]
    times = [s["start"][11:16] for s in slots]
    assert times[0] == "07:30" and "11:15" in times and "11:30" not in times
    assert "13:30" in times and "16:45" in times and "12:00" not in times
    assert all(s["start"].endswith("+07:00") and s["remaining"] <= 3 for s in slots)

    for _ in range(3):
        book(app, db_session, citizen_factory().user, a, doc_type, start)
    slots = client.get(f"/api/v1/appointment/slots?office_id={a.id}&date_from={day}"
                       f"&date_to={day}").get_json()["slots"]
    assert start.isoformat() not in [s["start"] for s in slots]  # full: hidden

    db_session.add(Closure(office_id=a.id, name="Nghỉ bù", date_from=start.date(),
                           date_to=start.date()))
    db_session.commit()
    r = client.get(f"/api/v1/appointment/slots?office_id={a.id}&date_from={day}&date_to={day}")
    assert r.get_json()["slots"] == []


@pytest.mark.parametrize("query,status", [
    ("office_id=999999", 404), ("office_id=abc", 404), ("office_id={a}&date_from=2026-13-40", 422),
    ("office_id={a}&date_from=2026-01-10&date_to=2026-01-01", 422),
    ("office_id={a}&document_type_id=999999", 422), ("office_id={province}", 422),
])
def test_slots_bad_input_is_a_clear_4xx(client, db_session, office, query, status):
    from app.offices.models import Office

    province = db_session.scalars(select(Office).where(Office.code == "79")).one()
    r = client.get("/api/v1/appointment/slots?" + query.format(a=office("A").id,
                                                               province=province.id))
    assert r.status_code == status and r.get_json()["message"]


def test_booking_through_the_api_gives_a_code_and_an_sms_in_vietnam_time(
        app, api, db_session, office, doc_type, citizen_factory):
    from app.notifications.models import Channel, Message

    citizen = citizen_factory()
    client, headers = api(citizen.identity_number, "mat-khau-123")
    start = unique_start()
    r = client.post("/api/v1/appointment/", headers=headers, json={
        "office_id": office("A").id, "document_type_id": doc_type.id,
        "start": start.replace(tzinfo=None).isoformat(), "documents": 2})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert re.fullmatch(r"[A-HJ-KMNP-Z2-9]{4}-[A-HJ-KMNP-Z2-9]{4}", body["code"])
    assert body["start"] == start.isoformat() and body["office"] == office("A").name
    sms = db_session.scalars(select(Message).where(
        Message.channel == Channel.sms, Message.related_id == body["id"],
        Message.related_type == "Appointment")).one()
    assert body["code"] in sms.body_text
    assert start.strftime("%H:%M") in sms.body_text and start.strftime("%d/%m/%Y") in \
        sms.body_text
    assert sms.recipient == "84" + citizen.phone[2:]
    mine = client.get("/api/v1/appointment/", headers=headers).get_json()["result"]
    assert [a["code"] for a in mine] == [body["code"]]


def test_booking_rules_give_clear_messages(app, api, db_session, office, doc_type,
                                           citizen_factory):
    from modules.appointments.models import Closure

    citizen = citizen_factory()
    client, headers = api(citizen.identity_number, "mat-khau-123")
    a = office("A")

    def post(start, **extra):
        return client.post("/api/v1/appointment/", headers=headers, json={
            "office_id": a.id, "document_type_id": doc_type.id,
            "start": start if isinstance(start, str) else start.isoformat(), **extra})

    assert post("2020-01-06T08:00:00").status_code == 422  # past
    assert post("yesterday").status_code == 422
    assert post(future_start(5, 0).replace(minute=37)).status_code == 422  # not a slot start
    assert post(future_start(60, 0)).status_code == 422  # beyond the horizon
    sunday = future_start(5, 0)
    sunday += dt.timedelta(days=6 - sunday.weekday())
    assert post(sunday).status_code == 422
    assert post(future_start(5, 0), office_id=999999).status_code == 404
    assert post(future_start(5, 0), documents=0).status_code == 422
    closed = closure_start()
    db_session.add(Closure(office_id=a.id, name="Tết", date_from=closed.date(),
                           date_to=closed.date()))
    db_session.commit()
    r = post(closed)
    assert r.status_code == 422 and closed.strftime("%d/%m/%Y") in r.get_json()["message"]

    first = unique_start()
    assert post(first).status_code == 201
    assert post(first).status_code == 409  # overlapping its own appointment
    assert post(unique_start()).status_code == 201
    assert post(unique_start()).status_code == 201
    r = post(unique_start())
    assert r.status_code == 409 and "3" in r.get_json()["message"]  # at most 3 active
    staff_client, staff_headers = api("officer.a")
    assert staff_client.post("/api/v1/appointment/", headers=staff_headers, json={
        "office_id": a.id, "document_type_id": doc_type.id,
        "start": unique_start().isoformat()}).status_code in (403, 401)


def test_fifty_concurrent_bookings_fill_a_slot_of_three_exactly(app, db_session, office,
                                                                doc_type, citizen_factory):
    """50 citizens click "Book" on the same slot at once: exactly 3 get it."""
    from modules.appointments import services
    from modules.appointments.models import Appointment, AppointmentSlot

    names = [f"Khách Hàng {a}{b}" for a in "ABCDE" for b in "ABCDEGHKLM"]
    user_ids = [citizen_factory(name=name).user_id for name in names]
    start = unique_start()
    office_id, type_id = office("A").id, doc_type.id
    # Fifty connections at once: more than the app's pool holds.
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=55, max_overflow=0,
                           **({"connect_args": {"timeout": 60}}
                              if app.config["SAOY_BACKEND"] == "sqlite" else {}))
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def worker(user_id: int):
        from app.users import StaffUser

        with app.test_request_context(), Session(bind=engine) as session:
            try:
                user = session.get(StaffUser, user_id)
                barrier.wait(timeout=120)
                with atomic(session):
                    services.book(session, user, office_id=office_id, document_type_id=type_id,
                                  start=start)
                result = "booked"
            except services.SlotFullError:
                result = "full"
            except Exception as exc:  # noqa: BLE001 - reported below
                result = repr(exc)
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(uid,)) for uid in user_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert sorted(set(outcomes)) == ["booked", "full"], outcomes
    assert outcomes.count("booked") == 3
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    with Session(bind=engine_of(app)) as session:
        assert session.query(Appointment).filter(Appointment.start == utc,
                                                 Appointment.office_id == office_id).count() == 3
        assert session.scalars(select(AppointmentSlot.booked).where(
            AppointmentSlot.office_id == office_id, AppointmentSlot.start == utc)).one() == 3


# --- office side ------------------------------------------------------------------------

def test_booking_shows_in_office_a_pending_list_only_and_reschedule_notifies(
        app, login, db_session, office, doc_type, citizen_factory):
    from app.notifications.models import Channel, InboxItem, Message
    from modules.appointments.models import Appointment, AppointmentSlot, AppointmentStatus

    citizen = citizen_factory(name="Đoàn Thị Xuân")
    start = unique_start()
    appointment = book(app, db_session, citizen.user, office("A"), doc_type, start)
    code = appointment.code

    officer_a, officer_b = login("officer.a"), login("officer.b")
    assert code in officer_a.get("/pendingappointments/list/?_flt_0_code=" +
                                 appointment.code).get_data(as_text=True)
    assert code not in officer_b.get("/pendingappointments/list/").get_data(as_text=True)

    page = officer_a.get(f"/pendingappointments/change/reschedule/{appointment.id}")
    assert page.status_code == 200
    new_start = unique_start()
    assert new_start.isoformat() in page.get_data(as_text=True)
    r = officer_a.post(f"/pendingappointments/change/reschedule/{appointment.id}",
                       data={"start": new_start.isoformat(), "reason": ""})
    assert "lý do" in r.get_data(as_text=True).lower() or "reason" in r.get_data(as_text=True)
    r = officer_a.post(f"/pendingappointments/change/reschedule/{appointment.id}",
                       data={"start": new_start.isoformat(), "reason": "Cán bộ đi công tác"})
    assert r.status_code == 302

    db_session.expire_all()
    moved = db_session.get(Appointment, appointment.id)
    assert moved.status is AppointmentStatus.rescheduled
    assert moved.start == new_start.astimezone(dt.UTC).replace(tzinfo=None)
    old_utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    assert db_session.scalars(select(AppointmentSlot.booked).where(
        AppointmentSlot.office_id == office("A").id, AppointmentSlot.start == old_utc)).one() == 0

    web = login(citizen.identity_number, "mat-khau-123")
    detail = web.get(f"/appointments/{appointment.id}").get_data(as_text=True)
    assert new_start.strftime("%H:%M") in detail and new_start.strftime("%d/%m/%Y") in detail
    inbox = db_session.scalars(select(InboxItem).where(
        InboxItem.user_id == citizen.user_id)).all()
    assert any("Cán bộ đi công tác" in item.body for item in inbox) or db_session.scalars(
        select(Message).where(Message.channel == Channel.portal,
                              Message.kind == "appointment_rescheduled",
                              Message.related_id == appointment.id)).first()
    sms = db_session.scalars(select(Message).where(
        Message.channel == Channel.sms, Message.kind == "appointment_rescheduled",
        Message.related_id == appointment.id)).one()
    assert new_start.strftime("%H:%M") in sms.body_text and "Cán bộ đi công tác" in sms.body_text


def test_another_office_gets_404_on_every_appointment_door(app, login, api, db_session,
                                                          office, doc_type, citizen_factory):
    from modules.appointments.models import Appointment, AppointmentStatus

    appointment = book(app, db_session, citizen_factory().user, office("A"), doc_type,
                       unique_start())
    pk = appointment.id
    web = login("officer.b")
    rest, headers = api("officer.b")
    assert web.get(f"/pendingappointments/show/{pk}").status_code == 404
    for name in ("process", "reschedule", "cancel"):
        assert web.post(f"/pendingappointments/action/{name}/{pk}").status_code == 404, name
        assert web.post("/pendingappointments/action_post",
                        data={"action": name, "rowid": [pk]}).status_code == 404, name
    for what in ("reschedule", "cancel"):
        assert web.get(f"/pendingappointments/change/{what}/{pk}").status_code == 404
        assert web.post(f"/pendingappointments/change/{what}/{pk}",
                        data={"reason": "x", "start": unique_start().isoformat()}
                        ).status_code == 404
    assert rest.get(f"/api/v1/appointment/{pk}", headers=headers).status_code == 404
    assert rest.post(f"/api/v1/appointment/{pk}/cancel", json={"reason": "x"},
                     headers=headers).status_code == 404
    assert rest.post(f"/api/v1/appointment/{pk}/reschedule", headers=headers, json={
        "reason": "x", "start": unique_start().isoformat()}).status_code == 404
    listed = rest.get("/api/v1/appointment/", headers=headers).get_json()["result"]
    assert pk not in {row["id"] for row in listed}
    other = login("citizen")
    assert other.get(f"/appointments/{pk}").status_code == 404
    assert other.get(f"/appointments/{pk}/calendar.ics").status_code == 404
    db_session.expire_all()
    assert db_session.get(Appointment, pk).status is AppointmentStatus.booked
    # and office A's own officer can do it
    rest_a, headers_a = api("officer.a")
    assert rest_a.get(f"/api/v1/appointment/{pk}", headers=headers_a).status_code == 200


def test_process_marks_processed_once_even_when_clicked_twice(app, login, db_session, office,
                                                              doc_type, citizen_factory):
    from modules.appointments.models import Appointment, AppointmentStatus

    appointment = book(app, db_session, citizen_factory().user, office("A"), doc_type,
                       unique_start())
    handlers = app.extensions["saoy_hooks"]["appointments.process"]
    saved = list(handlers)
    handlers.clear()  # the bare module: no intake form takes over
    try:
        web = login("officer.a")
        assert web.post(f"/pendingappointments/action/process/{appointment.id}"
                        ).status_code == 302
        second = web.post(f"/pendingappointments/action/process/{appointment.id}",
                          follow_redirects=True)
        assert "already" in second.get_data(as_text=True) or "đã" in \
            second.get_data(as_text=True)
    finally:
        handlers[:] = saved
    db_session.expire_all()
    assert db_session.get(Appointment, appointment.id).status is AppointmentStatus.processed


def test_citizen_cancels_with_reason_until_the_cutoff_and_the_place_is_freed(
        app, api, db_session, office, doc_type, citizen_factory):
    from modules.appointments import workflow
    from modules.appointments.models import AppointmentSlot

    citizen = citizen_factory()
    client, headers = api(citizen.identity_number, "mat-khau-123")
    start = unique_start()
    appointment = book(app, db_session, citizen.user, office("A"), doc_type, start)
    r = client.post(f"/api/v1/appointment/{appointment.id}/cancel", json={}, headers=headers)
    assert r.status_code == 422
    late = start.astimezone(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    with app.test_request_context(), pytest.raises(workflow.WorkflowError) as refused:
        workflow.cancel(db_session, citizen.user, appointment.id, "ốm", now=late)
    assert refused.value.status == 409
    r = client.post(f"/api/v1/appointment/{appointment.id}/cancel", json={"reason": "Bận việc"},
                    headers=headers)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert client.post(f"/api/v1/appointment/{appointment.id}/cancel",
                       json={"reason": "lần hai"}, headers=headers).status_code == 409
    assert db_session.scalars(select(AppointmentSlot.booked).where(
        AppointmentSlot.office_id == office("A").id,
        AppointmentSlot.start == appointment.start)).one() == 0
    # citizens cannot reschedule
    assert client.post(f"/api/v1/appointment/{appointment.id}/reschedule", headers=headers,
                       json={"start": unique_start().isoformat(), "reason": "x"}
                       ).status_code in (401, 403)


def test_reminders_go_once_and_past_appointments_become_no_show(app, db_session, office,
                                                               doc_type, citizen_factory):
    from app.notifications.models import Channel, Message
    from modules.appointments import jobs
    from modules.appointments.models import Appointment, AppointmentStatus

    start = unique_start()
    appointment = book(app, db_session, citizen_factory().user, office("A"), doc_type, start)
    eve = (start - dt.timedelta(days=1)).replace(hour=9).astimezone(dt.UTC).replace(tzinfo=None)
    with app.app_context():
        assert jobs.send_reminders(db_session, now=eve) >= 1
        assert jobs.send_reminders(db_session, now=eve) == 0
    reminders = db_session.scalars(select(Message).where(
        Message.kind == "appointment_reminder", Message.related_id == appointment.id,
        Message.channel == Channel.sms)).all()
    assert len(reminders) == 1 and start.strftime("%H:%M") in reminders[0].body_text

    next_day = (start + dt.timedelta(days=1)).astimezone(dt.UTC).replace(tzinfo=None)
    with app.app_context():
        jobs.mark_no_shows(db_session, now=next_day)
    db_session.expire_all()
    assert db_session.get(Appointment, appointment.id).status is AppointmentStatus.no_show


def test_closure_over_booked_days_lists_the_appointments_and_keeps_them(
        app, login, db_session, office, doc_type, citizen_factory):
    from modules.appointments.models import Appointment, AppointmentStatus

    start = closure_start()
    appointment = book(app, db_session, citizen_factory().user, office("A"), doc_type, start)
    web = login("officeadmin.a")
    day = start.strftime("%Y-%m-%d")
    r = web.post("/closureview/add", data={"name": "Nghỉ lễ", "date_from": day, "date_to": day},
                 follow_redirects=True)
    assert appointment.code in r.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(Appointment, appointment.id).status is AppointmentStatus.booked


def test_booking_pages_in_the_browser_flow(app, login, db_session, office, doc_type,
                                          citizen_factory):
    """Office search → form → book → success page with code, .ics in UTC."""
    citizen = citizen_factory()
    web = login(citizen.identity_number, "mat-khau-123")
    a = office("A")
    assert a.name in web.get("/appointments/book?q=Sài Gòn").get_data(as_text=True)
    start = unique_start()
    page = web.get(f"/appointments/book?office_id={a.id}&date={start.date().isoformat()}")
    assert start.isoformat() in page.get_data(as_text=True)
    r = web.post("/appointments/book", data={"office_id": a.id, "document_type_id": doc_type.id,
                                             "documents": 1, "start": start.isoformat()})
    assert r.status_code == 302
    done = web.get(r.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="appointment-code"[^>]*>([A-Z0-9-]+)<', done).group(1)
    assert start.strftime("%d/%m/%Y") in done and start.strftime("%H:%M") in done
    ics = web.get(r.headers["Location"].split("?")[0] + "/calendar.ics").get_data(as_text=True)
    assert "DTSTART:" + start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") in ics
    assert code in ics
    full = web.post("/appointments/book", data={
        "office_id": a.id, "document_type_id": doc_type.id, "documents": 1,
        "start": "2020-01-01T08:00:00+07:00"}, follow_redirects=True)
    assert full.status_code == 200 and "alert-danger" in full.get_data(as_text=True)
