"""Office, document-type and office-document-type views and REST APIs (thin)."""
from __future__ import annotations

from flask import flash, redirect, request
from flask_appbuilder import ModelView
from flask_appbuilder.actions import action
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.crud import Datamodel, DomainErrorResponses, ServiceFormViewMixin
from app.offices import services
from app.offices.models import DocumentType, Office, OfficeDocumentType
from app.records import RecordService
from app.scoping import OFFICE_SCOPE, ScopedModelRestApi, ScopedModelView
from app.transactions import atomic
from app.web import current_user

OFFICE_LABELS = {
    "kind": _l("Kind"),
    "code": _l("Code"),
    "name": _l("Name"),
    "address": _l("Address"),
    "parent": _l("Parent office"),
    "parent_id": _l("Parent office"),
    "active": _l("Active"),
    "name_vi": _l("Vietnamese name"),
    "name_en": _l("English name"),
    "document_type": _l("Document type"),
    "note": _l("Note"),
    "office": _l("Office"),
}


class OfficeView(ServiceFormViewMixin, ModelView):
    datamodel = Datamodel(Office, service=RecordService("office"))
    base_filters = OFFICE_SCOPE
    list_title = _l("Offices")
    show_title = add_title = edit_title = _l("Office")
    label_columns = OFFICE_LABELS
    list_columns = ["code", "name", "kind", "parent", "active"]
    search_columns = ["code", "name", "kind", "active"]
    add_columns = edit_columns = ["kind", "code", "name", "address", "parent", "active"]
    show_columns = ["kind", "code", "name", "address", "parent", "active"]
    order_columns = ["code", "name", "kind"]
    base_order = ("code", "asc")


class DocumentTypeView(ServiceFormViewMixin, ModelView):
    datamodel = Datamodel(DocumentType, service=RecordService("document_type"))
    list_title = _l("Document types")
    show_title = add_title = edit_title = _l("Document type")
    label_columns = OFFICE_LABELS
    list_columns = ["code", "name_vi", "name_en", "active"]
    search_columns = ["code", "name_vi", "name_en", "active"]
    add_columns = edit_columns = show_columns = ["code", "name_vi", "name_en", "active"]
    base_order = ("code", "asc")


class OfficeDocumentTypeView(ScopedModelView):
    """OfficeAdmin: which catalogue entries this office offers, and what to bring."""

    datamodel = Datamodel(OfficeDocumentType, service=services.OfficeDocumentTypeService(
        "office_document_type"))
    list_title = _l("Document types offered by my office")
    show_title = add_title = edit_title = _l("Offered document type")
    label_columns = OFFICE_LABELS
    list_columns = ["document_type", "active", "note", "office"]
    show_columns = ["document_type", "active", "note", "office"]
    add_columns = ["document_type", "active", "note"]
    edit_columns = ["active", "note"]
    search_columns = ["document_type", "active"]
    add_form_query_rel_fields = {"document_type": [["active", FilterEqual, True]]}

    @action("offer", _l("Offer"), _l("Offer the selected document types?"), "fa-check")
    def offer(self, items):
        return self._set_offered(items, True)

    @action("withdraw", _l("Withdraw"), _l("Stop offering the selected document types?"),
            "fa-ban")
    def withdraw(self, items):
        return self._set_offered(items, False)

    def _set_offered(self, items, offered: bool):
        items = items if isinstance(items, list) else [items]
        with atomic(self.datamodel.session):
            changed = services.set_offered(self.datamodel.session, current_user(), items,
                                           offered)
        flash(_("%(count)s document types changed.", count=changed), "success")
        return redirect(self.get_redirect())


class ActiveOnly(BaseFilter):
    name = "Active"
    arg_name = "active_only"

    def apply(self, query, value):
        return query.filter(self.model.active.is_(True))


class OfferedByOffice(BaseFilter):
    """``?office_id=N``: only the active types that office offers."""

    name = "Offered by office"
    arg_name = "offered_by"

    def apply(self, query, value):
        query = query.filter(self.model.active.is_(True))
        office_id = request.args.get("office_id", type=int)
        if office_id is None:
            return query
        offered = select(OfficeDocumentType.document_type_id).where(
            OfficeDocumentType.office_id == office_id, OfficeDocumentType.active.is_(True)
        )
        return query.filter(self.model.id.in_(offered))


class OfficeApi(DomainErrorResponses, ModelRestApi):
    """``/api/v1/office/``: public list of active offices; Admin writes."""

    resource_name = "office"
    datamodel = Datamodel(Office, service=OfficeView.datamodel.service)
    base_filters = [["active", ActiveOnly, None]]
    list_columns = show_columns = ["id", "code", "name", "kind", "parent_id"]
    add_columns = edit_columns = ["kind", "code", "name", "address", "parent", "active"]
    search_columns = ["code", "name", "kind", "parent"]
    order_columns = ["code", "name"]
    label_columns = OFFICE_LABELS
    add_query_rel_fields = edit_query_rel_fields = {}
    allow_browser_login = True
    openapi_spec_tag = "Offices"


class DocumentTypeApi(DomainErrorResponses, ModelRestApi):
    """``/api/v1/document_type/?office_id=``: public list of offered types; Admin writes."""

    resource_name = "document_type"
    datamodel = Datamodel(DocumentType, service=DocumentTypeView.datamodel.service)
    base_filters = [["id", OfferedByOffice, None]]
    list_columns = show_columns = ["id", "code", "name_vi", "name_en"]
    add_columns = edit_columns = ["code", "name_vi", "name_en", "active"]
    search_columns = ["code", "name_vi", "name_en"]
    label_columns = OFFICE_LABELS
    allow_browser_login = True
    openapi_spec_tag = "Document types"


class OfficeDocumentTypeApi(ScopedModelRestApi):
    """OfficeAdmin: enable or disable document types for their office."""

    resource_name = "office_document_type"
    datamodel = Datamodel(OfficeDocumentType,
                          service=OfficeDocumentTypeView.datamodel.service)
    list_columns = show_columns = ["id", "office_id", "document_type_id", "active", "note"]
    add_columns = ["document_type", "active", "note"]
    edit_columns = ["active", "note"]
    add_query_rel_fields = {"document_type": [["active", FilterEqual, True]]}
    allow_browser_login = True
    openapi_spec_tag = "Document types"


def register(appbuilder) -> None:
    admin = dict(category="Administration", category_label=_l("Administration"),
                 category_icon="fa-cogs")
    appbuilder.add_view(OfficeView, "Offices", label=_l("Offices"), icon="fa-building", **admin)
    appbuilder.add_view(DocumentTypeView, "Document types", label=_l("Document types"),
                        icon="fa-file-text-o", **admin)
    appbuilder.add_view(OfficeDocumentTypeView, "Office document types",
                        label=_l("Document types offered"), icon="fa-check-square-o",
                        category="Office settings", category_label=_l("Office settings"),
                        category_icon="fa-sliders")
    from app.security import OfficeStaffView

    appbuilder.add_view(OfficeStaffView, "Office staff", label=_l("Staff of my office"),
                        icon="fa-users", category="Office settings",
                        category_label=_l("Office settings"))
    appbuilder.add_api(OfficeApi)
    appbuilder.add_api(DocumentTypeApi)
    appbuilder.add_api(OfficeDocumentTypeApi)
