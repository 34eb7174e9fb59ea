"""Register rules and gap-free numbering.  The only code that changes registers; it
never commits (the caller's unit of work does).

The counter moves only in the same unit as its entry, so a rollback gives the number
back and a commit makes it permanent: numbers are never reused, never skipped and
never issued twice.  Sealing takes a number optimistically (``offer_number``, then the
sealed file is made with no lock held, then ``take_number``'s compare-and-swap);
``allocate_number`` locks the register row instead, for callers with nothing slow to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit, params
from app.errors import DomainError
from app.offices.models import Office
from app.offices.services import check_takes_new_work
from app.records import RecordService
from app.scope import scoped
from app.timeutil import today_vn, utcnow
from modules.registers.models import (
    EntryStatus,
    Register,
    RegisterEntry,
    RegisterSequence,
    RegisterStatus,
)


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


def last_issued_number(session: Session, office_id: int, year: int, type_symbol: str,
                       exclude_id: int | None = None) -> int:
    """Highest number issued (or voided) this year in this office's books of that type."""
    stmt = select(func.max(RegisterEntry.number)).join(Register).where(
        Register.office_id == office_id, Register.year == year,
        Register.type_symbol == type_symbol)
    if exclude_id is not None:
        stmt = stmt.where(Register.id != exclude_id)
    return session.scalar(stmt) or 0


def suggested_start_number(session: Session, office_id: int, year: int, type_symbol: str) -> int:
    """A new book opened mid-year continues the sequence: last + 1 (1 in a new year)."""
    return last_issued_number(session, office_id, year, type_symbol) + 1


def _sequence_key(register: Register) -> dict:
    return {"office_id": register.office_id, "year": register.year,
            "type_symbol": register.type_symbol}


def _sequence_of(register: Register) -> list:
    return [getattr(RegisterSequence, name) == value
            for name, value in _sequence_key(register).items()]


def _sequence_read(session: Session, register: Register) -> int | None:
    return session.scalar(select(RegisterSequence.next_number).where(*_sequence_of(register)))


def _sequence_next(session: Session, register: Register) -> int:
    """The year's next number for this book's office and type, as committed now; the
    sequence row is made on first use (INSERT … ON CONFLICT DO NOTHING: two clerks
    making it at once both read the one row)."""
    found = _sequence_read(session, register)
    if found is not None:
        return found
    key = _sequence_key(register)
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[
        session.get_bind().dialect.name]
    session.execute(insert(RegisterSequence).values(
        **key, next_number=last_issued_number(session, **key) + 1).on_conflict_do_nothing())
    return _sequence_read(session, register)


def number_shown(session: Session, register: Register) -> int:
    """The number this book would give now (read only: what the clerk is shown)."""
    found = _sequence_read(session, register)
    if found is None:
        found = last_issued_number(session, **_sequence_key(register)) + 1
    return max(found, register.start_number)


#: What identifies a book on the copies certified from it: frozen once it has an entry.
FROZEN = {"book_number": _l("book number"), "type_symbol": _l("type symbol"),
          "year": _l("year"), "start_number": _l("start number"),
          "opening_date": _l("opening date"), "office_id": _l("office")}


def validate_register(session: Session, register: Register, *, had_entries: bool) -> None:
    """Rules for creating or editing a register; raises RegisterError.

    ``register`` may carry unsaved edits: nothing here may flush them first.
    """
    state = inspect(register)
    frozen_changes = [str(text) for name, text in FROZEN.items()
                      if state.persistent and state.attrs[name].history.has_changes()]
    with session.no_autoflush:
        _validate_register(session, register, had_entries, frozen_changes)


