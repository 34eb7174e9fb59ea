"""Copy requests: intake, scan checks, workflow, fees, delivery (orchestrates the others).

Owns the ``copy_`` tables.  Talks to appointments, registers and signing only
through their service functions; the procedure is the table in ``workflow.py``.
"""
from flask_babel import lazy_gettext as _l

from app.menus import ADMINISTRATION
from app.modules import Api, Category, Link, ModuleSpec, View

CERTIFICATION = Category("Certification", _l("Certification"), "fa-files-o")
MY_DOCUMENTS = Category("My documents", _l("My documents"), "fa-folder-open")

_LISTS = "(CopyRequestView|AwaitingSignatureView|AwaitingSealView|ReturnedView)"
_STAFF_PAGES = ["^CopyRequestView$",
                "^can_(list|detail|do|slip|document|page_image)$"]


def _menus(*names: str) -> list[str]:
    return ["^(" + "|".join(("Certification", "Certification requests") + names) + ")$",
            "^menu_access$"]


_OFFICER = [
    ["^CopyRequestView$", "^can_(list|intake|intake_post|intake_account|detail|do|edit_draft|"
                          "slip|document|page_image|verify_requester)$"],
    ["^ReturnedView$", "^can_list$"],
    ["^CopyApi$", "^can_(get|post|transition)$"],
    _menus("New copy from original", "Returned requests"),
]
_LEADER = [
    _STAFF_PAGES,
    ["^CopyRequestView$", "^can_bulk_sign$"],
    ["^AwaitingSignatureView$", "^(can_list|sign|forward)$"],
    ["^CopyApi$", "^can_(get|transition)$"],
    _menus("Copies awaiting signature"),
]
_CLERK = [
    _STAFF_PAGES,
    ["^AwaitingSealView$", "^(can_list|deliver)$"],
    ["^CopyApi$", "^can_(get|transition)$"],
    _menus("Copies awaiting seal"),
]
_READ = [
    ["^" + _LISTS + "$", "^can_list$"],
    ["^CopyRequestView$", "^can_(detail|slip|document)$"],
    ["^CopyApi$", "^can_get$"],
    _menus(),
]
_CITIZEN = [
    ["^MyCopiesView$", "^can_(index|detail|file)$"],
    ["^My documents$", "^menu_access$"],
]

MODULE = ModuleSpec(
    name="copies",
    depends=("platform", "registers", "signing", "appointments"),
    models="modules.copies.models",
    menu=(
        Link("New copy from original", _l("New copy from original"), "/copies/intake",
             "fa-plus", CERTIFICATION),
        View("modules.copies.views:CopyRequestView", "Certification requests",
             _l("Certification requests"), "fa-list", CERTIFICATION),
        View("modules.copies.views:AwaitingSignatureView", "Copies awaiting signature",
             _l("Copies awaiting signature"), "fa-pencil", CERTIFICATION),
        View("modules.copies.views:AwaitingSealView", "Copies awaiting seal",
             _l("Copies awaiting seal"), "fa-certificate", CERTIFICATION),
        View("modules.copies.views:ReturnedView", "Returned requests", _l("Returned requests"),
             "fa-undo", CERTIFICATION),
        View("modules.copies.views:MyCopiesView", "My documents", _l("My documents"),
             "fa-folder-open", MY_DOCUMENTS),
        View("modules.copies.views:FeeScheduleView", "Fee schedules", _l("Fee schedules"),
             "fa-money", ADMINISTRATION),
        Api("modules.copies.api:CopyApi"),
    ),
    hooks={"appointments.process": "modules.copies.views:intake_url_for",
           "signing.leader_signed": "modules.copies.workflow:on_leader_signed"},
    landing={"Leader": "AwaitingSignatureView.list", "Clerk": "AwaitingSealView.list",
             "Officer": "CopyRequestView.list"},
    roles={"Officer": _OFFICER, "Leader": _LEADER, "Clerk": _CLERK, "Supervisor": _READ,
           "OfficeAdmin": _READ, "Citizen": _CITIZEN},
)
