"""Signing: attestation page, signature fields, signers, validation, public verification.

Owns signed documents (every version of a certified copy's PDF, by hash) and
signer profiles.  Other modules call ``services`` (create_document, sign_leader,
seal, delivery_gate); they never touch the PDF or these tables themselves.
"""
from app.modules import ModuleSpec


def _register(appbuilder):
    from modules.signing.views import register

    register(appbuilder)


def _cli(group) -> None:
    import click

    @group.command("sign-agent")
    @click.option("--server", required=True, help="SaoY address, e.g. https://saoy.example.vn")
    @click.option("--username", required=True)
    @click.option("--password-file", type=click.Path(exists=True), required=True)
    @click.option("--token-label", required=True)
    @click.option("--key-label", required=True)
    @click.option("--once", is_flag=True, help="Sign what is pending, then stop.")
    def sign_agent(server, username, password_file, token_label, key_label, once):
        """Signing agent for a leader's PKCS#11 token (SAOY_PKCS11_LIB, SAOY_PKCS11_PIN)."""
        import os
        from pathlib import Path

        from modules.signing.agent import AgentConfig, SigningAgent

        pin = os.environ.get("SAOY_PKCS11_PIN") or Path(
            os.environ["SAOY_PKCS11_PIN_FILE"]).read_text().strip()
        agent = SigningAgent(AgentConfig(
            server=server, username=username, password=Path(password_file).read_text().strip(),
            pkcs11_lib=os.environ["SAOY_PKCS11_LIB"], token_label=token_label,
            key_label=key_label, pin=pin))
        agent.login()
        agent.register()
        if once:
            click.echo(f"{agent.run_once()} documents signed")
        else:
            agent.run_forever()

    _key_commands(group)


def _key_commands(group) -> None:
    """``flask saoy keys …``: the system administrator registers key material."""
    import click

    @group.group("keys")
    def keys_group():
        """Register signing keys and bind them to an office's seal or to a leader."""

    def _owner(office_code: str, leader: str | None):
        from sqlalchemy import select

        from app.extensions import db
        from app.offices.models import Office
        from app.users import StaffUser

        office = db.session.scalars(select(Office).where(Office.code == office_code)).first()
        if office is None:
            raise click.ClickException(f"no office with code {office_code}")
        user = None
        if leader:
            user = db.session.scalars(select(StaffUser).where(
                StaffUser.username == leader)).first()
            if user is None:
                raise click.ClickException(f"no user {leader}")
        return office.id, user.id if user else None

    def _run(register):
        from app.errors import DomainError
        from app.extensions import db
        from app.transactions import atomic

        try:
            with atomic(db.session):
                key = register()
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"key {key.id} registered: {key.subject} / {key.organisation}, "
                   f"SHA-256 {key.fingerprint}")

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
        from pathlib import Path

        from modules.signing import keys

        office_id, user_id = _owner(office_code, leader)
        _run(lambda: keys.register_pkcs12(
            _session(), _user(admin_name), office_id=office_id, user_id=user_id, name=name,
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
        from modules.signing import keys

        office_id, user_id = _owner(office_code, leader)
        _run(lambda: keys.register_pkcs11(
            _session(), _user(admin_name), office_id=office_id, user_id=user_id, name=name,
            token_label=token_label, key_label=key_label, cert_label=cert_label,
            confirmed_fingerprint=confirm_fingerprint))

    def _session():
        from app.extensions import db

        return db.session

    def _user(username: str):
        from sqlalchemy import select

        from app.users import StaffUser

        user = _session().scalars(select(StaffUser).where(StaffUser.username == username)).first()
        if user is None:
            raise click.ClickException(f"no user {username}")
        return user


def _warm_up() -> None:
    from modules.signing.services import warm_up

    warm_up()


def _file_refs(session, prefix):
    from modules.signing.services import file_refs

    return file_refs(session, prefix)


def _demo() -> int:
    from modules.signing.demo import load

    return load()


MODULE = ModuleSpec(
    name="signing",
    depends=("platform",),
    models="modules.signing.models",
    register=_register,
    roles={
        "OfficeAdmin": [
            ["^SignerProfileView$", "^(can_list|can_show|can_add|can_edit|can_image)$"],
            ["^SigningKeyView$", "^(can_list|can_show)$"],
            ["^(Signing keys)$", "^menu_access$"],
        ],
        "Leader": [["^SigningJobApi$", "^can_(get|post)$"]],
        "Public": [["^Verify a copy$", "^menu_access$"]],
    },
    demo=_demo,
    cli=_cli,
    warm_up=_warm_up,
    file_refs=_file_refs,
)
