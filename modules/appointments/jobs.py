"""The appointment jobs: the edge of their units of work (one appointment each, so one
failure never holds back the others and a crash repeats nothing already done)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.transactions import atomic
from modules.appointments import services, workflow


def send_reminders(session: Session, now: dt.datetime | None = None) -> int:
    sent = 0
    for appointment_id in services.due_reminders(session, now):
        with atomic(session):
            sent += services.remind(session, appointment_id, now)
    return sent


def mark_no_shows(session: Session, now: dt.datetime | None = None) -> int:
    marked = 0
    for appointment_id in services.stale_appointments(session, now):
        with atomic(session):
            marked += workflow.mark_no_show(session, appointment_id, now)
    return marked


def reminders_job() -> None:
    from app.extensions import db

    send_reminders(db.session)


def no_shows_job() -> None:
    from app.extensions import db

    mark_no_shows(db.session)
