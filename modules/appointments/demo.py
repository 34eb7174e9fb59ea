"""Demo working plan for the two demo communes: Monday–Friday 07:30–11:30 and 13:30–17:00,
Saturday morning; 15-minute slots of 3 places; booking 30 days ahead."""
from __future__ import annotations

from sqlalchemy import select

from app.demo import OFFICE_A, OFFICE_B
from app.extensions import db
from app.offices.models import Office
from modules.appointments.models import AppointmentSettings, WorkingSession

SESSIONS = [(day, "07:30", "11:30") for day in range(6)] + [
    (day, "13:30", "17:00") for day in range(5)]


def load() -> int:
    added = 0
    for office in db.session.scalars(select(Office).where(Office.code.in_((OFFICE_A, OFFICE_B)))):
        if db.session.scalars(select(AppointmentSettings)
                              .where(AppointmentSettings.office_id == office.id)).first():
            continue
        db.session.add(AppointmentSettings(
            office_id=office.id, slot_minutes=15, capacity=3, horizon_days=30,
            min_notice_hours=2, cancel_cutoff_hours=2,
            what_to_bring="Mang theo bản chính giấy tờ cần chứng thực và CCCD/CMND."))
        for weekday, start, end in SESSIONS:
            db.session.add(WorkingSession(office_id=office.id, weekday=weekday,
                                          start_time=start, end_time=end))
        added += 1 + len(SESSIONS)
    db.session.flush()
    return added
