"""Signing: attestation page, signature fields, signers, validation, public verification."""
from app.modules import ModuleSpec

MODULE = ModuleSpec(
    name="signing",
    depends=("platform",),
    models=None,
    register=None,
    roles={},
)
