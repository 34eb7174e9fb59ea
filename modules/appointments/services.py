"""Appointment rules: availability, booking, reschedule, cancel, process, jobs, and the
office's settings, working plan and closures.

The only code that changes appointments; it never commits (the edge does).  A
booking takes its place with one conditional UPDATE of the slot counter
(``booked < capacity``), never a count followed by an insert, and serialises per
citizen on the citizen row so the "at most N active, never overlapping" rule holds
under concurrent clicks too.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app import audit, params
from app.citizens.models import Citizen
from app.citizens.services import citizen_of
from app.errors import DomainError
from app.notifications.services import Recipient, notify
from app.offices.models import Office
from app.offices.services import certifying_kinds, is_offered
from app.params import as_id
from app.records import RecordService
from app.scope import scoped
from app.sql import insert_ignore
from app.timeutil import VN_TZ, to_local, to_utc, utcnow
from modules.appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSettings,
    AppointmentSlot,
    AppointmentStatus,
    Closure,
    WorkingSession,
)

SETTING_LABELS = {
    "slot_minutes": _l("Slot length (minutes)"), "capacity": _l("Places per slot"),
    "horizon_days": _l("Booking horizon (days)"), "min_notice_hours": _l("Minimum notice (hours)"),
    "cancel_cutoff_hours": _l("Online cancellation until (hours before)"),
}

#: No 0/O, 1/I/L: read aloud over the phone without mistakes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
DAYS_IN_WEEK = 7


class AppointmentError(DomainError):
    """A booking rule was broken; the message is for the user."""


class SlotFullError(AppointmentError):
    status = 409


@dataclass(frozen=True)
class FreeSlot:
    start: dt.datetime  # naive UTC
    remaining: int

    @property
    def local(self) -> dt.datetime:
        return to_local(self.start)


def new_code() -> str:
    """Stored and shown as XXXX-XXXX (31^8 ≈ 8.5 · 10^11 codes: not guessable)."""
    return normalize_code("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)))


def normalize_code(raw: str) -> str:
    """What a person typed (any case, with or without the dash) → XXXX-XXXX."""
    plain = (raw or "").upper().replace("-", "").replace(" ", "")
    return f"{plain[:4]}-{plain[4:]}"


def today_vn(now: dt.datetime | None = None) -> dt.date:
    return to_local(now or utcnow()).date()


# --- configuration ----------------------------------------------------------------------

def settings_for(session: Session, office_id: int) -> AppointmentSettings:
    """The office's settings, or the defaults (not saved) when it has none yet."""
    row = session.scalars(
        select(AppointmentSettings).where(AppointmentSettings.office_id == office_id)).first()
    return row or AppointmentSettings(office_id=office_id, slot_minutes=15, capacity=3,
                                      horizon_days=30, min_notice_hours=2,
                                      cancel_cutoff_hours=2)


def bookable_offices(session: Session, query: str | None = None) -> list[Office]:
    """Offices that certify now (communes), searchable by name."""
    stmt = select(Office).where(Office.active.is_(True), Office.kind.in_(certifying_kinds()))
    if query:
        like = f"%{query.strip()}%"
        stmt = stmt.where(or_(Office.name.ilike(like), Office.code.ilike(like),
                              Office.address.ilike(like)))
    return list(session.scalars(stmt.order_by(Office.name)))


def bookable_office(session: Session, office_id: Any) -> Office:
    office = session.get(Office, as_id(office_id)) if as_id(office_id) else None
    if office is None or not office.active or office.kind not in certifying_kinds():
        raise AppointmentError(_("This office does not exist or does not take appointments."),
                               status=404 if office is None else 422)
    return office


def _plan(session: Session, office_id: int) -> dict[int, list[tuple[dt.time, dt.time]]]:
    plan: dict[int, list[tuple[dt.time, dt.time]]] = defaultdict(list)
    for ws in session.scalars(select(WorkingSession).where(WorkingSession.office_id == office_id)
                              .order_by(WorkingSession.start_time)):
        begin, end = WorkingSession.parse(ws.start_time), WorkingSession.parse(ws.end_time)
        if begin and end:
            plan[ws.weekday].append((begin, end))
    return plan


