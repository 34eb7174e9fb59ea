"""Two app servers and two jobs workers sharing PostgreSQL, the file store and Redis, as if
on four machines: two gunicorn instances on different ports, two ``saoy worker``
processes each running every job (outbox, reminders, no-shows).  The people of
``bench.loadmix`` are split between the two servers; appointments for tomorrow are booked
beforehand so that both workers race to remind them.

Checks: no message sent twice, no reminder twice, no register number twice or skipped, no
slot overbooked across the servers; and the login limit (shared through Redis) allows
its count once in total, not once per server.

    python -m bench.scaleout [minutes]
"""
from __future__ import annotations

import datetime as dt
import sys
import time

import requests

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from bench import loadmix
from bench.load import app_for, deployed
from deploy.stack import BIN, Stack, port

REDIS = "redis://127.0.0.1:6379/14"
LIMIT = 10  # login attempts per address per 5 minutes


def second_server(stack: Stack, env: dict[str, str]) -> str:
    other = port()
    stack.start([str(BIN / "gunicorn"), "--config", str(ROOT / "deploy" / "gunicorn.conf.py")],
                {**env, "SAOY_BIND": f"127.0.0.1:{other}"}, "gunicorn-2")
    stack.start([str(BIN / "saoy"), "worker"], env, "worker-2")
    return f"http://127.0.0.1:{other}"


def book_tomorrow(app, world: loadmix.World, count: int) -> list[int]:
    """Appointments for tomorrow, made through the booking service: the reminder job of
    both workers will find them."""
    from sqlalchemy import select

    from app.extensions import db
    from app.transactions import atomic
    from app.users import StaffUser
    from modules.appointments import services

    booked = []
    with app.app_context():
        tomorrow = services.today_vn() + dt.timedelta(days=1)
        free = services.availability(db.session, world.office_ids["A"], tomorrow,
                                     tomorrow + dt.timedelta(days=6))
        for n, identity in enumerate(world.citizens[:count]):
            user = db.session.scalars(select(StaffUser).where(
                StaffUser.username == identity)).one()
            with atomic(db.session):
                a = services.book(db.session, user, office_id=world.office_ids["A"],
                                  document_type_id=world.type_ids["A"],
                                  start=free[n].local.isoformat())
            booked.append(a.id)
        db.session.remove()
    return booked


def reminders_sent(app, appointment_ids: list[int]) -> dict[int, int]:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.notifications.models import Message

    with app.app_context():
        rows = dict(db.session.execute(select(Message.related_id, func.count()).where(
            Message.kind == "appointment_reminder",
            Message.related_id.in_(appointment_ids)).group_by(Message.related_id)).all())
        db.session.remove()
    return {pk: rows.get(pk, 0) for pk in appointment_ids}


def shared_limit(bases: list[str]) -> tuple[int, int]:
    """Wrong logins from one address, alternating between the servers: how many were
    answered (not 429) — the limit once in total when Redis shares it."""
    answered = limited = 0
    for n in range(3 * LIMIT):
        r = requests.post(f"{bases[n % 2]}/api/v1/security/login", json={
            "username": "nobody", "password": "x", "provider": "db"},
            headers={"X-Forwarded-For": "10.9.9.9"}, timeout=30)
        if r.status_code == 429:
            limited += 1
        else:
            answered += 1
    return answered, limited


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS).flushdb()


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    stack, sinks = Stack(prefix="saoy-bench-scale-"), loadmix.Sinks()
    flush_redis()
    try:
        env = deployed(stack, sinks, workers=2, SAOY_RATELIMIT_STORAGE_URI=REDIS,
                       SAOY_PROXY_FIX="1", SAOY_LOGIN_RATE_LIMIT=f"{LIMIT} per 5 minute",
                       SAOY_APPOINTMENT_REMINDER_HOUR="0", SAOY_APPOINTMENT_JOBS_SECONDS="5")
        first = f"http://127.0.0.1:{stack.app_port}"
        app = app_for(env)
        world = loadmix.prepare(app, [first])
        reminded = book_tomorrow(app, world, 6)
        stack.serve(env)
        second = second_server(stack, env)
        for base in (first, second):
            stack.wait(f"{base}/health/", 120)
        world.bases = [first, second]
        print(f"scale-out: two gunicorn instances (2 workers each) and two jobs workers on "
              f"PostgreSQL, Redis for the limits, {len(loadmix.PEOPLE)} people for "
              f"{minutes:g} min — {machine()}", flush=True)
        started = time.time()
        recorder = loadmix.run(world, minutes * 60)
        elapsed = time.time() - started
        found = loadmix.invariants(app, sinks)
        found["reminders per appointment (each must be 1)"] = sorted(
            reminders_sent(app, reminded).values())
        answered, limited = shared_limit(world.bases)
        found[f"wrong logins answered across both servers (limit {LIMIT})"] = answered
        loadmix.print_report("scale-out", recorder, found, elapsed)
        ok = loadmix.holds(found) and answered <= LIMIT and set(
            found["reminders per appointment (each must be 1)"]) == {1}
        print(f"  scale-out holds: {ok}")
    finally:
        stack.stop()
        sinks.close()


if __name__ == "__main__":
    main()
