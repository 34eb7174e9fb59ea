"""Office and document-type rules shared by views, APIs and other modules."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.offices.models import DocumentType, Office, OfficeDocumentType
from app.scoping import staff_office_id


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


def is_offered(session: Session, office_id: int, document_type_id: int) -> bool:
    return any(t.id == document_type_id for t in offered_document_types(session, office_id))


def enable_document_type(
    session: Session, user: Any, document_type_id: int
) -> OfficeDocumentType:
    """OfficeAdmin enables a catalogue entry for their own office (idempotent)."""
    office_id = staff_office_id(user)
    existing = session.scalars(
        select(OfficeDocumentType).where(
            OfficeDocumentType.office_id == office_id,
            OfficeDocumentType.document_type_id == document_type_id,
        )
    ).first()
    if existing:
        existing.active = True
        return existing
    row = OfficeDocumentType(office_id=office_id, document_type_id=document_type_id)
    session.add(row)
    session.flush()
    audit.record(session, user, "document_type_enabled", obj=row)
    return row


def active_offices(session: Session) -> list[Office]:
    stmt = select(Office).where(Office.active.is_(True)).order_by(Office.name)
    return list(session.scalars(stmt))


def set_offered(session: Session, user: Any, rows: list[OfficeDocumentType], offered: bool) -> int:
    """Offer or withdraw document types (rows already office-scoped by the caller)."""
    changed = 0
    for row in rows:
        if row.active != offered:
            row.active = offered
            audit.record(session, user, "document_type_offered" if offered
                         else "document_type_withdrawn", obj=row)
            changed += 1
    session.commit()
    return changed