def _closed_days(session: Session, office_id: int, first: dt.date, last: dt.date) -> set[dt.date]:
    days: set[dt.date] = set()
    for closure in session.scalars(select(Closure).where(
            Closure.office_id == office_id, Closure.date_from <= last, Closure.date_to >= first)):
        day = max(closure.date_from, first)
        while day <= min(closure.date_to, last):
            days.add(day)
            day += dt.timedelta(days=1)
    return days


def is_closed(session: Session, office_id: int, day: dt.date) -> bool:
    """A closure or holiday of the office covers ``day`` (used for due dates too)."""
    return day in _closed_days(session, office_id, day, day)


def day_starts(plan: dict[int, list[tuple[dt.time, dt.time]]], slot_minutes: int,
               day: dt.date) -> list[dt.datetime]:
    """Slot starts of one day (aware, Vietnam time): each session cut into whole slots."""
    starts = []
    step = dt.timedelta(minutes=slot_minutes)
    for begin, end in plan.get(day.weekday(), ()):
        current = dt.datetime.combine(day, begin, tzinfo=VN_TZ)
        stop = dt.datetime.combine(day, end, tzinfo=VN_TZ)
        while current + step <= stop:
            starts.append(current)
            current += step
    return starts


def _window(settings: AppointmentSettings, now: dt.datetime) -> tuple[dt.datetime, dt.date]:
    """Earliest bookable start (UTC) and last bookable day (Vietnam date)."""
    earliest = now + dt.timedelta(hours=settings.min_notice_hours)
    return earliest, today_vn(now) + dt.timedelta(days=settings.horizon_days)


def availability(session: Session, office_id: int, date_from: dt.date, date_to: dt.date,
                 now: dt.datetime | None = None) -> list[FreeSlot]:
    """Free slots of one office between two Vietnam dates, with remaining places.

    Full slots are left out, as are closed days and slots outside the booking
    horizon or inside the minimum notice.  One query reads the booked counters.
    """
    now = now or utcnow()
    settings = settings_for(session, office_id)
    earliest, last_day = _window(settings, now)
    first = max(date_from, to_local(earliest).date())
    last = min(date_to, last_day)
    if first > last:
        return []
    plan = _plan(session, office_id)
    closed = _closed_days(session, office_id, first, last)
    range_start = to_utc(dt.datetime.combine(first, dt.time.min, tzinfo=VN_TZ))
    range_end = to_utc(dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min,
                                           tzinfo=VN_TZ))
    booked = dict(session.execute(
        select(AppointmentSlot.start, AppointmentSlot.booked).where(
            AppointmentSlot.office_id == office_id, AppointmentSlot.start >= range_start,
            AppointmentSlot.start < range_end)).all())
    free = []
    day = first
    while day <= last:
        if day not in closed:
            for local_start in day_starts(plan, settings.slot_minutes, day):
                start = to_utc(local_start)
                if start < earliest:
                    continue
                remaining = settings.capacity - booked.get(start, 0)
                if remaining > 0:
                    free.append(FreeSlot(start, remaining))
        day += dt.timedelta(days=1)
    return free


def parse_start(value: Any) -> dt.datetime:
    """ISO text or datetime → naive UTC; a time without zone is Vietnam time."""
    try:
        return to_utc(params.moment(value, _("The appointment time")))
    except params.ParamError:
        raise AppointmentError(_("The appointment time is not valid.")) from None


