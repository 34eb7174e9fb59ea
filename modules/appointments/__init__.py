"""Appointments: slots, booking, reschedule, cancel, no-show, reminders."""
from app.modules import ModuleSpec

MODULE = ModuleSpec(
    name="appointments",
    depends=("platform",),
    models=None,
    register=None,
    roles={},
)
