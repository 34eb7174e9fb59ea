"""The appointment procedure: booked → (rescheduled) → processed | cancelled | no_show, as
one table on the platform's workflow engine (``app.workflow``): who may, from which
states, and what each move does (places taken and freed, the citizen told)."""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app import params
from app.notifications.services import notify
from app.security import is_staff
from app.timeutil import utcnow
from app.workflow import SYSTEM, SYSTEM_ROLE, Transition, Workflow, WorkflowError
from modules.appointments import services
from modules.appointments.models import ACTIVE_STATUSES, Appointment, AppointmentStatus


class Event(str, enum.Enum):
    cancel = "cancel"
    reschedule = "reschedule"
    process = "process"
    no_show = "no_show"


HANDLERS = frozenset({"Officer", "OfficeAdmin"})
CITIZEN = "Citizen"


@dataclass
class Params:
    reason: str | None = None
    start: Any = None  # reschedule: the new start (ISO text or datetime)
    now: dt.datetime | None = None


@dataclass(frozen=True)
class _Move:
    """A reschedule prepared: the new slot and what the citizen is told of the old one."""

    start: dt.datetime
    end: dt.datetime
    capacity: int
    old_start: dt.datetime
    old_date: str
    old_time: str


def _prepare_cancel(session, user, appointment: Appointment, p: Params) -> None:
    """A citizen cancels online until the office's cutoff; staff at any time."""
    if is_staff(user):
        return
    cutoff = services.settings_for(session, appointment.office_id).cancel_cutoff_hours
    if (p.now or utcnow()) > appointment.start - dt.timedelta(hours=cutoff):
        raise WorkflowError(_(
            "Appointments can be cancelled online until %(hours)s hours before their "
            "time. Please contact the office.", hours=cutoff))


def _cancelled(session, user, appointment: Appointment, p: Params, prepared) -> None:
    services.free_place(session, appointment.office_id, appointment.start)
    notify(session, services.recipient(appointment), "appointment_cancelled",
           services.message_context(appointment, reason=p.reason),
           office_id=appointment.office_id, related=appointment)


def _prepare_move(session, user, appointment: Appointment, p: Params) -> _Move:
    start = services.parse_start(p.start)
    if start == appointment.start:
        raise WorkflowError(_("Choose a time different from the current one."), 422)
    settings, end = services.check_slot(session, appointment.office_id, start, p.now)
    return _Move(start, end, settings.capacity, appointment.start, appointment.local_date(),
                 appointment.local_time())


def _take_new_place(session, user, appointment: Appointment, p: Params, move: _Move) -> _Move:
    services.take_place(session, appointment.office_id, move.start, move.capacity)
    return move


def _moved_columns(appointment: Appointment, p: Params, move: _Move) -> dict:
    return {"start": move.start, "end": move.end, "reminded_at": None,
            "reschedule_count": Appointment.reschedule_count + 1}


def _moved(session, user, appointment: Appointment, p: Params, move: _Move) -> None:
    services.free_place(session, appointment.office_id, move.old_start)
    notify(session, services.recipient(appointment), "appointment_rescheduled",
           services.message_context(appointment, reason=p.reason, old_date=move.old_date,
                                    old_time=move.old_time),
           office_id=appointment.office_id, related=appointment)


TRANSITIONS: dict[Event, Transition] = {
    Event.cancel: Transition(
        ACTIVE_STATUSES, AppointmentStatus.cancelled, HANDLERS | {CITIZEN}, _l("Cancel"),
        needs_reason=True, css="btn-danger", prepare=_prepare_cancel, effect=_cancelled,
        audit_event="appointment_cancelled"),
    Event.reschedule: Transition(
        ACTIVE_STATUSES, AppointmentStatus.rescheduled, HANDLERS,
        _l("Reschedule appointment"), needs_reason=True, prepare=_prepare_move,
        reserve=_take_new_place, claim=_moved_columns, effect=_moved,
        audit_event="appointment_rescheduled"),
    # The appointment became a copy request (the copies module's intake), or was handled.
    Event.process: Transition(ACTIVE_STATUSES, AppointmentStatus.processed, HANDLERS,
                              _l("Process"), audit_event="appointment_processed"),
    Event.no_show: Transition(ACTIVE_STATUSES, AppointmentStatus.no_show,
                              frozenset({SYSTEM_ROLE}), _l("Did not come"),
                              audit_event="appointment_no_show", offered=False),
}

WORKFLOW = Workflow(
    Appointment, Event, TRANSITIONS, prefix="appointment", state="status",
    wrong_state=_l("This appointment is %(state)s: %(action)s is not possible now."))
allowed_events = WORKFLOW.allowed_events


def _typed(reason: Any) -> str | None:
    return params.text(reason, _("Reason"), max_length=1000)


def apply(session: Session, user: Any, appointment_id: Any, event: Event | str,
          p: Params | None = None) -> Appointment:
    """Apply one event in the caller's unit of work, or raise with nothing changed."""
    return WORKFLOW.apply(session, user, appointment_id, event, p or Params())


def cancel(session: Session, user: Any, appointment_id: Any, reason: str | None,
           now: dt.datetime | None = None) -> Appointment:
    """Staff cancel any active appointment of their office; a citizen their own, until
    the cutoff.  The place is freed and the citizen notified."""
    return apply(session, user, appointment_id, Event.cancel,
                 Params(reason=_typed(reason), now=now))


def reschedule(session: Session, user: Any, appointment_id: Any, new_start: Any,
               reason: str | None, now: dt.datetime | None = None) -> Appointment:
    """Staff move an appointment to another free slot; old place freed, new one taken."""
    return apply(session, user, appointment_id, Event.reschedule,
                 Params(reason=_typed(reason), start=new_start, now=now))


def mark_processed(session: Session, user: Any, appointment: Appointment) -> Appointment:
    """The appointment became a copy request (or was handled); no notification."""
    return apply(session, user, appointment.id, Event.process)


def mark_no_show(session: Session, appointment_id: int, now: dt.datetime | None = None
                 ) -> bool:
    """The day ended without the citizen (the job's unit of work; False: already moved)."""
    try:
        apply(session, SYSTEM, appointment_id, Event.no_show, Params(now=now))
    except WorkflowError:
        return False
    return True