def check_slot(session: Session, office_id: int, start: dt.datetime,
               now: dt.datetime | None = None) -> tuple[AppointmentSettings, dt.datetime]:
    """Is ``start`` (naive UTC) a slot of the office's plan that may be booked now?

    Returns the settings and the slot's end; raises with the precise reason.
    """
    now = now or utcnow()
    settings = settings_for(session, office_id)
    local = to_local(start)
    if start <= now:
        raise AppointmentError(_("This time is in the past. Please choose a later time."))
    earliest, last_day = _window(settings, now)
    if start < earliest:
        raise AppointmentError(_("Appointments must be booked at least %(hours)s hours ahead.",
                                 hours=settings.min_notice_hours))
    if local.date() > last_day:
        raise AppointmentError(_("Appointments can be booked at most %(days)s days ahead.",
                                 days=settings.horizon_days))
    if local.date() in _closed_days(session, office_id, local.date(), local.date()):
        raise AppointmentError(_("The office is closed on %(date)s.",
                                 date=local.strftime("%d/%m/%Y")))
    if local not in day_starts(_plan(session, office_id), settings.slot_minutes, local.date()):
        raise AppointmentError(_("The office does not receive appointments at this time."))
    return settings, start + dt.timedelta(minutes=settings.slot_minutes)


def take_place(session: Session, office_id: int, start: dt.datetime, capacity: int) -> None:
    """One conditional UPDATE: succeeds only while the slot has room."""
    insert_ignore(session, AppointmentSlot, {"office_id": office_id, "start": start,
                                             "booked": 0}, ["office_id", "start"])
    taken = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.office_id == office_id, AppointmentSlot.start == start,
               AppointmentSlot.booked < capacity)
        .values(booked=AppointmentSlot.booked + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        raise SlotFullError(_("This time slot is already full. Please choose another time."))


def free_place(session: Session, office_id: int, start: dt.datetime) -> None:
    session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.office_id == office_id, AppointmentSlot.start == start,
               AppointmentSlot.booked > 0)
        .values(booked=AppointmentSlot.booked - 1)
        .execution_options(synchronize_session=False))


# --- citizens ---------------------------------------------------------------------------

def _lock_citizen(session: Session, citizen_id: int) -> None:
    """Serialise one citizen's bookings (row lock on PostgreSQL, write lock on SQLite)."""
    session.execute(update(Citizen).where(Citizen.id == citizen_id)
                    .values(id=Citizen.id).execution_options(synchronize_session=False))


def recipient(appointment: Appointment) -> Recipient:
    citizen = appointment.citizen
    return Recipient(user_id=citizen.user_id, phone=appointment.phone or citizen.phone,
                     email=citizen.email)


def message_context(appointment: Appointment, settings: AppointmentSettings | None = None,
                    **extra: Any) -> dict[str, Any]:
    return {
        "code": appointment.code, "office": appointment.office.name,
        "address": appointment.office.address or "", "date": appointment.local_date(),
        "time": appointment.local_time(), "documents": appointment.documents,
        "document_type": appointment.document_type.name_vi,
        "what_to_bring": (settings.what_to_bring if settings else None) or default_what_to_bring(),
        **extra,
    }


def default_what_to_bring() -> str:
    return _("Bring the originals of your documents and your identity card.")


