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
            ["^(Signing keys)$", "^menu_access$"],
        ],
        "Leader": [["^SigningJobApi$", "^can_(get|post)$"]],
        "Public": [["^Verify a copy$", "^menu_access$"]],
    },
    demo=_demo,
    cli=_cli,
)
