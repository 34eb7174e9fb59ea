"""One unit of work: a service's change, its audit event and its messages commit
together, or none of them does."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def atomic(session: Session) -> Iterator[Session]:
    """Commit what the block wrote; on any error roll all of it back and re-raise."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
