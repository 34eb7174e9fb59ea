"""Office hierarchy and the document-type catalogue.

Offices are not office-owned rows themselves: the hierarchy *is* the scope.
"""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.labels import labelled
from app.ownership import OfficeOwned, Owner


class OfficeKind(str, enum.Enum):
    province = "province"
    district_justice = "district_justice"
    commune = "commune"


OFFICE_KIND_LABELS = labelled({
    OfficeKind.province: _l("Province (Department of Justice)"),
    OfficeKind.district_justice: _l("District justice division"),
    OfficeKind.commune: _l("Commune people's committee"),
})
#: Kinds that certify or certified (their books and history stay readable); which of
#: them take new work on a given day: ``app.offices.services.certifying_kinds``.
OFFICE_KINDS_THAT_CERTIFY = (OfficeKind.commune, OfficeKind.district_justice)
#: Two-tier local government (Nghị quyết 202/2025/QH15): no district level from this day.
TWO_TIER_FROM = dt.date(2025, 7, 1)


class Office(Model):
    __tablename__ = "org_office"
    __owner__ = Owner(office="id")  # an office is in scope where its rows would be

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[OfficeKind] = mapped_column(
        Enum(OfficeKind, name="org_office_kind", native_enum=False, length=32),
        nullable=False,
    )
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    address: Mapped[str | None] = mapped_column(String(500))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_office.id"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    parent: Mapped[Office | None] = relationship(
        "Office", remote_side=[id], back_populates="children"
    )
    children: Mapped[list[Office]] = relationship("Office", back_populates="parent")

    def __repr__(self) -> str:
        return self.name


class DocumentType(Model):
    """Catalogue entry: what kind of paper original can be certified."""

    __tablename__ = "org_document_type"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name_vi: Mapped[str] = mapped_column(String(255), nullable=False)
    name_en: Mapped[str] = mapped_column(String(255), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    @property
    def name(self) -> str:
        """The name in the user's language (Vietnamese unless English is chosen)."""
        from flask_babel import get_locale

        return self.name_en if str(get_locale() or "vi") == "en" else self.name_vi

    def __repr__(self) -> str:
        return self.name_vi


class OfficeDocumentType(OfficeOwned, Model):
    """A document type enabled by an office (OfficeAdmin's choice)."""

    __tablename__ = "org_office_document_type"
    __table_args__ = (UniqueConstraint("office_id", "document_type_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_type_id: Mapped[int] = mapped_column(
        ForeignKey("org_document_type.id"), nullable=False
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    #: What the citizen must bring for this type at this office (shown when booking).
    note: Mapped[str | None] = mapped_column(Text)
    document_type: Mapped[DocumentType] = relationship(DocumentType, lazy="joined")

    def __repr__(self) -> str:
        return repr(self.document_type)
