"""`flask saoy …` commands: seeding, demo data, audit verification, worker."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.modules import resolve, specs_of

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
    from app.ops import beat

    beat()  # alive from the first second, not after the first interval
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


@saoy.command("init")
@click.option("--admin", "admin_username", default=None, help="the first administrator")
@click.option("--admin-email", default=None)
@click.option("--admin-password-file", type=click.Path(exists=True, dir_okay=False),
              default=None)
def init(admin_username, admin_email, admin_password_file) -> None:
    """Roles, reference data and (once) the first administrator.  Run after `db upgrade`;
    the only place permissions are written (web and worker processes never do)."""
    from pathlib import Path

    from app.ops import init as run_init

    password = Path(admin_password_file).read_text().strip() if admin_password_file else None
    try:
        for line in run_init(admin_username, admin_email, password):
            click.echo(line)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@saoy.command("backup")
@click.argument("target", type=click.Path(file_okay=False))
def backup(target) -> None:
    """A consistent snapshot into TARGET (new folder): database, files, keys, manifest."""
    from pathlib import Path

    from app.ops import backup as run_backup

    manifest = run_backup(current_app._get_current_object(), Path(target))
    click.echo(f"backup of {manifest['database']} at revision {manifest['revision']}: "
               f"{len(manifest['files'])} files, manifest.json written")


@saoy.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
def restore(source) -> None:
    """Rebuild this fresh server (empty database, empty data folder) from SOURCE, then
    check every file's hash and the audit chain; exit 1 if anything is wrong."""
    from pathlib import Path

    from app.ops import restore as run_restore

    try:
        report = run_restore(current_app._get_current_object(), Path(source))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored backup of {report['created_at']} (revision {report['revision']}): "
               f"{report['files_checked']} files, {report['audit_events']} audit events")
    if report["files_damaged"] or not report["audit_ok"]:
        click.echo(f"DAMAGED: files {report['files_damaged']}, audit chain ok: "
                   f"{report['audit_ok']}", err=True)
        sys.exit(1)


@saoy.command("files-sweep")
@click.option("--older-than-hours", type=float, default=24, show_default=True)
def files_sweep(older_than_hours: float) -> None:
    """Move files no row refers to (left by rolled-back work) to DATA_DIR/orphans."""
    from flask import current_app

    from app.ops import sweep_files

    moved, removed = sweep_files(current_app._get_current_object(), older_than_hours)
    click.echo(f"{len(moved)} orphan file(s) moved to orphans/, {removed} temporary "
               f"file(s) removed")


@saoy.command("health")
def health() -> None:
    """What /health answers, on the command line (exit 1 when something is down)."""
    import json

    from app.ops import health as run_health

    report, ok = run_health(current_app._get_current_object())
    click.echo(json.dumps(report, indent=1))
    sys.exit(0 if ok else 1)


def register_cli(app: Flask) -> None:
    for spec in specs_of(app):
        if spec.cli:
            resolve(spec.cli)(saoy)
    app.cli.add_command(saoy)
