"""The statistics offices report upward, from the register books themselves: what was
numbered (issued entries) in a period, per office."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from app.scope import scoped
from app.timeutil import Period
from modules.registers.models import EntryStatus, RegisterEntry


@dataclass(frozen=True)
class OfficeFigures:
    office_id: int
    certifications: int  # numbers issued in the register (one per certified request)
    copies: int
    pages: int  # pages certified: the original's pages × the copies made
    fees: int  # đồng


def certified_per_office(session: Session, user: Any, period: Period,
                         office_ids: Sequence[int] | None,
                         document_type: str | None = None) -> list[OfficeFigures]:
    """``document_type``: its Vietnamese name, as the register book writes it."""
    query = scoped(session, user, RegisterEntry).select().with_only_columns(
        RegisterEntry.office_id, func.count(),
        func.coalesce(func.sum(RegisterEntry.copies), 0),
        func.coalesce(func.sum(func.coalesce(RegisterEntry.pages, 0)
                               * func.coalesce(RegisterEntry.copies, 1)), 0),
        func.coalesce(func.sum(RegisterEntry.fee), 0),
    ).where(RegisterEntry.status == EntryStatus.issued,
            RegisterEntry.issued_on >= period.first, RegisterEntry.issued_on <= period.last)
    if office_ids is not None:
        query = query.where(RegisterEntry.office_id.in_(list(office_ids)))
    if document_type is not None:
        query = query.where(RegisterEntry.document_type == document_type)
    rows = session.execute(query.group_by(RegisterEntry.office_id))
    return [OfficeFigures(office, int(n), int(copies), int(pages), int(fees))
            for office, n, copies, pages, fees in rows]
