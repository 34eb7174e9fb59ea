"""One unit of work: a service's change, its audit event and its messages commit
together, or none of them does.

The edge (a view, an API endpoint, a job, a CLI command) opens ``atomic``; services
never commit.  A block inside an open unit joins it.

No savepoints: pysqlite's SAVEPOINT before the first write would start (and RELEASE
would commit) a transaction of its own.  The one step that is retried — taking a
register number — is a compare-and-swap done before anything else is written, so a
failed attempt has nothing to undo.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

from app import timing

_OPEN = "saoy_unit_of_work"


class OutsideUnitOfWorkError(RuntimeError):
    """A row of ours was about to be written with no unit of work open: a service was
    called from an edge that forgot ``atomic()`` (a bug, never the user's fault)."""


def in_unit_of_work(session: Session) -> bool:
    return bool(session.info.get(_OPEN))


@contextmanager
def atomic(session: Session) -> Iterator[Session]:
    """Commit what the block wrote; on any error roll all of it back and re-raise."""
    if in_unit_of_work(session):
        yield session  # the outer unit commits (or rolls back) everything together
        return
    session.info[_OPEN] = True
    try:
        yield session
        with timing.span("commit"):
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info[_OPEN] = False


def _ours(instance: object) -> bool:
    """Rows of the application (FAB's own permission tables are FAB's business)."""
    return type(instance).__module__.split(".", 1)[0] in ("app", "modules")


class UnitSession(Session):
    """A plain session for workers (dispatcher, exports) whose writes are guarded too."""


def guard_writes(session_class: type) -> None:
    """Every flush of ``session_class`` that writes a row of ours must happen inside
    ``atomic()``: the rule "the edge opens one unit of work" enforces itself."""

    @event.listens_for(session_class, "before_flush")
    def _inside_a_unit(session: Session, _context, _instances) -> None:
        if in_unit_of_work(session):
            return
        written = [o for o in (*session.new, *session.dirty, *session.deleted) if _ours(o)]
        if written and any(session.is_modified(o) or o in session.new or o in session.deleted
                           for o in written):
            raise OutsideUnitOfWorkError(
                f"{type(written[0]).__name__} written outside atomic(): open one unit of "
                "work at the edge (view, API, job, command)")


guard_writes(UnitSession)