def _validate_register(session, register, had_entries, frozen_changes) -> None:
    if register.start_number is None or register.start_number < 1:
        raise RegisterError(_("The start number must be a whole number from 1."))
    if not register.year or not params.FIRST_YEAR <= register.year <= params.LAST_YEAR:
        raise RegisterError(_("The year is not valid."))
    if register.opening_date and register.opening_date.year != register.year:
        raise RegisterError(_("The opening date must fall in the register's year."))
    if register.closing_date and register.opening_date and \
            register.closing_date < register.opening_date:
        raise RegisterError(_("The closing date cannot be before the opening date."))
    twin = session.scalars(select(Register.id).where(
        Register.office_id == register.office_id, Register.year == register.year,
        Register.type_symbol == register.type_symbol,
        func.lower(Register.book_number) == (register.book_number or "").strip().lower(),
        Register.id != (register.id or 0))).first()
    if twin is not None:  # Circular 01/2020: one book number per office, year and symbol
        raise RegisterError(_("Book %(book)s of %(year)s (%(symbol)s) already exists in your "
                              "office: choose the next book number.",
                              book=register.book_number, year=register.year,
                              symbol=register.type_symbol))
    if had_entries and frozen_changes:
        raise RegisterError(_("Numbers were already issued from this register: its book "
                              "number, type, year, start number and opening date are printed "
                              "on certified copies and can no longer change (changed: "
                              "%(fields)s).", fields=", ".join(frozen_changes)))
    if not had_entries:
        taken = last_issued_number(session, register.office_id, register.year,
                                   register.type_symbol, exclude_id=register.id)
        if register.start_number <= taken:
            raise RegisterError(_("Numbers up to %(last)s were already issued this year: start "
                                  "at %(next)s or later.", last=taken, next=taken + 1))
        register.next_number = register.start_number


class RegisterService(RecordService):
    """Registers opened, edited and deleted through FAB (web and REST) follow the rules
    of ``validate_register`` and are audited; a register with entries is never deleted."""

    def create(self, session: Session, user: Any, item: Register) -> Register:
        item.created_by_id = getattr(user, "id", None)
        item.status = RegisterStatus.open
        item.next_number = item.start_number
        return super().create(session, user, item)

    def validate(self, session: Session, user: Any, item: Register, *, created: bool) -> None:
        if created:  # a former district division's books stay, no new one opens there
            check_takes_new_work(session.get(Office, item.office_id))
        validate_register(session, item,
                          had_entries=not created and has_entries(session, item.id))

    def check_delete(self, session: Session, user: Any, item: Register) -> None:
        check_deletable(session, item)


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
    register.total_entries = register.issued_count  # refreshed above, with the lock
    audit.record(session, user, "register_closed", obj=register,
                 from_state=RegisterStatus.open.value, to_state=RegisterStatus.closed.value,
                 reason=str(register.total_entries))
    return register


def find_entry(session: Session, office_id: int, request_key: str) -> RegisterEntry | None:
    """The entry that request already has in this office (issued or void)."""
    return session.scalars(
        select(RegisterEntry).where(RegisterEntry.office_id == office_id,
                                    RegisterEntry.request_key == request_key)
        .order_by(RegisterEntry.id.desc())
    ).first()


@dataclass(frozen=True)
class NumberOffer:
    """The number a request would take now (read without a lock)."""

    register_id: int
    number: int
    book: str  # as printed: "01/2026-SCTĐT/BS"
    entry_id: int | None = None  # the request already holds this number
    #: The year's sequence as read for this offer: ``take_number`` swaps it.
    sequence_next: int | None = None


class NumberTakenError(RegisterError):
    """Another clerk took the offered number first: ask for a new offer."""

    status = 409