def book(session: Session, user: Any, *, office_id: Any, document_type_id: Any, start: Any,
         documents: Any = 1, note: str | None = None, now: dt.datetime | None = None
         ) -> Appointment:
    """A citizen books a slot.  Commits; raises AppointmentError (409 when full)."""
    now = now or utcnow()
    citizen = citizen_of(session, user)
    if citizen is None:
        raise AppointmentError(_("Only citizens with an account can book appointments."),
                               status=403)
    office = bookable_office(session, office_id)
    type_id = as_id(document_type_id)
    if type_id is None:
        raise AppointmentError(_("Choose a document type and the number of documents."))
    try:
        documents = params.integer(documents, _("Documents"), low=1, high=50, default=1)
    except params.ParamError:
        raise AppointmentError(_("The number of documents must be between 1 and 50.")) \
            from None
    note = params.text(note, _("Note"), max_length=2000)
    if not is_offered(session, office.id, type_id):
        raise AppointmentError(_("This office does not certify this document type."))
    start = parse_start(start)
    settings, end = check_slot(session, office.id, start, now)
    _lock_citizen(session, citizen.id)
    active = list(session.scalars(select(Appointment).where(
        Appointment.citizen_id == citizen.id, Appointment.status.in_(ACTIVE_STATUSES))))
    limit = current_app.config["APPOINTMENT_MAX_ACTIVE"]
    if len(active) >= limit:
        raise AppointmentError(_(
            "You already have %(count)s active appointments, the most allowed. Cancel one "
            "or wait until it is processed.", count=len(active)), status=409)
    if any(a.start < end and a.end > start for a in active):
        raise AppointmentError(_("You already have an appointment at this time."),
                               status=409)
    take_place(session, office.id, start, settings.capacity)
    appointment = Appointment(
        office_id=office.id, code=new_code(), citizen_id=citizen.id,
        full_name=citizen.full_name, identity_number=citizen.identity_number,
        phone=citizen.phone, document_type_id=type_id, documents=documents,
        start=start, end=end, status=AppointmentStatus.booked, note=note or None,
        created_at=now)
    session.add(appointment)
    session.flush()
    audit.record(session, user, "appointment_booked", obj=appointment,
                 to_state=AppointmentStatus.booked.value)
    notify(session, recipient(appointment), "appointment_booked",
           message_context(appointment, settings), office_id=office.id,
           related=appointment)
    return appointment


# --- lookups ----------------------------------------------------------------------------

def get_visible(session: Session, user: Any, appointment_id: Any) -> Appointment:
    """404 (not 403) for anything the user may not see: staff see their offices', a
    citizen their own (``Appointment.__owner__``)."""
    return scoped(session, user, Appointment).get_or_404(appointment_id)


def by_code(session: Session, user: Any, code: str) -> Appointment | None:
    return session.scalars(scoped(session, user, Appointment).select()
                           .where(Appointment.code == normalize_code(code))).first()


def listed(session: Session, user: Any, *, status: AppointmentStatus | None = None,
           day: dt.date | None = None, page: int = 0, newest_first: bool = False
           ) -> list[Appointment]:
    """The appointments a user sees (staff their offices', a citizen their own), one page."""
    stmt = scoped(session, user, Appointment).select()
    if status is not None:
        stmt = stmt.where(Appointment.status == status)
    if day is not None:
        begin = to_utc(dt.datetime.combine(day, dt.time.min, tzinfo=VN_TZ))
        stmt = stmt.where(Appointment.start >= begin,
                          Appointment.start < begin + dt.timedelta(days=1))
    order = Appointment.start.desc() if newest_first else Appointment.start
    return params.page_of(session, stmt.order_by(order, Appointment.id), page)


def affected_by_closure(session: Session, office_id: int, date_from: dt.date,
                        date_to: dt.date) -> list[Appointment]:
    """Active appointments on closed days: they stay booked until staff reschedule them."""
    start = to_utc(dt.datetime.combine(date_from, dt.time.min, tzinfo=VN_TZ))
    end = to_utc(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min,
                                     tzinfo=VN_TZ))
    return list(session.scalars(select(Appointment).where(
        Appointment.office_id == office_id, Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start >= start, Appointment.start < end).order_by(Appointment.start)))


# --- office configuration (FAB's generic forms call these services) ---------------------

#: Bounds of the appointment settings: beyond them a slots page would run away.
SETTING_BOUNDS = {"slot_minutes": (5, 240), "capacity": (1, 100), "horizon_days": (1, 366),
                  "min_notice_hours": (0, 24 * 30), "cancel_cutoff_hours": (0, 24 * 30)}


class SettingsService(RecordService):
    def validate(self, session: Session, user: Any, item: AppointmentSettings, *,
                 created: bool) -> None:
        for name, (low, high) in SETTING_BOUNDS.items():
            value = getattr(item, name)
            if value is None or not low <= value <= high:
                raise AppointmentError(_("%(field)s must be between %(low)s and %(high)s.",
                                         field=SETTING_LABELS[name], low=low, high=high))
        if created and session.scalar(select(AppointmentSettings.id).where(
                AppointmentSettings.office_id == item.office_id)):
            raise AppointmentError(_("Your office already has its appointment settings: edit "
                                     "them instead."), 409)


