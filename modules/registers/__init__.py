"""Certification registers (sổ chứng thực): gap-free numbering and register book export.

Owns registers and their entries.  Other modules take numbers only through
``services.allocate_number`` and never write these tables themselves.
"""
from flask_babel import lazy_gettext as _l

from app.modules import Api, Category, ModuleSpec, View

REGISTERS = Category("Registers", _l("Certification registers"), "fa-book")


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
    menu=(
        View("modules.registers.views:RegisterView", "Registers",
             _l("Certification registers"), "fa-book", REGISTERS),
        View("modules.registers.views:RegisterEntryView"),
        Api("modules.registers.api:RegisterApi"),
    ),
    roles={"Clerk": _CLERK, "Leader": _READ, "Supervisor": _READ, "OfficeAdmin": _READ},
    demo="modules.registers.demo:load",
)
