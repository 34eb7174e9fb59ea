"""`flask saoy …` commands: seeding, demo data, audit verification, worker."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

saoy = AppGroup("saoy", help="SaoY administration commands.")


@saoy.command("audit-verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 when it was tampered with."""
    from app.audit import verify_chain
    from app.extensions import db

    report = verify_chain(db.session)
    if report.ok:
        click.echo(f"audit chain intact: {report.checked} events")
        return
    click.echo(f"audit chain BROKEN at event {report.broken_at} "
               f"({report.checked} events verified before it)", err=True)
    sys.exit(1)


@saoy.command("seed")
def seed() -> None:
    """Roles and the document-type catalogue (idempotent; production too)."""
    from app.seed import seed_reference_data

    seed_reference_data()
    click.echo("roles and catalogue seeded")


@saoy.command("demo-data")
def demo_data() -> None:
    """Demo offices, users and data; running it again keeps what exists."""
    from app.demo import load_demo

    created = load_demo()
    click.echo(f"demo data ready ({created} new rows)")


@saoy.command("dispatch-outbox")
@click.option("--loop/--once", default=False, help="Keep dispatching every few seconds.")
def dispatch_outbox(loop: bool) -> None:
    """Send due outbox messages (the web process does this too unless SAOY_SCHEDULER=0)."""
    import time

    from app.notifications.dispatcher import dispatcher_for_app

    dispatcher = dispatcher_for_app(current_app)
    while True:
        handled = dispatcher.drain()
        if not loop:
            click.echo(f"{handled} messages handled")
            return
        time.sleep(current_app.config["OUTBOX_INTERVAL_SECONDS"])


@saoy.command("worker")
def worker() -> None:
    """Run every job (outbox, reminders, no-shows …) in this process, in the foreground."""
    import signal
    import threading

    from app.jobs import start_scheduler

    scheduler = start_scheduler(current_app._get_current_object())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo("worker running; Ctrl+C to stop")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    if scheduler:
        scheduler.shutdown()


def register_cli(app: Flask) -> None:
    for spec in app.extensions["saoy_modules"]:
        if spec.cli:
            spec.cli(saoy)
    app.cli.add_command(saoy)
