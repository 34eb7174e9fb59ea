"""Office and document-type rules shared by views, APIs and other modules.  Never commits."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.offices.models import (
    OFFICE_KINDS_THAT_CERTIFY,
    TWO_TIER_FROM,
    DocumentType,
    Office,
    OfficeDocumentType,
    OfficeKind,
)
from app.records import RecordService
from app.timeutil import format_date, today_vn


def offered_document_types(session: Session, office_id: int) -> list[DocumentType]:
    """Active document types an office has enabled, by Vietnamese name."""
    return list(
        session.scalars(
            select(DocumentType)
            .join(OfficeDocumentType, OfficeDocumentType.document_type_id == DocumentType.id)
            .where(
                OfficeDocumentType.office_id == office_id,
                OfficeDocumentType.active.is_(True),
                DocumentType.active.is_(True),
            )
            .order_by(DocumentType.name_vi)
        )
    )


def certifying_offices(session: Session, user: Any) -> list[Office]:
    """The offices that certify copies among those the user may see, by name."""
    from app.scope import scope

    return list(session.scalars(select(Office).where(
        Office.kind.in_(OFFICE_KINDS_THAT_CERTIFY), scope(user, Office)).order_by(Office.name)))


def certifying_kinds(day: dt.date | None = None) -> tuple[OfficeKind, ...]:
    """The kinds of office that take new certification work on ``day``.  Two-tier local
    government (Nghị quyết 202/2025/QH15, Nghị định 120/2025/NĐ-CP): from 01/07/2025 the
    district level is gone and communes certify; a former district justice division keeps
    its books and history, read-only.  (``DISTRICT_LEVEL_ENDED`` moves the day for a
    deployment replaying older data.)"""
    if (day or today_vn()) >= district_level_ended():
        return (OfficeKind.commune,)
    return OFFICE_KINDS_THAT_CERTIFY


def district_level_ended() -> dt.date:
    config = current_app.config if has_app_context() else {}
    return config.get("DISTRICT_LEVEL_ENDED") or TWO_TIER_FROM


def check_takes_new_work(office: Office | None) -> None:
    """Refuse new certification work (intake, a new book, a number) at an office that no
    longer certifies; what it did stays readable."""
    if office is not None and office.kind not in certifying_kinds():
        raise DomainError(_(
            "%(office)s no longer certifies copies: since %(day)s (two-tier local "
            "government, Decree 120/2025) copies are certified at the commune people's "
            "committees. Its registers and history stay readable.", office=office.name,
            day=format_date(district_level_ended())), 409)


def document_types(session: Session) -> list[DocumentType]:
    """The national catalogue, by Vietnamese name."""
    return list(session.scalars(select(DocumentType).order_by(DocumentType.name_vi)))


def is_offered(session: Session, office_id: int, document_type_id: int) -> bool:
    return any(t.id == document_type_id for t in offered_document_types(session, office_id))


class OfficeDocumentTypeService(RecordService):
    """An office offers a catalogue entry once, and only an active one."""

    def validate(self, session: Session, user: Any, item: OfficeDocumentType, *,
                 created: bool) -> None:
        if not created:
            return
        doc_type = item.document_type or (session.get(DocumentType, item.document_type_id)
                                          if item.document_type_id else None)
        if doc_type is None or not doc_type.active:
            raise DomainError(_("Choose an active document type of the catalogue."))
        taken = session.scalar(select(OfficeDocumentType.id).where(
            OfficeDocumentType.office_id == item.office_id,
            OfficeDocumentType.document_type_id == doc_type.id))
        if taken:
            raise DomainError(_("Your office already offers this document type."), 409)


def set_offered(session: Session, user: Any, rows: list[OfficeDocumentType], offered: bool) -> int:
    """Offer or withdraw document types (rows already office-scoped by the caller)."""
    changed = 0
    for row in rows:
        if row.active != offered:
            row.active = offered
            audit.record(session, user, "document_type_offered" if offered
                         else "document_type_withdrawn", obj=row)
            changed += 1
    return changed
