"""Availability of one office for 31 days with 10,000 existing appointments.

SaoY reads one booked counter per slot (``appt_slot``); the baseline counts the
appointments per start time with a GROUP BY, as a check-then-insert design would.
Both compute the same free slots in the same run; the target is < 30 ms.

    python -m bench.appointments [appointments]
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import tempfile
import time

from bench.common import bench_app, machine

RUNS = 50


def build(count: int):
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from app.demo import OFFICE_A, load_demo
    from app.extensions import db
    from app.offices.models import Office
    from app.timeutil import utcnow
    from modules.appointments.models import Appointment, AppointmentSlot
    from modules.appointments.services import availability, today_vn

    app = bench_app(tempfile.mkdtemp(prefix="saoy-bench-appt-"))
    with app.app_context():
        upgrade()
        load_demo()
        office_id = db.session.scalars(select(Office.id).where(Office.code == OFFICE_A)).one()
        citizen_id = db.session.execute(db.text("SELECT id FROM citizen_account")).scalar()
        type_id = db.session.execute(db.text("SELECT id FROM org_document_type")).scalar()
        # Fill every free slot of the next 31 days up to capacity, then older history.
        today = today_vn()
        free = availability(db.session, office_id, today, today + dt.timedelta(days=31))
        rows, slots = [], {}
        rng = random.Random(7)
        for n in range(count):
            if n < len(free) * 2:
                start = free[n % len(free)].start
            else:  # history: past appointments of the last two years
                start = utcnow() - dt.timedelta(days=rng.randint(1, 700), minutes=15 * n % 480)
                start = start.replace(second=0, microsecond=0)
            slots[start] = slots.get(start, 0) + 1
            rows.append(dict(office_id=office_id, code=f"B{n:08d}", citizen_id=citizen_id,
                             full_name="Nguyễn Văn A", identity_number="079203001234",
                             document_type_id=type_id, documents=1, start=start,
                             end=start + dt.timedelta(minutes=15), status="booked",
                             reschedule_count=0, created_at=utcnow()))
        db.session.execute(insert(Appointment), rows)
        db.session.execute(insert(AppointmentSlot), [
            dict(office_id=office_id, start=s, booked=b) for s, b in slots.items()])
        db.session.commit()
    return app, office_id


def baseline_availability(session, office_id, date_from, date_to):
    """Same answer, counting appointments per start time instead of reading counters."""
    from sqlalchemy import func, select

    from app.timeutil import VN_TZ, to_utc
    from modules.appointments import services
    from modules.appointments.models import ACTIVE_STATUSES, Appointment

    counts = dict(session.execute(
        select(Appointment.start, func.count()).where(
            Appointment.office_id == office_id, Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.start >= to_utc(dt.datetime.combine(date_from, dt.time.min,
                                                            tzinfo=VN_TZ)))
        .group_by(Appointment.start)).all())
    settings = services.settings_for(session, office_id)
    plan = services._plan(session, office_id)
    closed = services._closed_days(session, office_id, date_from, date_to)
    earliest, last_day = services._window(settings, services.utcnow())
    date_to = min(date_to, last_day)
    free, day = [], date_from
    while day <= date_to:
        if day not in closed:
            for local in services.day_starts(plan, settings.slot_minutes, day):
                start = to_utc(local)
                remaining = settings.capacity - counts.get(start, 0)
                if start >= earliest and remaining > 0:
                    free.append(services.FreeSlot(start, remaining))
        day += dt.timedelta(days=1)
    return free


def measure(func) -> tuple[float, int]:
    times, result = [], []
    for _ in range(RUNS):
        begin = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1000, len(result)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    from app.extensions import db
    from modules.appointments.services import availability, today_vn

    app, office_id = build(count)
    print(f"availability, 31 days, {count} appointments — {machine()}")
    with app.app_context():
        today = today_vn()
        last = today + dt.timedelta(days=31)
        saoy_ms, saoy_n = measure(lambda: availability(db.session, office_id, today, last))
        base_ms, base_n = measure(lambda: baseline_availability(db.session, office_id, today,
                                                                last))
    print(f"  saoy      median {saoy_ms:6.1f} ms  ({saoy_n} free slots)")
    print(f"  baseline  median {base_ms:6.1f} ms  ({base_n} free slots)")


if __name__ == "__main__":
    main()
