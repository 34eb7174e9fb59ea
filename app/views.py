"""Home page and platform pages (audit log view)."""
from __future__ import annotations

from flask import g
from flask_appbuilder import BaseView, IndexView, ModelView, expose
from flask_babel import lazy_gettext as _l

from app.audit import AuditEvent
from app.crud import Datamodel
from app.scoping import OFFICE_SCOPE


class HomeView(IndexView):
    index_template = "saoy/index.html"

    @expose("/")
    def index(self):
        user = getattr(g, "user", None)
        return self.render_template(self.index_template, appbuilder=self.appbuilder, user=user)


class AuditEventView(ModelView):
    """Read-only audit log; scoped like everything else (Admin sees all)."""

    datamodel = Datamodel(AuditEvent)
    base_filters = OFFICE_SCOPE
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Audit log")
    show_title = _l("Audit event")
    list_columns = ["seq", "created_at", "user_id", "office_id", "object_type", "object_id",
                    "event", "from_state", "to_state"]
    search_columns = ["event", "object_type", "created_at"]
    base_order = ("seq", "desc")
    label_columns = {
        "seq": _l("No."), "created_at": _l("Time (UTC)"), "user_id": _l("User"),
        "office_id": _l("Office"), "object_type": _l("Object"), "object_id": _l("Object id"),
        "event": _l("Event"), "from_state": _l("From state"), "to_state": _l("To state"),
        "reason": _l("Reason"), "file_sha256": _l("File SHA-256"),
        "prev_hash": _l("Previous hash"), "row_hash": _l("Row hash"),
    }


class HealthView(BaseView):
    """``/health`` for monitoring: database, file store, worker, outbox, signers; no
    secrets.  200 when all is well, 503 otherwise."""

    route_base = "/health"
    default_view = "index"

    @expose("/")
    def index(self):
        from flask import current_app, jsonify

        from app.ops import health

        report, ok = health(current_app._get_current_object())
        return jsonify(report), 200 if ok else 503


def register(appbuilder) -> None:
    appbuilder.add_view_no_menu(HealthView)
    appbuilder.add_view(AuditEventView, "Audit log", label=_l("Audit log"), icon="fa-history",
                        category="Administration", category_label=_l("Administration"))
