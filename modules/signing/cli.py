"""``saoy keys …``: the system administrator registers key material and binds it to an
office's seal or to a leader (the command line is an edge: one unit of work each)."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from app.errors import DomainError
from app.extensions import db
from app.offices.models import Office
from app.transactions import atomic
from app.users import StaffUser
from modules.signing import keys


def register(group) -> None:
    """Adds the ``keys`` group to the ``saoy`` command."""

    @group.group("keys")
    def keys_group():
        """Register signing keys and bind them to an office's seal or to a leader."""

    options = [
        click.option("--office", "office_code", required=True, help="office code"),
        click.option("--leader", default=None, help="username of the leader (none: seal)"),
        click.option("--name", default="", help="a name for the key"),
        click.option("--admin", "admin_name", default="admin",
                     help="the administrator who registers it (audited)"),
        click.option("--confirm-fingerprint", default=None,
                     help="bind a certificate that does not name this office or leader"),
    ]

    def with_options(func):
        for option in reversed(options):
            func = option(func)
        return func

    @keys_group.command("import-p12")
    @with_options
    @click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
                  required=True)
    @click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False),
                  required=True)
    def import_p12(office_code, leader, name, admin_name, confirm_fingerprint, path,
                   passphrase_file):
        """Import a PKCS#12 file into the keystore, bound to the office's seal or a leader."""
        office_id, user_id = _owner(office_code, leader)
        _run(lambda: keys.register_pkcs12(
            db.session, _user(admin_name), office_id=office_id, user_id=user_id, name=name,
            data=Path(path).read_bytes(), passphrase=Path(passphrase_file).read_text().strip(),
            confirmed_fingerprint=confirm_fingerprint))

    @keys_group.command("add-pkcs11")
    @with_options
    @click.option("--token", "token_label", required=True, help="a declared token label")
    @click.option("--key-label", required=True)
    @click.option("--cert-label", default=None)
    def add_pkcs11(office_code, leader, name, admin_name, confirm_fingerprint, token_label,
                   key_label, cert_label):
        """Bind a key on a declared PKCS#11 token or HSM (its certificate is read from it)."""
        office_id, user_id = _owner(office_code, leader)
        _run(lambda: keys.register_pkcs11(
            db.session, _user(admin_name), office_id=office_id, user_id=user_id, name=name,
            token_label=token_label, key_label=key_label, cert_label=cert_label,
            confirmed_fingerprint=confirm_fingerprint))


    @group.group("archive")
    def archive_group():
        """Long-term archive of delivered copies (PAdES B-LTA)."""

    @archive_group.command("renew")
    @click.option("--days", default=None, type=int,
                  help="renew stamps ending within this many days (default: the setting)")
    @click.option("--limit", default=1000, type=int, help="at most this many copies")
    def renew(days, limit):
        """Stamp again the copies whose archive timestamp nears its end, and make B-LTA
        the copies delivered before long-term archiving existed."""
        import datetime as dt

        from flask import current_app

        from modules.signing.jobs import renew_archives

        margin = days if days is not None else current_app.config["ARCHIVE_RENEW_DAYS"]
        done = renew_archives(db.session, dt.timedelta(days=margin), limit)
        click.echo(f"renewed {done['renewed']}, skipped {done['skipped']} (no timestamp "
                   f"service), failed {done['failed']}")

    @group.command("demo-pki")
    def demo_pki():
        """Serve the demo PKI's OCSP, CRL and TSA (`make demo` runs it beside the app)."""
        import os

        from flask import current_app

        from modules.signing.served_pki import CONFIG, ServedPki, demo_folder

        url = current_app.config.get("DEMO_PKI_URL")
        folder = demo_folder(current_app.config["DATA_DIR"])
        if not url or not (folder / CONFIG).exists():
            raise click.ClickException("no served demo PKI: set SAOY_DEMO_PKI_URL and run "
                                       "`flask saoy demo-data` first")
        command = ServedPki(folder, url).command()
        os.chdir(folder)
        os.execv(command[0], command)


def _owner(office_code: str, leader: str | None) -> tuple[int, int | None]:
    office = db.session.scalars(select(Office).where(Office.code == office_code)).first()
    if office is None:
        raise click.ClickException(f"no office with code {office_code}")
    return office.id, _user(leader).id if leader else None


def _user(username: str) -> StaffUser:
    user = db.session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _run(register_key) -> None:
    try:
        with atomic(db.session):
            key = register_key()
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"key {key.id} registered: {key.subject} / {key.organisation}, "
               f"SHA-256 {key.fingerprint}")