class WorkingSessionService(RecordService):
    def validate(self, session: Session, user: Any, item: WorkingSession, *,
                 created: bool) -> None:
        if item.weekday is None or item.weekday not in range(DAYS_IN_WEEK):
            raise AppointmentError(_("The weekday must be from 0 (Monday) to 6 (Sunday)."))
        begin, end = WorkingSession.parse(item.start_time), WorkingSession.parse(item.end_time)
        if begin is None or end is None:
            raise AppointmentError(_("Write times as HH:MM, for example 07:30 or 13:30."))
        if begin >= end:
            raise AppointmentError(_("The session must end after it starts."))
        item.start_time, item.end_time = begin.strftime("%H:%M"), end.strftime("%H:%M")


class ClosureService(RecordService):
    """Closures over booked days keep those appointments (staff reschedule them)."""

    def validate(self, session: Session, user: Any, item: Closure, *, created: bool) -> None:
        if item.date_to is None:
            item.date_to = item.date_from
        if item.date_from is None or item.date_from > item.date_to:
            raise AppointmentError(_("The closure must end on or after its first day."))


# --- jobs: each appointment is its own unit of work (the job is the edge) ----------------

def due_reminders(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Appointments of tomorrow not reminded yet (none before the reminder hour)."""
    now = now or utcnow()
    if to_local(now).hour < current_app.config["APPOINTMENT_REMINDER_HOUR"]:
        return []
    tomorrow = today_vn(now) + dt.timedelta(days=1)
    start = to_utc(dt.datetime.combine(tomorrow, dt.time.min, tzinfo=VN_TZ))
    end = start + dt.timedelta(days=1)
    return list(session.scalars(select(Appointment.id).where(
        Appointment.status.in_(ACTIVE_STATUSES), Appointment.reminded_at.is_(None),
        Appointment.start >= start, Appointment.start < end)))


def remind(session: Session, appointment_id: int, now: dt.datetime | None = None) -> bool:
    """SMS the day before.  Claimed with a conditional UPDATE, so several processes
    running the job never remind twice."""
    claimed = session.execute(update(Appointment).where(
        Appointment.id == appointment_id, Appointment.reminded_at.is_(None))
        .values(reminded_at=now or utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        return False
    appointment = session.get(Appointment, appointment_id)
    notify(session, recipient(appointment), "appointment_reminder",
           message_context(appointment), office_id=appointment.office_id,
           related=appointment)
    return True


def stale_appointments(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Active appointments of days that have ended."""
    day_start = to_utc(dt.datetime.combine(today_vn(now or utcnow()), dt.time.min,
                                           tzinfo=VN_TZ))
    return list(session.scalars(select(Appointment.id).where(
        Appointment.status.in_(ACTIVE_STATUSES), Appointment.start < day_start)))


# --- calendar ---------------------------------------------------------------------------

def _ics_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def ics(appointment: Appointment, base_url: str) -> str:
    """An iCalendar event (times in UTC, the calendar app shows local time)."""
    stamp = "%Y%m%dT%H%M%SZ"
    office = appointment.office
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//SaoY//Appointments//VI",
        "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "BEGIN:VEVENT",
        f"UID:{appointment.code}@saoy",
        f"DTSTAMP:{utcnow().strftime(stamp)}",
        f"DTSTART:{appointment.start.strftime(stamp)}",
        f"DTEND:{appointment.end.strftime(stamp)}",
        "SUMMARY:" + _ics_text(_("Certification appointment %(code)s",
                                 code=appointment.code)),
        "LOCATION:" + _ics_text(f"{office.name}, {office.address or ''}".strip(", ")),
        "DESCRIPTION:" + _ics_text(
            f"{appointment.document_type.name_vi} × {appointment.documents}. "
            + default_what_to_bring() + f" {base_url}"),
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"

