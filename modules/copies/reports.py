"""Figures about copy requests for the dashboards: each one aggregate query computed by
the database, over the requests the user may see (the same office scope as the lists),
narrowed to the offices and document type asked for."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func
from sqlalchemy.orm import Session

from app.labels import label
from app.scope import scoped
from app.sql import as_date, is_postgresql, seconds_between, vn_day
from app.timeutil import Period, utcnow
from modules.copies.models import OPEN_STATES, CopyRequest, State
from modules.copies.workflow import REFUSAL_GROUNDS


@dataclass(frozen=True)
class Filter:
    """What a dashboard looks at: a period, some offices (None: every one in scope) and
    perhaps one document type."""

    period: Period
    office_ids: Sequence[int] | None = None
    document_type_id: int | None = None


@dataclass(frozen=True)
class DeliveryTimes:
    count: int
    average_hours: float | None
    p95_hours: float | None


def _select(session: Session, user: Any, flt: Filter, *columns: Any, period_of: Any = None):
    """``SELECT columns`` over the visible requests, narrowed by ``flt``; ``period_of`` is
    the timestamp the period applies to (None: no period)."""
    scope = scoped(session, user, CopyRequest).select().with_only_columns(*columns)
    if flt.office_ids is not None:
        scope = scope.where(CopyRequest.office_id.in_(list(flt.office_ids)))
    if flt.document_type_id is not None:
        scope = scope.where(CopyRequest.document_type_id == flt.document_type_id)
    if period_of is not None:
        start, end = flt.period.bounds
        scope = scope.where(period_of >= start, period_of < end)
    return scope


def by_state(session: Session, user: Any, flt: Filter) -> list[tuple[str, int]]:
    """Requests received in the period, by their state now: (label, count) for every
    state, in the procedure's order."""
    rows = session.execute(_select(session, user, flt, CopyRequest.state, func.count(),
                                   period_of=CopyRequest.received_at)
                           .group_by(CopyRequest.state))
    counts = {State(state): count for state, count in rows}
    return [(label(state), counts.get(state, 0)) for state in State]


def _per_day(session: Session, user: Any, flt: Filter, column: Any) -> dict[dt.date, int]:
    day = vn_day(session, column)
    rows = session.execute(_select(session, user, flt, day, func.count(), period_of=column)
                           .group_by(day))
    return {as_date(value): count for value, count in rows}


def received_per_day(session: Session, user: Any, flt: Filter) -> dict[dt.date, int]:
    return _per_day(session, user, flt, CopyRequest.received_at)


def delivered_per_day(session: Session, user: Any, flt: Filter) -> dict[dt.date, int]:
    return _per_day(session, user, flt, CopyRequest.delivered_at)


def delivery_times(session: Session, user: Any, flt: Filter) -> DeliveryTimes:
    """From intake to delivery, for the requests delivered in the period."""
    seconds = seconds_between(session, CopyRequest.received_at, CopyRequest.delivered_at)
    if is_postgresql(session):
        count, average, p95 = session.execute(_select(
            session, user, flt, func.count(), func.avg(seconds),
            func.percentile_cont(0.95).within_group(seconds),
            period_of=CopyRequest.delivered_at)).one()
    else:  # SQLite has no percentile: the durations are read (a demo's few thousand)
        values = sorted(float(v) for v, in session.execute(
            _select(session, user, flt, seconds, period_of=CopyRequest.delivered_at)))
        count = len(values)
        average = sum(values) / count if count else None
        p95 = _percentile(values, 0.95)
    return DeliveryTimes(count, _hours(average), _hours(p95))


def _hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 1)


def _percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def overdue(session: Session, user: Any, flt: Filter) -> int:
    """Open requests past their due time now (whatever the period)."""
    return session.scalar(_select(session, user, flt, func.count()).where(
        CopyRequest.state.in_(OPEN_STATES), CopyRequest.due_at < utcnow())) or 0


def returns_by_ground(session: Session, user: Any, flt: Filter) -> list[tuple[str, int]]:
    """Returned in the period, by Decree 23 ground, then those for a reason of the
    leader's own: (label, count) for each ground."""
    ground = func.coalesce(CopyRequest.return_ground, 0)
    rows = session.execute(_select(session, user, flt, ground, func.count(),
                                   period_of=CopyRequest.returned_at).group_by(ground))
    counts = {int(value): count for value, count in rows}
    return [(str(text), counts.get(n, 0)) for n, text in enumerate(REFUSAL_GROUNDS, 1)] + \
        [(_("Another reason"), counts.get(0, 0))]


def fees_collected(session: Session, user: Any, flt: Filter) -> tuple[int, int]:
    """(requests, đồng) whose fee was recorded as paid in the period."""
    count, total = session.execute(_select(
        session, user, flt, func.count(), func.coalesce(func.sum(CopyRequest.fee), 0),
        period_of=CopyRequest.paid_at).where(CopyRequest.fee_paid.is_(True))).one()
    return count, int(total)


def top_document_types(session: Session, user: Any, flt: Filter,
                       limit: int = 10) -> list[tuple[int, int]]:
    """(document type id, requests) received in the period, most first."""
    count = func.count().label("n")
    rows = session.execute(_select(session, user, flt, CopyRequest.document_type_id, count,
                                   period_of=CopyRequest.received_at)
                           .group_by(CopyRequest.document_type_id)
                           .order_by(count.desc()).limit(limit))
    return [(type_id, n) for type_id, n in rows]
