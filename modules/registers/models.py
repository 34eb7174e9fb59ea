"""Certification registers (sổ chứng thực) and their numbered entries.

An entry keeps its own copy of what the register book shows (requester, document,
pages, fee …): the book is a legal record and must not change when a request does.
"""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from app.labels import code_labels, labelled
from app.ownership import OfficeOwned
from app.timeutil import utcnow
from app.users import StaffUser


class RegisterStatus(str, enum.Enum):
    open = "open"
    closed = "closed"


class EntryStatus(str, enum.Enum):
    issued = "issued"
    void = "void"  # sealing failed: the number stays, marked void with the reason


REGISTER_STATUS_LABELS = labelled({RegisterStatus.open: _l("Open"),
                                   RegisterStatus.closed: _l("Closed")})
ENTRY_STATUS_LABELS = labelled({EntryStatus.issued: _l("Issued"), EntryStatus.void: _l("Void")})


code_labels({"Register": _l("Certification register"), "RegisterEntry": _l("Register entry"),
             "number_issued": _l("Number issued"), "register_closed": _l("Register closed")})


class Register(OfficeOwned, Model):
    __tablename__ = "reg_register"
    __table_args__ = (
        CheckConstraint("start_number >= 1", name="ck_reg_register_start_positive"),
        CheckConstraint("next_number >= start_number", name="ck_reg_register_next"),
        Index("ix_reg_register_office_year", "office_id", "year"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    book_number: Mapped[str] = mapped_column(String(32), nullable=False)
    type_symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    start_number: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: One past the last number this book received (its start while it has none).  The
    #: number itself comes from the year's sequence (``RegisterSequence``), shared by every
    #: book of the office, year and type: a new book continues it.
    next_number: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    opening_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    closing_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[RegisterStatus] = mapped_column(
        Enum(RegisterStatus, name="reg_register_status", native_enum=False, length=16),
        nullable=False, default=RegisterStatus.open,
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    total_entries: Mapped[int | None] = mapped_column(Integer)

    created_by = relationship(StaffUser, foreign_keys=[created_by_id])
    closed_by = relationship(StaffUser, foreign_keys=[closed_by_id])

    @property
    def book_label(self) -> str:
        """As printed in the attestation: "01/2026-SCTĐT/BS"."""
        return f"{self.book_number}-{self.type_symbol}"

    @property
    def last_number(self) -> int | None:
        return self.next_number - 1 if self.next_number > self.start_number else None

    def __repr__(self) -> str:
        return f"{self.name} ({self.book_label})"


class RegisterEntry(OfficeOwned, Model):
    __tablename__ = "reg_entry"
    __table_args__ = (
        UniqueConstraint("register_id", "number", name="uq_reg_entry_number"),
        # One issued number per request and office; a voided number frees the request.
        Index("uq_reg_entry_issued_request", "office_id", "request_key", unique=True,
              postgresql_where=text("status = 'issued'"), sqlite_where=text("status = 'issued'")),
        Index("ix_reg_entry_office_issued_on", "office_id", "issued_on"),  # statistics
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    register_id: Mapped[int] = mapped_column(ForeignKey("reg_register.id"), nullable=False,
                                             index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Which request took this number ("copy:123"): makes allocation idempotent.
    request_key: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[EntryStatus] = mapped_column(
        Enum(EntryStatus, name="reg_entry_status", native_enum=False, length=16),
        nullable=False, default=EntryStatus.issued,
    )
    void_reason: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    issued_on: Mapped[dt.date] = mapped_column(Date, nullable=False)  # Vietnam date
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    # What the register book shows, copied when the number is issued.
    requester_name: Mapped[str | None] = mapped_column(String(255))
    requester_identity: Mapped[str | None] = mapped_column(String(32))
    document_type: Mapped[str | None] = mapped_column(String(255))
    pages: Mapped[int | None] = mapped_column(Integer)
    copies: Mapped[int | None] = mapped_column(Integer)
    signer_name: Mapped[str | None] = mapped_column(String(255))
    fee: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)

    register = relationship(Register, lazy="joined")
    issued_by = relationship(StaffUser, foreign_keys=[issued_by_id])

    def __repr__(self) -> str:
        return f"{self.number} — {self.register.book_label}"


#: Entries written in a book (void ones included: each keeps its line).
Register.issued_count = column_property(
    select(func.count(RegisterEntry.id)).where(RegisterEntry.register_id == Register.id)
    .correlate_except(RegisterEntry).scalar_subquery(), deferred=False)


class RegisterSequence(OfficeOwned, Model):
    """The year's numbering of one office and register type (Nghị định 23 art. 13): one
    counter whatever the number of books, so no number is given twice when two books are
    open, and a new book continues the sequence.  Made on first use (``services``)."""

    __tablename__ = "reg_sequence"
    __table_args__ = (
        UniqueConstraint("office_id", "year", "type_symbol", name="uq_reg_sequence"),
        CheckConstraint("next_number >= 1", name="ck_reg_sequence_next"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    type_symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    next_number: Mapped[int] = mapped_column(Integer, nullable=False)
