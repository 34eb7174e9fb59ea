"""Staff outbox, Admin's template editor and the citizen's portal inbox (thin views)."""
from __future__ import annotations

from flask import flash, g, redirect, send_file, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.crud import Datamodel, ServiceFormViewMixin
from app.errors import DomainError
from app.extensions import db
from app.labels import code, code_labels
from app.notifications import services
from app.notifications.models import Message, MessageTemplate
from app.records import RecordService
from app.scoping import OFFICE_SCOPE, ScopedModelView
from app.storage import file_store
from app.transactions import atomic
from app.web import current_user

MESSAGE_LABELS = {
    "channel": _l("Channel"), "recipient": _l("Recipient"), "addressee": _l("Recipient"),
    "kind": _l("Message kind"),
    "subject": _l("Subject"), "body_text": _l("Text"), "body_html": _l("HTML text"),
    "status": _l("Status"), "attempts": _l("Attempts"), "next_attempt_at": _l("Next attempt"),
    "last_error": _l("Last error"), "provider_message_id": _l("Provider message id"),
    "transport": _l("Sent through"), "created_at": _l("Created"), "sent_at": _l("Sent at"),
    "office": _l("Office"), "locale": _l("Language"), "idempotency_key": _l("Idempotency key"),
    "related_type": _l("Related to"), "related_id": _l("Related id"),
    "body": _l("Text"), "variables": _l("Variables"), "active": _l("Active"),
}


code_labels({"console": _l("Server log (no gateway configured)"), "sms-gateway": _l("SMS gateway"),
             "smtp": _l("Mail server"), "portal": _l("Portal inbox"), "vi": _l("Vietnamese"),
             "en": _l("English")})


class OutboxView(ScopedModelView):
    """Every message of the office with its delivery status; resend on demand."""

    datamodel = Datamodel(Message)
    base_filters = OFFICE_SCOPE
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Messages sent")
    show_title = _l("Message")
    label_columns = MESSAGE_LABELS
    list_columns = ["created_at", "channel", "addressee", "kind", "body_text", "status",
                    "attempts", "next_attempt_at", "last_error", "transport"]
    show_columns = ["office", "channel", "addressee", "kind", "locale", "subject", "body_text",
                    "status", "attempts", "next_attempt_at", "last_error", "transport",
                    "provider_message_id", "idempotency_key", "related_type", "related_id",
                    "created_at", "sent_at"]
    search_columns = ["status", "channel", "kind", "recipient", "created_at"]
    formatters_columns = {"kind": code, "transport": code}
    order_columns = ["created_at", "status", "attempts", "next_attempt_at"]
    base_order = ("created_at", "desc")

    @action("resend", _l("Resend"), _l("Send the selected messages again?"), "fa-repeat")
    def resend(self, items):
        items = items if isinstance(items, list) else [items]
        with atomic(db.session):
            count = services.resend(db.session, current_user(), items)
        flash(_("%(count)s messages queued again.", count=count), "success")
        return redirect(self.get_redirect())


class MessageTemplateService(RecordService):
    def validate(self, session, user, item, *, created):
        try:
            services.render(item, {})  # a template that does not compile is refused
        except services.TemplateTextError as exc:
            raise DomainError(str(exc)) from None


class MessageTemplateView(ServiceFormViewMixin, ModelView):
    """Admin edits the text of each message kind (Jinja; the variables are listed)."""

    datamodel = Datamodel(MessageTemplate, service=MessageTemplateService("message_template"))
    base_permissions = ["can_list", "can_show", "can_edit"]
    list_title = _l("Message templates")
    show_title = edit_title = _l("Message template")
    label_columns = MESSAGE_LABELS
    list_columns = ["kind", "channel", "locale", "subject", "active"]
    show_columns = ["kind", "channel", "locale", "variables", "subject", "body", "body_html",
                    "active"]
    edit_columns = ["subject", "body", "body_html", "active"]
    search_columns = ["kind", "channel", "locale"]
    formatters_columns = {"kind": code, "locale": code}
    description_columns = {"body": _l("Jinja template, e.g. {{ code }}; see the variables.")}


class InboxView(BaseView):
    """The citizen's notifications, newest first, with the unread ones marked."""

    route_base = "/inbox"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        items = services.inbox(db.session, g.user.id)
        return self.render_template("saoy/inbox.html", items=items)

    @expose("/read", methods=["POST"])
    @has_access
    def read_all(self):
        with atomic(db.session):
            services.mark_read(db.session, g.user.id)
        return redirect(url_for("InboxView.index"))


def unread_for_current_user() -> int:
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return services.unread_count(db.session, user.id)


class DemoMailboxView(BaseView):
    """Without a mail server (the demo, a test office) e-mails only reach the server's log:
    this page shows each one as the requester would receive it, attachments included —
    the messages of the user's offices only."""

    route_base = "/demo-mailbox"
    scoped_model = Message
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("saoy/demo_mailbox.html",
                                    mails=services.console_emails(db.session, current_user()))

    @expose("/<int:pk>/attachment/<int:n>")
    @has_access
    def attachment(self, pk: int, n: int):
        found = services.console_attachment(db.session, current_user(), pk, n)
        return send_file(file_store().open(found["sha256"]), as_attachment=True,
                         download_name=found.get("filename") or "tep-dinh-kem.pdf",
                         mimetype=found.get("mimetype") or "application/pdf", max_age=0)
