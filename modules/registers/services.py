"""Register rules and gap-free numbering.  The only code that changes registers.

``allocate_number`` serialises on the register row: its first statement is an
UPDATE of that row, which takes the row lock on PostgreSQL and the write lock on
SQLite; the counter moves in the same transaction as the entry, so a rollback
gives the number back and a commit makes it permanent.  Numbers are never reused,
never skipped and never issued twice.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.scoping import scoped, staff_office_id
from app.timeutil import VN_TZ, utcnow
from modules.registers.models import EntryStatus, Register, RegisterEntry, RegisterStatus


class RegisterError(DomainError):
    """A register rule was broken; the message is for the user (Vietnamese/English)."""


@dataclass(frozen=True)
class EntryDetails:
    """What the register book shows for one certified copy."""

    requester_name: str | None = None
    requester_identity: str | None = None
    document_type: str | None = None
    pages: int | None = None
    copies: int | None = None
    signer_name: str | None = None
    fee: int | None = None
    notes: str | None = None


def today_vn() -> dt.date:
    return dt.datetime.now(VN_TZ).date()


def last_issued_number(session: Session, office_id: int, year: int, type_symbol: str,
                       exclude_id: int | None = None) -> int:
    """Highest number issued this year in this office's registers of that symbol."""
    stmt = select(func.max(Register.next_number - 1)).where(
        Register.office_id == office_id, Register.year == year,
        Register.type_symbol == type_symbol, Register.next_number > Register.start_number)
    if exclude_id is not None:
        stmt = stmt.where(Register.id != exclude_id)
    return session.scalar(stmt) or 0


def suggested_start_number(session: Session, office_id: int, year: int, type_symbol: str) -> int:
    """A new book opened mid-year continues the sequence: last + 1 (1 in a new year)."""
    return last_issued_number(session, office_id, year, type_symbol) + 1


def validate_register(session: Session, register: Register, *, had_entries: bool,
                      old_year: int | None = None, old_start: int | None = None) -> None:
    """Rules for creating or editing a register; raises RegisterError.

    ``register`` may carry unsaved edits: nothing here may flush them first.
    """
    with session.no_autoflush:
        _validate_register(session, register, had_entries, old_year, old_start)


def _validate_register(session, register, had_entries, old_year, old_start) -> None:
    if register.start_number is None or register.start_number < 1:
        raise RegisterError(_("The start number must be a whole number from 1."))
    if not register.year or not 2000 <= register.year <= 2100:
        raise RegisterError(_("The year is not valid."))
    if register.opening_date and register.opening_date.year != register.year:
        raise RegisterError(_("The opening date must fall in the register's year."))
    if register.closing_date and register.opening_date and \
            register.closing_date < register.opening_date:
        raise RegisterError(_("The closing date cannot be before the opening date."))
    if had_entries and (register.year != old_year or register.start_number != old_start):
        raise RegisterError(_("Numbers were already issued from this register: its start "
                              "number and year can no longer change."))
    if not had_entries:
        taken = last_issued_number(session, register.office_id, register.year,
                                   register.type_symbol, exclude_id=register.id)
        if register.start_number <= taken:
            raise RegisterError(_("Numbers up to %(last)s were already issued this year: start "
                                  "at %(next)s or later.", last=taken, next=taken + 1))
        register.next_number = register.start_number


def create_register(session: Session, user: Any, *, name: str, book_number: str,
                    type_symbol: str, year: int, start_number: int, opening_date: dt.date,
                    closing_date: dt.date | None = None) -> Register:
    register = Register(
        office_id=staff_office_id(user), name=name, book_number=book_number,
        type_symbol=type_symbol, year=year, start_number=start_number,
        next_number=start_number, opening_date=opening_date, closing_date=closing_date,
        status=RegisterStatus.open, created_by_id=user.id,
    )
    validate_register(session, register, had_entries=False)
    session.add(register)
    session.flush()
    audit.record(session, user, "register_opened", obj=register)
    session.commit()
    return register


def has_entries(session: Session, register_id: int) -> bool:
    with session.no_autoflush:
        return session.scalar(select(func.count(RegisterEntry.id))
                              .where(RegisterEntry.register_id == register_id)) > 0


def check_deletable(session: Session, register: Register) -> None:
    if has_entries(session, register.id):
        raise RegisterError(_("This register already has entries and cannot be deleted. "
                              "Registers are kept permanently; close it instead."))


def close_register(session: Session, user: Any, register_id: int) -> Register:
    """Khóa sổ: no number is issued afterwards; records the total and who closed it."""
    register = scoped(session, user, Register).get_or_404(register_id)
    session.execute(update(Register).where(Register.id == register.id)
                    .values(next_number=Register.next_number))  # lock, like allocation
    session.refresh(register)
    if register.status is RegisterStatus.closed:
        raise RegisterError(_("This register is already closed."), 409)
    register.status = RegisterStatus.closed
    register.closed_at = utcnow()
    register.closed_by_id = user.id
    register.closing_date = register.closing_date or today_vn()
    register.total_entries = register.issued_count
    audit.record(session, user, "register_closed", obj=register,
                 from_state=RegisterStatus.open.value, to_state=RegisterStatus.closed.value,
                 reason=str(register.total_entries))
    session.commit()
    return register


