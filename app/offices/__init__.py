"""Offices (province → district → commune), staff membership and document types."""
from flask_babel import lazy_gettext as _l

from app.menus import ADMINISTRATION, OFFICE_SETTINGS
from app.modules import Api, ModuleSpec, View

MODULE = ModuleSpec(
    name="offices",
    platform=True,
    depends=(),
    models="app.offices.models",
    menu=(
        View("app.offices.views:OfficeView", "Offices", _l("Offices"), "fa-building",
             ADMINISTRATION),
        View("app.offices.views:DocumentTypeView", "Document types", _l("Document types"),
             "fa-file-text-o", ADMINISTRATION),
        View("app.offices.views:OfficeDocumentTypeView", "Office document types",
             _l("Document types offered"), "fa-check-square-o", OFFICE_SETTINGS),
        View("app.security:OfficeStaffView", "Office staff", _l("Staff of my office"),
             "fa-users", OFFICE_SETTINGS),
        Api("app.offices.views:OfficeApi"),
        Api("app.offices.views:DocumentTypeApi"),
        Api("app.offices.views:OfficeDocumentTypeApi"),
    ),
    roles={
        "OfficeAdmin": [
            ["^OfficeStaffView$", "^(can_list|can_show|can_add|can_edit|resetpasswords)$"],
            ["^ScopedResetPasswordView$", "^can_this_form_(get|post)$"],
            ["^OfficeDocumentTypeView$",
             "^(can_list|can_show|can_add|can_edit|can_delete|offer|withdraw)$"],
            ["^OfficeDocumentTypeApi$", "^(can_get|can_post|can_put|can_delete|can_info)$"],
            ["^(Office staff|Office document types|Office settings)$", "^menu_access$"],
        ],
        "Supervisor": [
            ["^OfficeView$", "^(can_list|can_show)$"],
            ["^(Offices|Administration)$", "^menu_access$"],
        ],
        # Anonymous visitors: read the public office and document-type lists.
        "Public": [["^(OfficeApi|DocumentTypeApi)$", "^can_get$"]],
    },
)
