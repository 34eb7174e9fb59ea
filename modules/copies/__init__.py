"""Copy requests: intake, scan checks, workflow, fees, delivery (orchestrates the others)."""
from app.modules import ModuleSpec

MODULE = ModuleSpec(
    name="copies",
    depends=("platform", "registers", "signing", "appointments"),
    models=None,
    register=None,
    roles={},
)
