"""Notifications: an outbox written with the change, dispatched by a job.

Owns the outbox, message templates and the portal inbox.  Never sends inside a
web request: services only enqueue; ``dispatcher`` sends.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.modules import Job


def dispatch_job() -> None:
    from flask import current_app

    from app.notifications.dispatcher import dispatcher_for_app

    dispatcher_for_app(current_app).drain(max_rounds=20)


def register(appbuilder, app) -> None:
    from app.notifications.views import (
        DemoMailboxView,
        InboxView,
        MessageTemplateView,
        OutboxView,
        unread_for_current_user,
    )

    appbuilder.add_view(OutboxView, "Outbox", label=_l("Messages sent"), icon="fa-envelope-o",
                        category="Office settings", category_label=_l("Office settings"))
    appbuilder.add_view(MessageTemplateView, "Message templates", label=_l("Message templates"),
                        icon="fa-file-text", category="Administration",
                        category_label=_l("Administration"))
    appbuilder.add_view(InboxView, "Inbox", label=_l("Notifications"), icon="fa-bell")
    if not app.config.get("SMTP_HOST"):  # e-mails go to the log: show them to the staff
        appbuilder.add_view(DemoMailboxView, "Demo mailbox", label=_l("Demo mailbox"),
                            icon="fa-inbox", category="Office settings",
                            category_label=_l("Office settings"))
    app.jinja_env.globals["saoy_unread"] = unread_for_current_user
    from app.ops import HEARTBEAT_SECONDS, beat, sweep_job

    app.extensions.setdefault("saoy_platform_jobs", []).extend([
        Job("notifications.dispatch", dispatch_job,
            seconds=app.config["OUTBOX_INTERVAL_SECONDS"]),
        Job("platform.heartbeat", beat, seconds=HEARTBEAT_SECONDS),
        Job("platform.files_sweep", sweep_job, cron={"hour": "3", "minute": "17"}),
    ])
