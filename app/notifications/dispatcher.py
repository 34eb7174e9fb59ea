"""The outbox dispatcher: claim due messages, send them, record the result.

Claiming is one short transaction: on PostgreSQL the due rows are locked with
``FOR UPDATE SKIP LOCKED`` so that dispatchers in several processes (on several
machines) never take the same message; on SQLite the database lock serialises
claims.  Sending happens outside any transaction.  The result is recorded only
while our claim still holds.

Delivery is at-least-once: if a process dies after the provider accepted a
message but before the result was recorded, the claim's lease expires and the
message is sent again — with the same idempotency key (SMS ``id``, e-mail
``Message-ID``), which lets the provider drop the duplicate.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app import queue
from app.notifications.channels import PermanentError, TemporaryError, Transport
from app.notifications.models import Channel, Message, Status
from app.timeutil import utcnow
from app.transactions import UnitSession, atomic

log = logging.getLogger("saoy.notifications")


@dataclass
class DispatchSettings:
    batch: int = 50
    max_attempts: int = 8
    backoff_seconds: int = 30
    backoff_max_seconds: int = 3600
    lease_seconds: int = 300

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DispatchSettings:
        return cls(
            batch=config["OUTBOX_BATCH"],
            max_attempts=config["OUTBOX_MAX_ATTEMPTS"],
            backoff_seconds=config["OUTBOX_BACKOFF_SECONDS"],
            backoff_max_seconds=config["OUTBOX_BACKOFF_MAX_SECONDS"],
            lease_seconds=config["OUTBOX_LEASE_SECONDS"],
        )

    def backoff(self, attempts: int) -> dt.timedelta:
        """30 s, 60 s, 120 s, … capped: exponential back-off after ``attempts`` failures."""
        seconds = self.backoff_seconds * (2 ** max(attempts - 1, 0))
        return dt.timedelta(seconds=min(seconds, self.backoff_max_seconds))


class Dispatcher:
    def __init__(self, session_factory: Callable[[], Session],
                 transports: Mapping[Channel, Transport], settings: DispatchSettings):
        self.session_factory, self.transports, self.settings = (
            session_factory, transports, settings)

    def claim(self) -> tuple[str, list[Message]]:
        token = uuid.uuid4().hex
        now = utcnow()
        lease_expired = now - dt.timedelta(seconds=self.settings.lease_seconds)
        due = or_(
            and_(Message.status.in_([Status.queued, Status.failed]),
                 Message.next_attempt_at <= now),
            and_(Message.status == Status.sending, Message.claimed_at < lease_expired),
        )
        session = self.session_factory()
        try:
            ids = queue.claim(session, Message, due,
                              {"status": Status.sending, "claim_token": token, "claimed_at": now},
                              limit=self.settings.batch,
                              order_by=(Message.next_attempt_at, Message.id))
            if not ids:
                return token, []
            claimed = list(session.scalars(select(Message).where(
                Message.id.in_(ids), Message.claim_token == token).order_by(Message.id)))
            session.expunge_all()
            return token, claimed
        finally:
            session.close()

    def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were handled."""
        token, messages = self.claim()
        for message in messages:
            self._deliver(token, message)
        return len(messages)

    def drain(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            total += handled
            if not handled:
                break
        return total

    def _deliver(self, token: str, message: Message) -> None:
        transport = self.transports[message.channel]
        attempts = message.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "transport": transport.name,
                                  "claim_token": None}
        try:
            provider_id = transport.send(message)
        except PermanentError as exc:
            values.update(status=Status.dead, last_error=str(exc)[:2000])
        except TemporaryError as exc:
            values.update(last_error=str(exc)[:2000])
            if attempts >= self.settings.max_attempts:
                values["status"] = Status.dead
            else:
                values.update(status=Status.failed,
                              next_attempt_at=utcnow() + self.settings.backoff(attempts))
        except Exception as exc:
            log.exception("unexpected error sending message %s", message.id)
            values.update(status=Status.failed, last_error=f"internal error: {exc!r}"[:2000],
                          next_attempt_at=utcnow() + self.settings.backoff(attempts))
        else:
            values.update(status=Status.sent, provider_message_id=provider_id[:255],
                          sent_at=utcnow(), last_error=None)
        session = self.session_factory()
        try:
            with atomic(session):
                result = session.execute(
                    update(Message).where(Message.id == message.id,
                                          Message.claim_token == token)
                    .values(**values).execution_options(synchronize_session=False))
            if result.rowcount == 0:
                log.warning("message %s: claim lost before recording (lease expired)", message.id)
        finally:
            session.close()


def dispatcher_for_app(app, **overrides: Any) -> Dispatcher:
    """A dispatcher configured from the app (``overrides``: settings for this one)."""
    from app.extensions import db
    from app.notifications.channels import transports_from_config
    from app.storage import FileStore

    config = {**app.config, **overrides}
    files: FileStore = app.extensions["saoy_files"]
    with app.app_context():
        engine = db.engine

    def session_factory() -> Session:
        return UnitSession(bind=engine, expire_on_commit=False)

    transports = transports_from_config(config, files, session_factory)
    return Dispatcher(session_factory, transports, DispatchSettings.from_config(config))