def offer_number(session: Session, user: Any, register_id: int, request_key: str
                 ) -> NumberOffer:
    """What ``take_number`` would give this request: the number it already holds, else
    the register's next one.  No lock: the sealed file can be made with it first."""
    register = scoped(session, user, Register).get_or_404(register_id)
    existing = find_entry(session, register.office_id, request_key)
    if existing is not None and existing.status is EntryStatus.issued:
        return NumberOffer(existing.register_id, existing.number,
                           existing.register.book_label, existing.id)
    session.refresh(register)  # the counter as committed now, not as first loaded
    check_takes_new_work(register.office)
    today = today_vn()
    if register.status is not RegisterStatus.open:
        raise RegisterError(_("This register is closed: choose an open register."), 409)
    if today < register.opening_date or (register.closing_date and today > register.closing_date):
        raise RegisterError(_("No number can be issued outside the register's opening and "
                              "closing dates."))
    if register.year != today.year:
        raise RegisterError(_("This register belongs to %(year)s: open a register for this "
                              "year.", year=register.year))
    sequence_next = _sequence_next(session, register)
    # A book opened with a higher start (numbers issued on paper before it) starts there.
    return NumberOffer(register.id, max(sequence_next, register.start_number),
                       register.book_label, sequence_next=sequence_next)


def take_number(session: Session, user: Any, offer: NumberOffer, request_key: str,
                details: EntryDetails | None = None) -> RegisterEntry:
    """Take exactly the offered number, in the caller's unit of work.

    One compare-and-swap UPDATE moves the counter only if it still stands at the offer,
    so the number, the entry and whatever the caller made with it commit together — or
    the unit rolls back and the number is free again.  Raises ``NumberTakenError`` when
    another clerk took it first (nothing was written then)."""
    if offer.entry_id is not None:
        return session.get(RegisterEntry, offer.entry_id)
    register = session.get(Register, offer.register_id)
    taken = session.execute(
        update(RegisterSequence).where(*_sequence_of(register),
                                       RegisterSequence.next_number == offer.sequence_next)
        .values(next_number=offer.number + 1)
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise NumberTakenError(_("Another number was issued from this register at the same "
                                 "moment. Please try again."))
    still_open = session.execute(
        update(Register).where(Register.id == register.id,
                               Register.status == RegisterStatus.open)
        .values(next_number=offer.number + 1)
        .execution_options(synchronize_session=False)).rowcount
    if still_open != 1:  # closed meanwhile: the unit rolls back, the sequence too
        raise RegisterError(_("This register is closed: choose an open register."), 409)
    entry = RegisterEntry(
        office_id=register.office_id, register_id=register.id, number=offer.number,
        request_key=request_key, status=EntryStatus.issued, issued_at=utcnow(),
        issued_on=today_vn(), issued_by_id=getattr(user, "id", None),
        **(details or EntryDetails()).__dict__,
    )
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:
        # This request holds a number in another register of the office: never a second
        # one.  The caller's whole unit rolls back (the counter too): nothing half-done.
        raise RegisterError(_("This request already has a certification number in this "
                              "office."), 409) from None
    audit.record(session, user, "number_issued", obj=entry,
                 reason=f"{offer.number}/{request_key}")
    return entry


def allocate_number(session: Session, user: Any, register_id: int, request_key: str,
                    details: EntryDetails | None = None) -> RegisterEntry:
    """The next number for this request, for callers that need no file made with it
    first: the register row is locked (concurrent clerks queue here) until the caller's
    unit commits, so the offer always holds."""
    register = scoped(session, user, Register).get_or_404(register_id)
    _sequence_next(session, register)
    session.execute(update(RegisterSequence).where(*_sequence_of(register))
                    .values(next_number=RegisterSequence.next_number)  # lock, queue here
                    .execution_options(synchronize_session=False))
    return take_number(session, user, offer_number(session, user, register_id, request_key),
                       request_key, details)


@dataclass(frozen=True)
class OpenBook:
    """An open book the clerk may seal from, with the number it would give now."""

    id: int
    name: str
    book_label: str
    next_number: int


def open_registers(session: Session, user: Any) -> list[OpenBook]:
    """Open registers of the user's office valid today (the clerk's choice when sealing)."""
    today = today_vn()
    return [OpenBook(r.id, r.name, r.book_label, number_shown(session, r))
            for r in scoped(session, user, Register).all(Register.status == RegisterStatus.open)
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
