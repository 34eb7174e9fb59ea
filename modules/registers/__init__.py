"""Certification registers (sổ chứng thực): gap-free numbering and register book export."""
from app.modules import ModuleSpec

MODULE = ModuleSpec(
    name="registers",
    depends=("platform",),
    models=None,
    register=None,
    roles={},
)
