"""APScheduler wiring: modules contribute ``Job``s; every process may run them.

Jobs must be safe to run in several processes at once (they claim work with
row locks), so no leader election is needed.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from app.modules import Job, specs_of

log = logging.getLogger(__name__)


def collect_jobs(app: Flask) -> list[Job]:
    return [job for spec in specs_of(app) for job in spec.jobs]


def _in_context(app: Flask, job: Job):
    def run() -> None:
        with app.app_context():
            try:
                job.run()
            except Exception:
                log.exception("job %s failed", job.id)
            finally:
                app.extensions["sqlalchemy"].session.remove()

    return run


def build_scheduler(app: Flask, jobs: Sequence[Job]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="Asia/Ho_Chi_Minh")
    for job in jobs:
        seconds = app.config.get(job.seconds_setting) if job.seconds_setting else None
        seconds = seconds or job.seconds
        trigger_args = {"seconds": seconds} if seconds else dict(job.cron or {})
        trigger = "interval" if seconds else "cron"
        scheduler.add_job(
            _in_context(app, job), trigger, id=job.id, max_instances=1, coalesce=True,
            **trigger_args,
        )
    return scheduler


def start_scheduler(app: Flask) -> BackgroundScheduler | None:
    jobs = collect_jobs(app)
    if not jobs:
        return None
    scheduler = build_scheduler(app, jobs)
    scheduler.start()
    app.extensions["saoy_scheduler"] = scheduler
    return scheduler
