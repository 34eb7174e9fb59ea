"""Append-only audit log, hash-chained so that tampering is detectable.

One chain per office (chain 0: the platform and events without an office), so that
unrelated offices never wait on each other.  ``record`` only notes the event; the
rows are chained and written just before the unit of work commits (a session
``before_commit`` hook): the chain's head row is locked for milliseconds, never
across signing, sealing or a network call.  Within a chain each row carries the
hash of the previous row; ``verify_chain`` recomputes every hash.  Rows are only
ever inserted: nothing here updates or deletes an event.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.ownership import Owner
from app.sql import insert_ignore
from app.timeutil import utcnow

GENESIS = "0" * 64
PLATFORM_CHAIN = 0
_PENDING = "saoy_audit_pending"


class AuditHead(Model):
    """One row per chain (id = office id, 0 = platform): sequence and hash of its newest
    event.  Writers of that chain lock it while they append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False, default=GENESIS)


class AuditEvent(Model):
    __tablename__ = "audit_event"
    __owner__ = Owner(office="office_id")
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_event_chain_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[int] = mapped_column(Integer, nullable=False, default=PLATFORM_CHAIN)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("org_office.id"), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[int | None] = mapped_column(Integer, index=True)
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


@dataclass
class _Noted:
    """An event waiting for its unit of work to commit (the object's id may come later)."""

    obj: Any
    values: dict[str, Any]

    def row_values(self) -> dict[str, Any]:
        values = dict(self.values)
        if self.obj is not None:
            values["object_type"] = type(self.obj).__name__
            values["object_id"] = getattr(self.obj, "id", None)
            if values["office_id"] is None:
                values["office_id"] = getattr(self.obj, "office_id", None)
        return values


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
) -> None:
    """Note one event in the caller's unit of work; it is written when that commits."""
    session.info.setdefault(_PENDING, []).append(_Noted(obj, {
        "created_at": utcnow(), "user_id": getattr(user, "id", None), "office_id": office_id,
        "object_type": None, "object_id": None, "event": event, "from_state": from_state,
        "to_state": to_state, "reason": reason, "file_sha256": file_sha256,
    }))


def write_pending(session: Session) -> int:
    """Chain and insert the noted events, one short head lock per chain touched."""
    noted: list[_Noted] = session.info.pop(_PENDING, None) or []
    if not noted:
        return 0
    session.flush()  # ids of the objects created in this unit
    by_chain: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in noted:
        values = item.row_values()
        by_chain[values["office_id"] or PLATFORM_CHAIN].append(values)
    for chain in sorted(by_chain):  # always the same order: no deadlock between chains
        rows = by_chain[chain]
        insert_ignore(session, AuditHead, {"id": chain, "seq": 0, "last_hash": GENESIS},
                      ["id"])
        last_seq, prev_hash = session.execute(
            update(AuditHead).where(AuditHead.id == chain)
            .values(seq=AuditHead.seq + len(rows))
            .returning(AuditHead.seq, AuditHead.last_hash)).one()
        seq = last_seq - len(rows)
        for values in rows:
            seq += 1
            row = AuditEvent(chain=chain, seq=seq, prev_hash=prev_hash, **values)
            values.update(chain=chain, seq=seq, prev_hash=prev_hash,
                          row_hash=chain_hash(prev_hash, row.payload()))
            prev_hash = values["row_hash"]
        session.execute(insert(AuditEvent), rows)
        session.execute(update(AuditHead).where(AuditHead.id == chain)
                        .values(last_hash=prev_hash))
    return len(noted)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the unit ended: committed (written) or rolled back
        session.info.pop(_PENDING, None)


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None  # seq of the first row that does not match
    chain: int | None = None  # the chain (office id, 0 = platform) it belongs to

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash of every chain in order; report the first row that was
    altered or removed."""
    heads = {head.id: head for head in session.scalars(select(AuditHead))}
    chains = set(heads) | set(session.scalars(select(AuditEvent.chain).distinct()))
    checked = 0
    for chain in sorted(chains):
        prev, expected = GENESIS, 1
        rows = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain)
                               .order_by(AuditEvent.seq)).yield_per(1000)
        for row in rows:
            if row.seq != expected or row.prev_hash != prev or \
                    chain_hash(prev, row.payload()) != row.row_hash:
                return ChainReport(checked, row.seq, chain)
            prev = row.row_hash
            expected += 1
            checked += 1
        head = heads.get(chain)
        if head is None or head.seq != expected - 1 or head.last_hash != prev:
            return ChainReport(checked, expected, chain)  # rows removed from the end
    return ChainReport(checked, None)
