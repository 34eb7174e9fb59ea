"""Leased claims: how several processes (on several machines) share a table of work —
the outbox, the background exports — without two of them taking one row.

``claim`` is one short transaction: it picks due rows (on PostgreSQL ``FOR UPDATE SKIP
LOCKED``, so dispatchers do not wait on each other; on SQLite the database lock
serialises them) and marks them taken with an UPDATE that repeats the due condition
and says which rows it changed (``RETURNING``): a row another process took between the
two statements is simply not ours.  What is taken carries a lease (a time in the
row); a process that dies leaves it due again when the lease runs out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from app.transactions import atomic


def claim(session: Session, model: Any, due: ColumnElement[bool], values: Mapping[str, Any],
          *, limit: int, order_by: Sequence[Any]) -> list[int]:
    """Take up to ``limit`` due rows of ``model`` for this process (``values`` say how:
    a claim token, a lease); returns the ids now ours, in ``order_by`` order."""
    pick = select(model.id).where(due).order_by(*order_by).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    for _attempt in range(5):
        with atomic(session):
            ids = list(session.scalars(pick))
            if not ids:
                return []
            taken = set(session.scalars(
                update(model).where(model.id.in_(ids), due).values(**values)
                .returning(model.id).execution_options(synchronize_session=False)))
        if taken:
            return [row_id for row_id in ids if row_id in taken]
    return []
