"""Outbox, editable message templates and the citizen's portal inbox."""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.labels import code_labels, labelled
from app.ownership import Owner
from app.timeutil import utcnow
from app.users import StaffUser


class Channel(str, enum.Enum):
    sms = "sms"
    email = "email"
    portal = "portal"


class Status(str, enum.Enum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"  # will be retried at next_attempt_at
    dead = "dead"  # gave up: permanent error or too many attempts


CHANNEL_LABELS = labelled({Channel.sms: _l("SMS"), Channel.email: _l("E-mail"),
                           Channel.portal: _l("Portal inbox")})
STATUS_LABELS = labelled({
    Status.queued: _l("Waiting to be sent"), Status.sending: _l("Sending"),
    Status.sent: _l("Sent"), Status.failed: _l("Failed, will retry"),
    Status.dead: _l("Gave up"),
})


code_labels({"copy_returned": _l("Request returned"), "copy_delivered": _l("Copy delivered"),
             "copy_returned_to_officer": _l("Request returned to its officer"),
             "copy_refused": _l("Request refused"), "test_message": _l("Test message")})


def _enum(cls, name):
    return Enum(cls, name=name, native_enum=False, length=16)


class Message(Model):
    """One message to one recipient, written in the transaction that causes it."""

    __tablename__ = "notify_message"
    __owner__ = Owner(office="office_id")  # staff see their offices' messages
    __table_args__ = (
        Index("ix_notify_message_due", "status", "next_attempt_at"),
        Index("ix_notify_message_office_created", "office_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Nullable: a few messages (account registration) belong to no office yet.
    office_id: Mapped[int | None] = mapped_column(ForeignKey("org_office.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notify_channel"), nullable=False)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False)
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="vi")
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: [{"sha256": …, "filename": …, "mimetype": …}] — files in the file store.
    attachments: Mapped[list | None] = mapped_column(JSON)
    related_type: Mapped[str | None] = mapped_column(String(64))
    related_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[Status] = mapped_column(
        _enum(Status, "notify_status"), nullable=False, default=Status.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    transport: Mapped[str | None] = mapped_column(String(16))
    #: Sent with every attempt (SMS "id", e-mail Message-ID) so a provider can drop
    #: the duplicate that a crash between sending and recording may cause.
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), index=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    office = relationship("Office", lazy="joined")
    recipient_user = relationship(StaffUser, foreign_keys=[recipient_user_id], lazy="joined")

    @property
    def addressee(self) -> str:
        """Who it went to as staff read it: a portal inbox is a person, not a user id."""
        user = self.recipient_user
        if self.channel is Channel.portal and user is not None:
            name = f"{user.first_name or ''} {user.last_name or ''}".strip()
            return f"{name} ({user.username})" if name else user.username
        return self.recipient

    def __repr__(self) -> str:
        return f"{self.channel.value}:{self.recipient} {self.kind}"


class MessageTemplate(Model):
    """Per message kind, channel and language; Admin edits the text."""

    __tablename__ = "notify_template"
    __table_args__ = (UniqueConstraint("kind", "channel", "locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notify_tpl_channel"), nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="vi")
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: Which variables the template may use, with their meaning (shown to the editor).
    variables: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    def __repr__(self) -> str:
        return f"{self.kind}/{self.channel.value}/{self.locale}"


class InboxItem(Model):
    """A notification in a citizen's portal inbox ("notify tới tài khoản DVCQG")."""

    __tablename__ = "notify_inbox"
    __owner__ = Owner(user="user_id")  # a person's own notifications, nobody else's
    __table_args__ = (Index("ix_notify_inbox_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False)
    message_id: Mapped[int] = mapped_column(ForeignKey("notify_message.id"), unique=True)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
