"""Appointment settings, working plan, closures, slot counters and appointments.

Times are stored as naive UTC.  ``AppointmentSlot`` holds one counter per office
and start time: a booking takes a place with one conditional UPDATE of that row
(``booked < capacity``), so capacity holds whatever the concurrency.
"""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.citizens.models import Citizen
from app.labels import code_labels, labelled
from app.offices.models import DocumentType
from app.ownership import OfficeOwned, Owner
from app.timeutil import format_date, to_local, utcnow
from app.users import StaffUser


class AppointmentStatus(str, enum.Enum):
    booked = "booked"
    rescheduled = "rescheduled"
    processed = "processed"
    cancelled = "cancelled"
    no_show = "no_show"


ACTIVE_STATUSES = (AppointmentStatus.booked, AppointmentStatus.rescheduled)
STATUS_LABELS = labelled({
    AppointmentStatus.booked: _l("Booked"), AppointmentStatus.rescheduled: _l("Rescheduled"),
    AppointmentStatus.processed: _l("Processed"), AppointmentStatus.cancelled: _l("Cancelled"),
    AppointmentStatus.no_show: _l("No-show"),
})
code_labels({
    "Appointment": _l("Appointment"), "AppointmentSettings": _l("Appointment settings"),
    "WorkingSession": _l("Working session"), "Closure": _l("Day off"),
    "appointment_booked": _l("Appointment booked"),
    "appointment_cancelled": _l("Appointment cancelled"),
    "appointment_no_show": _l("Did not come"), "appointment_processed": _l("Appointment processed"),
    "appointment_rescheduled": _l("Appointment rescheduled"),
    "appointment_reminder": _l("Appointment reminder"),
})
WEEKDAYS = [_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday")]


class AppointmentSettings(OfficeOwned, Model):
    """One row per office: slot length, capacity, horizon, notice and cancel cutoff."""

    __tablename__ = "appt_settings"
    __table_args__ = (
        UniqueConstraint("office_id", name="uq_appt_settings_office"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="ck_appt_settings_slot"),
        CheckConstraint("capacity >= 1", name="ck_appt_settings_capacity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=15)
    capacity: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    horizon_days: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    min_notice_hours: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    cancel_cutoff_hours: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    what_to_bring: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"{self.office.name if self.office else self.office_id}"


class WorkingSession(OfficeOwned, Model):
    """A working session on a weekday (0 = Monday), e.g. 07:30–11:30."""

    @staticmethod
    def parse(value: str | None) -> dt.time | None:
        try:
            return dt.datetime.strptime((value or "").strip(), "%H:%M").time()
        except ValueError:
            return None

    __tablename__ = "appt_working_session"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_appt_session_weekday"),
        CheckConstraint("start_time < end_time", name="ck_appt_session_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer, nullable=False)
    #: "HH:MM" (24 h, Vietnam time): FAB's forms have no time-of-day field.
    start_time: Mapped[str] = mapped_column(String(5), nullable=False)
    end_time: Mapped[str] = mapped_column(String(5), nullable=False)

    @property
    def weekday_name(self) -> str:
        return str(WEEKDAYS[self.weekday]) if self.weekday is not None else ""


class Closure(OfficeOwned, Model):
    """A holiday or closure: one day or a range of days, with a name."""

    __tablename__ = "appt_closure"
    __table_args__ = (CheckConstraint("date_from <= date_to", name="ck_appt_closure_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    date_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    date_to: Mapped[dt.date] = mapped_column(Date, nullable=False)

    def __repr__(self) -> str:
        return self.name


class AppointmentSlot(Model):
    """The counter of booked places at one office and start time (made on first booking)."""

    __tablename__ = "appt_slot"
    __table_args__ = (
        UniqueConstraint("office_id", "start", name="uq_appt_slot_office_start"),
        CheckConstraint("booked >= 0", name="ck_appt_slot_booked"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("org_office.id"), nullable=False)
    start: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    booked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Appointment(OfficeOwned, Model):
    """A citizen's booking; the identity, name and phone are copied at booking time."""

    __tablename__ = "appt_appointment"
    #: Staff see their office's; a citizen their own (booked with any account).
    __owner__ = Owner(office="office_id", citizen="citizen_id")
    __table_args__ = (
        Index("ix_appt_appointment_office_start", "office_id", "start"),
        Index("ix_appt_appointment_citizen_status", "citizen_id", "status"),
        CheckConstraint("documents >= 1", name="ck_appt_appointment_documents"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen_account.id"), nullable=False)
    full_name: Mapped[str] = mapped_column(String(255), nullable=False)
    identity_number: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    phone: Mapped[str | None] = mapped_column(String(16))
    document_type_id: Mapped[int] = mapped_column(ForeignKey("org_document_type.id"),
                                                  nullable=False)
    documents: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    start: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    end: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    status: Mapped[AppointmentStatus] = mapped_column(
        Enum(AppointmentStatus, name="appt_status", native_enum=False, length=16),
        nullable=False, default=AppointmentStatus.booked, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # last cancel / reschedule reason
    reschedule_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    #: Moves with every change of status (``modules.appointments.workflow``): a second or
    #: concurrent click finds it moved.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1,
                                         server_default="1")
    reminded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    citizen: Mapped[Citizen] = relationship(Citizen, lazy="joined")
    document_type: Mapped[DocumentType] = relationship(DocumentType, lazy="joined")
    changed_by = relationship(StaffUser, foreign_keys=[changed_by_id])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def row_actions(self) -> tuple[int, bool]:
        """(id, still active?) for the pending list's buttons."""
        return self.id, self.is_active

    @property
    def status_text(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def local_start_text(self) -> str:
        return self.local_start()

    def local_start(self) -> str:
        return to_local(self.start).strftime("%H:%M %d/%m/%Y")

    def local_date(self) -> str:
        return format_date(self.start)

    def local_time(self) -> str:
        return to_local(self.start).strftime("%H:%M")

    def __repr__(self) -> str:
        return self.code
