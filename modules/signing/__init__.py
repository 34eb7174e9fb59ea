"""Signing: attestation page, signature fields, signers, validation, public verification.

Owns signed documents (every version of a certified copy's PDF, by hash) and
signer profiles.  Other modules call ``services`` (create_document, sign_leader,
seal, delivery_gate); they never touch the PDF or these tables themselves.
"""
from app.modules import ModuleSpec


def _register(appbuilder):
    from modules.signing.views import register

    register(appbuilder)


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
            ["^SignerProfileView$", "^(can_list|can_show|can_add|can_edit)$"],
            ["^(Signing keys)$", "^menu_access$"],
        ],
        "Public": [["^Verify a copy$", "^menu_access$"]],
    },
    demo=_demo,
)
