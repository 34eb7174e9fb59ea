"""Figures about appointments for the dashboards, computed by the database over the
appointments the user may see."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from app.scope import scoped
from app.sql import as_date, vn_day
from app.timeutil import Period
from modules.appointments.models import Appointment, AppointmentStatus


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
