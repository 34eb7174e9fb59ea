"""50 staff and citizens for 5 minutes against gunicorn (4 sync workers) and a jobs worker
on PostgreSQL, as deployed (``deploy/``): the working day's mix of ``bench.loadmix``,
booking and numbering contention included.  Reports p50/p95/p99 per page and checks the
invariants (numbers gap-free, no slot overbooked, every message sent exactly once).

    python -m bench.load [minutes] [users]
"""
from __future__ import annotations

import contextlib
import sys
import time

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from bench import loadmix
from deploy.stack import Stack


def app_for(env: dict[str, str]):
    """An app of the bench's own on the same database and data folder (setup, checks)."""
    from app import create_app

    return create_app({"TESTING": True, "SCHEDULER_ENABLED": False,
                       "SQLALCHEMY_DATABASE_URI": env["SAOY_DATABASE_URL"],
                       "DATA_DIR": env["SAOY_DATA_DIR"]})


def deployed(stack: Stack, sinks: loadmix.Sinks, workers: int = 4, **extra: str) -> dict:
    url, data = stack.database(), stack.work / "data"
    env = {**stack.env(url, data), **sinks.env(), "SAOY_WORKERS": str(workers),
           "SAOY_BASE_URL": f"http://127.0.0.1:{stack.app_port}", "SAOY_PROXY_FIX": "0",
           "SAOY_LOGIN_RATE_LIMIT": "100000 per minute",
           "SAOY_VERIFY_RATE_LIMIT": "100000 per minute", **extra}
    stack.install(env)
    return env


@contextlib.contextmanager
def serving(prefix: str):
    """The deployed stack serving on loopback with its mail and SMS sinks, and a bench app
    on its database holding the load's world: (stack, sinks, env, app, world)."""
    stack, sinks = Stack(prefix=prefix), loadmix.Sinks()
    try:
        env = deployed(stack, sinks)
        stack.serve(env)
        base = f"http://127.0.0.1:{stack.app_port}"
        stack.wait(f"{base}/health/", 120)
        app = app_for(env)
        yield stack, sinks, env, app, loadmix.prepare(app, [base])
    finally:
        stack.stop()
        sinks.close()


def storage(app, data) -> tuple[int, int, int]:
    """Bytes of the database and of the file store, and the copy requests they hold: what
    docs/sizing.md scales to a province's year."""
    from sqlalchemy import func, select, text

    from app.extensions import db
    from modules.copies.models import CopyRequest

    with app.app_context():
        database = db.session.scalar(text("SELECT pg_database_size(current_database())"))
        requests = db.session.scalar(select(func.count(CopyRequest.id)))
        db.session.remove()
    files = sum(f.stat().st_size for f in (data / "files").rglob("*") if f.is_file())
    return database, files, requests


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    users = int(sys.argv[2]) if len(sys.argv) > 2 else len(loadmix.PEOPLE)
    with serving("saoy-bench-load-") as (stack, sinks, _env, app, world):
        print(f"load: {users} people for {minutes:g} min, gunicorn 4 sync workers + a jobs "
              f"worker, PostgreSQL — {machine()}", flush=True)
        before = storage(app, stack.work / "data")
        started = time.time()
        recorder = loadmix.run(world, minutes * 60, loadmix.PEOPLE[:users])
        elapsed = time.time() - started
        loadmix.print_report("load", recorder, loadmix.invariants(app, sinks), elapsed)
        after = storage(app, stack.work / "data")
        grown = after[2] - before[2]
        if grown:
            print(f"  storage: {grown} new requests grew the database by "
                  f"{(after[0] - before[0]) / 2**20:.1f} MB and the file store by "
                  f"{(after[1] - before[1]) / 2**20:.1f} MB "
                  f"({(after[0] - before[0]) / grown / 1024:.1f} KB and "
                  f"{(after[1] - before[1]) / grown / 1024:.1f} KB per request)", flush=True)


if __name__ == "__main__":
    main()
