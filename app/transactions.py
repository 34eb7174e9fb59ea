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

from sqlalchemy.orm import Session

_OPEN = "saoy_unit_of_work"


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
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info[_OPEN] = False
