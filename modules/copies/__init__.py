"""Copy requests: intake, scan checks, workflow, fees, delivery (orchestrates the others).

Owns the ``copy_`` tables.  Talks to appointments, registers and signing only
through their service functions; the state machine is ``workflow.py``.
"""
from app.modules import ModuleSpec


def _register(appbuilder):
    from modules.copies.views import register

    register(appbuilder)


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
    register=_register,
    landing={"Leader": "AwaitingSignatureView.list", "Clerk": "AwaitingSealView.list",
             "Officer": "CopyRequestView.list"},
    roles={"Officer": _OFFICER, "Leader": _LEADER, "Clerk": _CLERK, "Supervisor": _READ,
           "OfficeAdmin": _READ, "Citizen": _CITIZEN},
)
