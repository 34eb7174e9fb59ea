"""Append-only audit log, hash-chained so that tampering is detectable.

Each row carries the hash of the previous row.  Writers serialise on one head
row (an UPDATE takes its lock on PostgreSQL and SQLite alike), so the chain
never forks under concurrency.  ``verify_chain`` recomputes every hash.
Rows are only ever inserted: nothing here updates or deletes an event.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.timeutil import utcnow

GENESIS = "0" * 64


class AuditHead(Model):
    """One row: the sequence and hash of the newest event (the chain's lock)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False, default=GENESIS)


class AuditEvent(Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("org_office.id"), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)

    def payload(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "user_id": self.user_id,
            "office_id": self.office_id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "event": self.event,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reason": self.reason,
            "file_sha256": self.file_sha256,
        }


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def record(
    session: Session,
    user: Any,
    event: str,
    *,
    obj: Any = None,
    office_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    file_sha256: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (committed with the change)."""
    seq, prev_hash = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    row = AuditEvent(
        seq=seq,
        created_at=utcnow(),
        user_id=getattr(user, "id", None),
        office_id=office_id if office_id is not None else getattr(obj, "office_id", None),
        object_type=type(obj).__name__ if obj is not None else None,
        object_id=getattr(obj, "id", None),
        event=event,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        file_sha256=file_sha256,
        prev_hash=prev_hash,
    )
    row.row_hash = chain_hash(prev_hash, row.payload())
    session.add(row)
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(last_hash=row.row_hash)
    )
    return row


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None  # seq of the first row that does not match

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; report the first row that was altered or removed."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
        if row.seq != expected_seq or row.prev_hash != prev:
            return ChainReport(checked, row.seq)
        if chain_hash(prev, row.payload()) != row.row_hash:
            return ChainReport(checked, row.seq)
        prev = row.row_hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.last_hash != prev):
        return ChainReport(checked, checked + 1)  # rows removed from the end
    return ChainReport(checked, None)
