"""Figures about appointments for the dashboards, computed by the database over the
appointments the user may see."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy.orm import Session

from app.scope import scoped
from app.sql import as_date, vn_day
from app.timeutil import Period
from modules.appointments.models import Appointment, AppointmentStatus

#: The dashboard's series: booked (rescheduled included), processed, no-show, cancelled.
OUTCOMES = ((_l("Booked"), (AppointmentStatus.booked, AppointmentStatus.rescheduled)),
            (_l("Processed"), (AppointmentStatus.processed,)),
            (_l("No-show"), (AppointmentStatus.no_show,)),
            (_l("Cancelled"), (AppointmentStatus.cancelled,)))


def outcomes_per_day(session: Session, user: Any, period: Period,
                     office_ids: Sequence[int] | None) -> list[tuple[str, list[int]]]:
    """For each outcome, the appointments of each day of the period (their time)."""
    counts = per_day(session, user, period, office_ids)
    return [(str(name), [sum(counts.get((day, s), 0) for s in statuses)
                         for day in period.days]) for name, statuses in OUTCOMES]


def per_day(session: Session, user: Any, period: Period, office_ids: Sequence[int] | None
            ) -> dict[tuple[dt.date, AppointmentStatus], int]:
    """Appointments of each day of the period (their time), by status now."""
    day = vn_day(session, Appointment.start)
    start, end = period.bounds
    query = scoped(session, user, Appointment).select().with_only_columns(
        day, Appointment.status, func.count()).where(
        Appointment.start >= start, Appointment.start < end)
    if office_ids is not None:
        query = query.where(Appointment.office_id.in_(list(office_ids)))
    rows = session.execute(query.group_by(day, Appointment.status))
    return {(as_date(value), AppointmentStatus(status)): count for value, status, count in rows}
