"""Home page and platform pages (audit log view)."""
from __future__ import annotations

import datetime as dt

from flask import g
from flask_appbuilder import BaseView, IndexView, ModelView, expose
from flask_babel import lazy_gettext as _l

from app.audit import AuditEvent
from app.crud import Datamodel, ServiceFormViewMixin
from app.labels import code, code_labels
from app.menus import ADMINISTRATION
from app.modules import Job, ModuleSpec, View, specs_of
from app.ops import HEARTBEAT_SECONDS
from app.scoping import OFFICE_SCOPE

#: What each audit event and object kind is called (modules add theirs).
code_labels({
    "citizen_registered": _l("Citizen account registered"),
    "citizen_verified": _l("Citizen account verified"),
    "message_resent": _l("Message sent again"), "user_locked": _l("Account locked"),
    "user_password_reset": _l("Password reset"),
    "document_type_offered": _l("Document type offered"),
    "StaffUser": _l("User"), "Citizen": _l("Citizen account"), "Office": _l("Office"),
    "DocumentType": _l("Document type"), "OfficeDocumentType": _l("Document type of the office"),
    "Message": _l("Message"), "MessageTemplate": _l("Message template"),
})


def event_text(event: str | None) -> str:
    """An audit event as a person reads it; generic record changes by their verb."""
    if not event:
        return ""
    for suffix, verb in (("_created", _l("Created")), ("_updated", _l("Changed")),
                         ("_deleted", _l("Deleted"))):
        if event.endswith(suffix) and code(event) == event:
            return str(verb)
    return code(event)


class HomeView(IndexView):
    index_template = "saoy/index.html"

    #: Whose home is a queue, in this order when a user has several roles.
    LANDING_ORDER = ("Leader", "Clerk", "Officer", "Supervisor")

    @expose("/")
    def index(self):
        """Staff land on their work (a leader on the copies to sign); others on the page."""
        from flask import current_app, redirect, url_for

        from app.scope import role_names

        user = getattr(g, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            landing: dict[str, str] = {}
            for spec in specs_of(current_app):
                landing.update(spec.landing)
            roles = role_names(user)
            for role in self.LANDING_ORDER:
                if role in roles and role in landing:
                    return redirect(url_for(landing[role]))
        return self.render_template(self.index_template, appbuilder=self.appbuilder, user=user)


class AuditEventView(ServiceFormViewMixin, ModelView):
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
    formatters_columns = {"event": event_text, "object_type": code, "from_state": code,
                          "to_state": code}
    label_columns = {
        "seq": _l("No."), "created_at": _l("Time"), "user_id": _l("User"),
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


class AccessibilityView(BaseView):
    """``/accessibility/``: the accessibility statement public bodies publish (Thông tư
    26/2020/TT-BTTTT, WCAG 2.1 AA): how far the service conforms, how it was checked, what
    is known not to work, and where to report a problem.  Public."""

    route_base = "/accessibility"
    default_view = "index"

    @expose("/")
    def index(self):
        from flask import current_app

        return self.render_template(
            "saoy/accessibility.html", contact=current_app.config["ACCESSIBILITY_CONTACT"],
            checked=STATEMENT_CHECKED)


#: When the statement's checks were last run (axe-core, Lighthouse, keyboard, 360 px).
STATEMENT_CHECKED = dt.date(2026, 12, 5)


MODULE = ModuleSpec(
    name="pages",
    platform=True,
    depends=(),
    menu=(View("app.views:HealthView"), View("app.views:AccessibilityView"),
          View("app.views:AuditEventView", "Audit log", _l("Audit log"), "fa-history",
               ADMINISTRATION)),
    jobs=(Job("platform.heartbeat", "app.ops:beat", seconds=HEARTBEAT_SECONDS),
          Job("platform.files_sweep", "app.ops:sweep_job", cron={"hour": "3", "minute": "17"}),
          Job("platform.sessions_purge", "app.sessions:purge_expired", cron={"minute": "41"})),
)
