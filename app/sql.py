"""Small SQL helpers that must speak PostgreSQL and SQLite alike."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

VN_OFFSET = dt.timedelta(hours=7)  # Asia/Ho_Chi_Minh has no daylight saving time


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignore(session: Session, model: Any, values: Mapping[str, Any],
                  index_elements: Sequence[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: make a row exist without racing its creator."""
    dialect = postgresql if is_postgresql(session) else sqlite
    session.execute(dialect.insert(model).values(**values)
                    .on_conflict_do_nothing(index_elements=list(index_elements)))


def vn_day(session: Session, column: Any) -> Any:
    """The Vietnam calendar day of a stored (naive UTC) timestamp, for GROUP BY."""
    if is_postgresql(session):
        return func.date(column + VN_OFFSET)
    return func.date(column, "+7 hours")


def as_date(value: Any) -> dt.date:
    """What ``vn_day`` returns: a date (PostgreSQL) or 'YYYY-MM-DD' (SQLite)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def seconds_between(session: Session, start: Any, end: Any) -> Any:
    if is_postgresql(session):
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0