def find_entry(session: Session, office_id: int, request_key: str) -> RegisterEntry | None:
    """The entry that request already has in this office (issued or void)."""
    return session.scalars(
        select(RegisterEntry).where(RegisterEntry.office_id == office_id,
                                    RegisterEntry.request_key == request_key)
        .order_by(RegisterEntry.id.desc())
    ).first()


def allocate_number(session: Session, user: Any, register_id: int, request_key: str,
                    details: EntryDetails | None = None, *, commit: bool = True) -> RegisterEntry:
    """The next number of the register for this request, atomically and idempotently.

    Asking again for the same request returns the same entry.  A request whose
    earlier number was voided gets a new one (the void number stays in the book).
    """
    register = scoped(session, user, Register).get_or_404(register_id)
    # 1. Lock the register row (no-op UPDATE): concurrent clerks queue here.
    session.execute(update(Register).where(Register.id == register.id)
                    .values(next_number=Register.next_number)
                    .execution_options(synchronize_session=False))
    existing = find_entry(session, register.office_id, request_key)
    if existing is not None and existing.status is EntryStatus.issued:
        if commit:
            session.commit()  # releases the lock; nothing changed
        return existing
    session.refresh(register)
    today = today_vn()
    if register.status is not RegisterStatus.open:
        raise RegisterError(_("This register is closed: choose an open register."), 409)
    if today < register.opening_date or (register.closing_date and today > register.closing_date):
        raise RegisterError(_("No number can be issued outside the register's opening and "
                              "closing dates."))
    if register.year != today.year:
        raise RegisterError(_("This register belongs to %(year)s: open a register for this "
                              "year.", year=register.year))
    # 2. Take the number: the counter and the entry commit together.
    number = session.execute(
        update(Register).where(Register.id == register.id)
        .values(next_number=Register.next_number + 1)
        .returning(Register.next_number)
        .execution_options(synchronize_session=False)
    ).scalar_one() - 1
    details = details or EntryDetails()
    entry = RegisterEntry(
        office_id=register.office_id, register_id=register.id, number=number,
        request_key=request_key, status=EntryStatus.issued, issued_at=utcnow(),
        issued_on=today, issued_by_id=getattr(user, "id", None), **details.__dict__,
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:
        # Same request raced us into this register: its number stands, ours rolls back.
        session.rollback()
        again = find_entry(session, register.office_id, request_key)
        if again is None:
            raise
        return again
    audit.record(session, user, "number_issued", obj=entry, reason=f"{number}/{request_key}")
    if commit:
        session.commit()
    return entry


def void_entry(session: Session, user: Any, entry_id: int, reason: str) -> RegisterEntry:
    """Sealing failed after the number was issued: the number stays, marked void."""
    entry = scoped(session, user, RegisterEntry).get_or_404(entry_id)
    if not reason or not reason.strip():
        raise RegisterError(_("A reason is required."))
    if entry.status is EntryStatus.void:
        return entry
    entry.status = EntryStatus.void
    entry.void_reason = reason.strip()
    audit.record(session, user, "number_voided", obj=entry,
                 from_state=EntryStatus.issued.value, to_state=EntryStatus.void.value,
                 reason=entry.void_reason)
    session.commit()
    return entry


def update_entry_details(session: Session, user: Any, entry_id: int,
                         details: EntryDetails) -> RegisterEntry:
    """Fill the book columns known only later (e.g. the signer), same transaction as caller."""
    entry = scoped(session, user, RegisterEntry).get_or_404(entry_id)
    for key, value in details.__dict__.items():
        if value is not None:
            setattr(entry, key, value)
    return entry


def open_registers(session: Session, user: Any) -> list[Register]:
    """Open registers of the user's office valid today (the clerk's choice when sealing)."""
    today = today_vn()
    return [r for r in scoped(session, user, Register).all(Register.status == RegisterStatus.open)
            if r.opening_date <= today and (r.closing_date is None or r.closing_date >= today)
            and r.year == today.year]


BOOK_HEADERS_KEYS = (
    "number", "issued_on", "requester_name", "requester_identity", "document_type", "pages",
    "copies", "signer_name", "fee", "notes",
)


def book_rows(session: Session, register: Register):
    """Register book rows in number order, streamed (void numbers keep their line)."""
    e = RegisterEntry
    stmt = (select(e.number, e.issued_on, e.requester_name, e.requester_identity,
                   e.document_type, e.pages, e.copies, e.signer_name, e.fee, e.notes, e.status,
                   e.void_reason)
            .where(e.register_id == register.id).order_by(e.number)
            .execution_options(yield_per=2000))  # plain rows, streamed: no ORM objects
    for row in session.execute(stmt):
        *columns, notes, status, void_reason = row
        if status is EntryStatus.void:
            notes = (_("VOID: %(reason)s", reason=void_reason or "") + " " + (notes or "")).strip()
        yield [*columns, notes]
