"""Notifications: an outbox written with the change, dispatched by a job.

Owns the outbox, message templates and the portal inbox.  Never sends inside a
web request: services only enqueue; ``dispatcher`` sends.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.menus import ADMINISTRATION, OFFICE_SETTINGS
from app.modules import Job, ModuleSpec, View

_OUTBOX = [
    ["^OutboxView$", "^(can_list|can_show|resend)$"],
    ["^DemoMailboxView$", "^can_(index|attachment)$"],
    ["^(Outbox|Demo mailbox|Office settings)$", "^menu_access$"],
]
_INBOX = [["^InboxView$", "^(can_index|can_read_all)$"], ["^Inbox$", "^menu_access$"]]


def dispatch_job() -> None:
    from flask import current_app

    from app.notifications.dispatcher import dispatcher_for_app

    dispatcher_for_app(current_app).drain(max_rounds=20)


def _setup(app, appbuilder) -> None:
    from app.notifications.views import unread_for_current_user

    app.jinja_env.globals["saoy_unread"] = unread_for_current_user


MODULE = ModuleSpec(
    name="notifications",
    platform=True,
    depends=("offices",),
    models="app.notifications.models",
    menu=(
        View("app.notifications.views:OutboxView", "Outbox", _l("Messages sent"),
             "fa-envelope-o", OFFICE_SETTINGS),
        View("app.notifications.views:MessageTemplateView", "Message templates",
             _l("Message templates"), "fa-file-text", ADMINISTRATION),
        View("app.notifications.views:InboxView", "Inbox", _l("Notifications"), "fa-bell"),
        # No mail server: e-mails go to the log; the staff see them here.
        View("app.notifications.views:DemoMailboxView", "Demo mailbox", _l("Demo mailbox"),
             "fa-inbox", OFFICE_SETTINGS, when=lambda config: not config.get("SMTP_HOST")),
    ),
    roles={
        **{role: _INBOX + _OUTBOX for role in ("OfficeAdmin", "Officer", "Leader", "Clerk")},
        "Supervisor": _INBOX + [["^OutboxView$", "^(can_list|can_show)$"],
                                ["^Outbox$", "^menu_access$"]],
        "Citizen": _INBOX,
    },
    jobs=(Job("notifications.dispatch", dispatch_job, seconds_setting="OUTBOX_INTERVAL_SECONDS",
              seconds=5),),
    setup="app.notifications:_setup",
)
