"""Small SQL helpers that must speak PostgreSQL and SQLite alike."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: Any, values: Mapping[str, Any],
                  index_elements: Sequence[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: make a row exist without racing its creator."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(model).values(**values)
                    .on_conflict_do_nothing(index_elements=list(index_elements)))
