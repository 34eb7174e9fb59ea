"""Write messages to the outbox, in the caller's transaction; manage templates.

Nothing here sends: the dispatcher does, outside any web request.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.notifications.defaults import DEFAULT_TEMPLATES
from app.notifications.models import Channel, InboxItem, Message, MessageTemplate, Status
from app.timeutil import utcnow
from app.vn import normalize_phone

_jinja = SandboxedEnvironment(autoescape=False)
_jinja_html = SandboxedEnvironment(autoescape=True)


class TemplateMissingError(LookupError):
    pass


@dataclass(frozen=True)
class Attachment:
    sha256: str
    filename: str
    mimetype: str = "application/pdf"


@dataclass(frozen=True)
class Recipient:
    """Where a person can be reached; any of the three may be missing."""

    user_id: int | None = None
    phone: str | None = None
    email: str | None = None
    locale: str = "vi"


def _template(session: Session, kind: str, channel: Channel, locale: str) -> MessageTemplate:
    for loc in (locale, "vi"):
        row = session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.kind == kind,
                MessageTemplate.channel == channel,
                MessageTemplate.locale == loc,
                MessageTemplate.active.is_(True),
            )
        ).first()
        if row is not None:
            return row
    raise TemplateMissingError(f"{kind}/{channel.value}/{locale}")


def has_template(session: Session, kind: str, channel: Channel) -> bool:
    try:
        _template(session, kind, channel, "vi")
        return True
    except TemplateMissingError:
        return False


class TemplateTextError(ValueError):
    """An Admin-edited template does not compile; the message is for the editor."""


def render(
    template: MessageTemplate, context: Mapping[str, Any]
) -> tuple[str | None, str, str | None]:
    """Render subject, text and HTML (HTML autoescaped) in the sandbox."""
    try:
        subject = _jinja.from_string(template.subject).render(context) if template.subject else None
        body = _jinja.from_string(template.body).render(context)
        html = (_jinja_html.from_string(template.body_html).render(context)
                if template.body_html else None)
    except TemplateError as exc:
        raise TemplateTextError(
            _("The template text is not valid: %(error)s", error=getattr(exc, "message", exc))
        ) from exc
    return subject, body, html


def enqueue(
    session: Session,
    *,
    kind: str,
    channel: Channel,
    recipient: str,
    context: Mapping[str, Any],
    office_id: int | None = None,
    recipient_user_id: int | None = None,
    related: Any = None,
    attachments: Iterable[Attachment] = (),
    locale: str = "vi",
) -> Message:
    """Add one rendered message to the outbox (committed with the caller's change)."""
    if channel is Channel.sms:
        recipient = normalize_phone(recipient)
    subject, body, html = render(_template(session, kind, channel, locale), context)
    message = Message(
        office_id=office_id,
        channel=channel,
        recipient=recipient,
        recipient_user_id=recipient_user_id,
        kind=kind,
        locale=locale,
        subject=subject,
        body_text=body,
        body_html=html,
        attachments=[a.__dict__ for a in attachments] or None,
        related_type=type(related).__name__ if related is not None else None,
        related_id=getattr(related, "id", None),
        status=Status.queued,
        attempts=0,
        next_attempt_at=utcnow(),
        idempotency_key=uuid.uuid4().hex,
        created_at=utcnow(),
    )
    session.add(message)
    return message


def notify(
    session: Session,
    who: Recipient,
    kind: str,
    context: Mapping[str, Any],
    *,
    office_id: int | None = None,
    related: Any = None,
    attachments: Iterable[Attachment] = (),
    channels: Iterable[Channel] = (Channel.portal, Channel.sms, Channel.email),
) -> list[Message]:
    """Fan a message out to every channel the person has and the kind has a template for."""
    addresses = {
        Channel.portal: str(who.user_id) if who.user_id else None,
        Channel.sms: who.phone,
        Channel.email: who.email,
    }
    messages = []
    for channel in channels:
        address = addresses[channel]
        if address and has_template(session, kind, channel):
            messages.append(enqueue(
                session, kind=kind, channel=channel, recipient=address, context=context,
                office_id=office_id, recipient_user_id=who.user_id, related=related,
                attachments=attachments if channel is Channel.email else (), locale=who.locale,
            ))
    return messages


def resend(session: Session, user: Any, messages: Iterable[Message]) -> int:
    """Queue messages again now (staff action); a sent one gets a fresh idempotency key."""
    count = 0
    for message in messages:
        if message.status is Status.sending:
            continue  # a dispatcher holds it right now
        if message.status is Status.sent:
            message.idempotency_key = uuid.uuid4().hex
        previous = message.status.value
        message.status = Status.queued
        message.attempts = 0
        message.next_attempt_at = utcnow()
        message.claim_token = None
        audit.record(session, user, "message_resent", obj=message, office_id=message.office_id,
                     from_state=previous, to_state=Status.queued.value)
        count += 1
    return count


def seed_templates(session: Session) -> int:
    """Insert the default templates that are missing; never overwrite Admin's edits."""
    existing = {(t.kind, t.channel, t.locale) for t in session.scalars(select(MessageTemplate))}
    created = 0
    for kind, (variables, texts) in DEFAULT_TEMPLATES.items():
        for (channel, locale), (subject, body, html) in texts.items():
            if (kind, channel, locale) not in existing:
                session.add(MessageTemplate(kind=kind, channel=channel, locale=locale,
                                            subject=subject, body=body, body_html=html,
                                            variables=variables, active=True))
                created += 1
    return created


def unread_count(session: Session, user_id: int) -> int:
    from sqlalchemy import func

    return session.scalar(
        select(func.count(InboxItem.id)).where(InboxItem.user_id == user_id,
                                               InboxItem.read_at.is_(None))
    ) or 0


def inbox(session: Session, user_id: int, limit: int = 100) -> list[InboxItem]:
    return list(session.scalars(
        select(InboxItem).where(InboxItem.user_id == user_id)
        .order_by(InboxItem.created_at.desc()).limit(limit)
    ))


def mark_read(session: Session, user_id: int, item_id: int | None = None) -> None:
    """Mark one (or every) inbox item of this user read; other users' items are untouched."""
    stmt = select(InboxItem).where(InboxItem.user_id == user_id, InboxItem.read_at.is_(None))
    if item_id is not None:
        stmt = stmt.where(InboxItem.id == item_id)
    now = utcnow()
    for item in session.scalars(stmt):
        item.read_at = now


def _console_emails(session: Session, user: Any):
    """E-mails that only reached the server's log (no mail server configured), of the
    offices ``user`` sees."""
    from app.scope import scope

    return select(Message).where(Message.channel == Channel.email,
                                 Message.transport == "console", scope(user, Message))


def console_emails(session: Session, user: Any, limit: int = 50) -> list[Message]:
    """The demo mailbox: the newest such e-mails, as their recipients would read them."""
    query = _console_emails(session, user).order_by(Message.id.desc()).limit(limit)
    return list(session.scalars(query))


def console_attachment(session: Session, user: Any, message_id: int, n: int) -> dict:
    """The ``n``-th attachment of one of those e-mails (NotFoundError when not visible)."""
    from app.errors import NotFoundError

    mail = session.scalars(_console_emails(session, user).where(Message.id == message_id)).first()
    files = (mail.attachments or []) if mail is not None else []
    if not 0 <= n < len(files):
        raise NotFoundError()
    return files[n]

