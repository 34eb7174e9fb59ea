"""Certification registers (sổ chứng thực): gap-free numbering and register book export.

Owns registers and their entries.  Other modules take numbers only through
``services.allocate_number`` and never write these tables themselves.
"""
from app.modules import ModuleSpec


def _register(appbuilder):
    from modules.registers.views import register

    register(appbuilder)


def _demo() -> int:
    from modules.registers.demo import load

    return load()


_CLERK = [
    ["^RegisterView$", "^(can_list|can_show|can_add|can_edit|can_delete|"
                       "close_register|export_book)$"],
    ["^RegisterEntryView$", "^(can_list|can_show)$"],
    ["^RegisterApi$", "^can_(get|post|put|info|close|export)$"],
    ["^(Registers)$", "^menu_access$"],
]
_READ = [
    ["^RegisterView$", "^(can_list|can_show|export_book)$"],
    ["^RegisterEntryView$", "^(can_list|can_show)$"],
    ["^RegisterApi$", "^can_(get|info|export)$"],
    ["^(Registers)$", "^menu_access$"],
]

MODULE = ModuleSpec(
    name="registers",
    depends=("platform",),
    models="modules.registers.models",
    register=_register,
    roles={"Clerk": _CLERK, "Leader": _READ, "Supervisor": _READ, "OfficeAdmin": _READ},
    demo=_demo,
)
