"""Copy requests: intake, editing a draft, fees, due dates and lookups.

State changes (the fee receipt and a draft's edits included) go through
``workflow.apply``; this module creates requests, checks what a draft edit brings and
answers questions.  Nothing here commits: the edge's unit of work does.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, params, timing
from app.audit import AuditEvent
from app.citizens.services import (
    MAX_EMAIL,
    by_identity,
    identity_error,
    send_counter_code,
    verify_at_counter,
)
from app.errors import DomainError, NotFoundError
from app.offices.models import Office
from app.offices.services import check_takes_new_work, is_offered
from app.params import as_id
from app.scope import scoped, staff_office_id
from app.storage import file_store
from app.timeutil import VN_TZ, to_local, to_utc, utcnow
from modules.appointments import services as appointments
from modules.appointments import workflow as appointment_workflow
from modules.copies import workflow
from modules.copies.models import CopyRequest, FeeSchedule, State
from modules.copies.scans import ScanInfo, check_scan
from modules.signing import services as signing

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_COPIES = 100
SATURDAY = 5  # date.weekday(): Monday is 0; offices work Monday to Friday


class IntakeError(DomainError):
    """Intake data refused; the message says which field and why."""


@dataclass(frozen=True)
class Requester:
    identity_number: str | None = None
    no_account: bool = False
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    #: The officer compared the identity card presented with the account (counter check)
    #: and typed the code the requester read out (sent to the account: ``counter_code``).
    verify_identity: bool = False
    counter_code: str | None = None


@dataclass(frozen=True)
class Upload:
    stream: BinaryIO
    filename: str | None


# --- fees and time limits ----------------------------------------------------------------

@dataclass(frozen=True)
class FeeRates:
    first_pages: int
    first_page_rate: int
    later_page_rate: int
    cap_per_copy: int
    legal_basis: str = "Thông tư 226/2016/TT-BTC"


def fee_rates(session: Session | None = None, on: dt.date | None = None,
              config: Any = None) -> FeeRates:
    """The rates in force on ``on`` (the day a request was received): the latest schedule
    that had taken effect by then, else the configured rates."""
    if session is not None and on is not None:
        found = session.scalars(select(FeeSchedule).where(FeeSchedule.effective_from <= on)
                                .order_by(FeeSchedule.effective_from.desc()).limit(1)).first()
        if found is not None:
            return FeeRates(found.first_pages, found.first_page_rate, found.later_page_rate,
                            found.cap_per_copy, found.legal_basis)
    config = config or current_app.config
    return FeeRates(config["FEE_FIRST_PAGES"], config["FEE_FIRST_PAGE_RATE"],
                    config["FEE_LATER_PAGE_RATE"], config["FEE_CAP_PER_COPY"])


def fee_per_copy(pages: int, rates: FeeRates | None = None) -> int:
    """Thông tư 226/2016: 2,000 đ for each of pages 1–2, 1,000 đ from page 3, capped per copy."""
    rates = rates or fee_rates()
    first = min(pages, rates.first_pages)
    amount = first * rates.first_page_rate + max(pages - first, 0) * rates.later_page_rate
    return min(amount, rates.cap_per_copy)


def fee_for(pages: int, copies: int, rates: FeeRates | None = None) -> int:
    """The cap applies to each copy, not to the request's total."""
    return fee_per_copy(pages, rates) * copies


def _working_day(session: Session, office_id: int, day: dt.date) -> bool:
    return day.weekday() < SATURDAY and not appointments.is_closed(session, office_id, day)


def due_at(session: Session, office_id: int, received_at: dt.datetime) -> dt.datetime:
    """Same working day; the next working day when received after the cutoff (15:00)."""
    config = current_app.config
    local = to_local(received_at)
    day = local.date()
    if not _working_day(session, office_id, day) or local.hour >= config["SAME_DAY_CUTOFF_HOUR"]:
        day += dt.timedelta(days=1)
        while not _working_day(session, office_id, day):
            day += dt.timedelta(days=1)
    return to_utc(dt.datetime.combine(day, dt.time(config["RETURN_HOUR"]), tzinfo=VN_TZ))


# --- intake --------------------------------------------------------------------------------

def _checked_upload(upload: Upload) -> tuple[ScanInfo, str]:
    """Scan checks first; the file is stored only when it passes."""
    config = current_app.config
    with timing.span("scan_checks"):
        info = check_scan(upload.stream, config["MAX_UPLOAD_MB"] * 2**20,
                          config["MAX_SCAN_PAGES"])
    sha, _size = file_store().put_file(upload.stream, max_bytes=config["MAX_UPLOAD_MB"] * 2**20)
    return info, sha


def _document_type(session: Session, office_id: int, value: Any) -> int:
    type_id = as_id(value)
    if type_id is None:
        raise IntakeError(_("Choose the document type."))
    if not is_offered(session, office_id, type_id):
        raise IntakeError(_("This office does not certify this document type."))
    return type_id


def _copies(value: Any) -> int:
    copies = as_id(value or 1) or 0
    if not 1 <= copies <= MAX_COPIES:
        raise IntakeError(_("The number of copies must be between 1 and %(max)s.",
                            max=MAX_COPIES))
    return copies


def _intake_email(value: str | None, required: bool) -> str | None:
    email = (value or "").strip().lower()
    if not email and not required:
        return None
    if not EMAIL_RE.match(email) or len(email) > MAX_EMAIL:
        raise IntakeError(_("Enter the e-mail address the certified copy is sent to."))
    return email


def account_summary(session: Session, user: Any, identity_number: Any) -> dict[str, Any] | None:
    """What the intake form shows of the account of exactly this identity number: the
    name, whether it is verified and the end of its phone number (for the counter check).
    Every lookup that finds someone is audited (the caller also limits how many)."""
    office_id = staff_office_id(user)  # staff of an office only
    identity = identity_number.strip() if isinstance(identity_number, str) else ""
    if identity_error(identity):
        return None
    citizen = by_identity(session, identity)
    if citizen is None:
        return None
    audit.record(session, user, "citizen_looked_up", obj=citizen, office_id=office_id)
    return {"found": True, "name": citizen.full_name, "verified": citizen.verified,
            "phone_end": (citizen.phone or "")[-3:]}


def resolve_requester(session: Session, user: Any, requester: Requester) -> dict[str, Any]:
    """A citizen account found by identity number, or an e-mail for one without.

    Only what the officer sees and types counts for delivery: an account's own e-mail
    was typed by whoever registered it, so a copy for an unverified account goes to an
    e-mail given here, or waits until the account is verified."""
    if not requester.no_account:
        identity = (requester.identity_number or "").strip()
        if message := identity_error(identity):
            raise IntakeError(message)
        citizen = by_identity(session, identity)
        if citizen is None:
            raise IntakeError(_("No DVCQG account has this identity number. Tick 'Requester "
                                "without a DVCQG account' and enter an e-mail address."), 404)
        if requester.verify_identity:
            verify_at_counter(session, user, citizen, requester.counter_code)
        return {"citizen_id": citizen.id, "requester_name": citizen.full_name,
                "requester_identity": citizen.identity_number,
                "requester_phone": citizen.phone,
                "requester_email": _intake_email(requester.email, required=False)}
    email = _intake_email(requester.email, required=True)
    identity = (requester.identity_number or "").strip() or None
    if identity and (message := identity_error(identity)):
        raise IntakeError(message)
    return {"citizen_id": None, "requester_name": (requester.name or "").strip() or None,
            "requester_identity": identity, "requester_phone": (requester.phone or "").strip()
            or None, "requester_email": email}


def intake(session: Session, user: Any, *, upload: Upload, document_type_id: Any,
           copies: Any, requester: Requester, note: str | None = None,
           appointment_code: str | None = None) -> tuple[CopyRequest, ScanInfo]:
    """A new request in draft (the caller submits it): checks everything before storing."""
    office_id = staff_office_id(user)
    check_takes_new_work(session.get(Office, office_id))
    type_id = _document_type(session, office_id, document_type_id)
    count = _copies(copies)
    params.text(note, _("Note"), max_length=2000)  # refused before the scan is stored
    who = resolve_requester(session, user, requester)
    appointment = None
    if appointment_code:
        appointment = appointments.by_code(session, user, appointment_code)
        if appointment is None:
            raise IntakeError(_("No appointment of your office has this code."), 404)
        if not appointment.is_active:
            raise IntakeError(_("This appointment was already processed or cancelled."), 409)
    info, sha = _checked_upload(upload)
    doc = signing.create_document(session, office_id, sha,
                                  document_type=_type_name(session, type_id), pages=info.pages)
    now = utcnow()
    request = CopyRequest(
        office_id=office_id, state=State.draft, version=1, document_type_id=type_id,
        copies=count, pages=info.pages, scan_dpi=info.dpi,
        scan_filename=scan_name(upload.filename), note=params.text(note, _("Note"),
                                                                  max_length=2000),
        document_id=doc.id, received_at=now,
        fee=fee_for(info.pages, count, fee_rates(session, to_local(now).date())),
        due_at=due_at(session, office_id, now), created_by_id=user.id,
        appointment_id=appointment.id if appointment else None, **who)
    session.add(request)
    session.flush()
    audit.record(session, user, "copy_created", obj=request, to_state=State.draft.value,
                 file_sha256=sha)
    if appointment is not None:
        appointment_workflow.mark_processed(session, user, appointment)
    return request, info


def scan_name(filename: str | None) -> str | None:
    """The uploaded file's name as shown (never a path: only its last part, printable)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or None


def _type_name(session: Session, type_id: int) -> str:
    from app.offices.models import DocumentType

    return session.get(DocumentType, type_id).name_vi


def update_draft(session: Session, user: Any, request_id: Any, *, upload: Upload | None = None,
                 document_type_id: Any = None, copies: Any = None, note: str | None = None
                 ) -> tuple[CopyRequest, ScanInfo | None]:
    """Xử lý tiếp: replace the scan, change type, copies or note of a draft — checked
    here, applied by the workflow's version-guarded ``edit`` (so it cannot race a submit)."""
    request = workflow.get_visible(session, user, request_id)
    workflow.check(request, user, workflow.Event.edit)  # before a new scan is stored
    type_id = (_document_type(session, request.office_id, document_type_id)
               if document_type_id not in (None, "") else request.document_type_id)
    count = _copies(copies) if copies not in (None, "") else request.copies
    info = sha = None
    if upload is not None:
        info, sha = _checked_upload(upload)
    pages = info.pages if info else request.pages
    draft = workflow.DraftChanges(
        document_type_id=type_id, document_type_name=_type_name(session, type_id),
        copies=count, note=params.text(note, _("Note"), max_length=2000)
        if note is not None else request.note,
        fee=None if request.fee_paid else fee_for(
            pages, count, fee_rates(session, to_local(request.received_at).date())),
        scan_sha256=sha,
        pages=pages, dpi=info.dpi if info else request.scan_dpi,
        filename=scan_name(upload.filename) if upload else request.scan_filename)
    return workflow.apply(session, user, request.id, workflow.Event.edit,
                          workflow.Params(draft=draft)), info


def verify_requester(session: Session, user: Any, request_id: Any, code: Any) -> CopyRequest:
    """Counter check of a request's account: the officer saw the identity card and the
    requester read out the code sent to the account."""
    request = _with_account(session, user, request_id)
    verify_at_counter(session, user, request.citizen, code)
    return request


def send_code_for_request(session: Session, user: Any, request_id: Any) -> str:
    """The counter check's code, sent to the account of a request (see verify_requester)."""
    return send_counter_code(session, user, _with_account(session, user, request_id).citizen)


def send_code_for_identity(session: Session, user: Any, identity_number: Any) -> str:
    """The counter check's code at intake, to the account of exactly this number."""
    staff_office_id(user)
    identity = identity_number.strip() if isinstance(identity_number, str) else ""
    citizen = None if identity_error(identity) else by_identity(session, identity)
    if citizen is None:
        raise IntakeError(_("No DVCQG account has this identity number. Tick 'Requester "
                            "without a DVCQG account' and enter an e-mail address."), 404)
    return send_counter_code(session, user, citizen)


def _with_account(session: Session, user: Any, request_id: Any) -> CopyRequest:
    request = workflow.get_visible(session, user, request_id)
    if request.citizen is None:
        raise IntakeError(_("This requester has no account to verify."))
    return request


# --- lookups --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    """What a list API asks for: a state, a period of receipt (Vietnam days), a type, text."""

    state: State | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    document_type_id: int | None = None
    text: str | None = None


def _matching(q: str):
    """A whole identity number (CMND 9, MST 10/13, CCCD 12 digits) is looked up exactly
    (by its index); anything else is searched in names, identities and numbers."""
    if q.isascii() and q.isdigit() and len(q) in (9, 10, 12, 13):
        return (CopyRequest.requester_identity == q) | (CopyRequest.number == q)
    like = f"%{q}%"
    return (CopyRequest.requester_identity.like(like) | CopyRequest.requester_name.ilike(like)
            | (CopyRequest.number == q))


def search(session: Session, user: Any, ask: Search, page: int = 0) -> list[CopyRequest]:
    """The requests of the user's offices matching ``ask``, newest first, one page."""
    stmt = scoped(session, user, CopyRequest).select()
    if ask.state is not None:
        stmt = stmt.where(CopyRequest.state == ask.state)
    if ask.date_from:
        stmt = stmt.where(CopyRequest.received_at >= to_utc(
            dt.datetime.combine(ask.date_from, dt.time.min, tzinfo=VN_TZ)))
    if ask.date_to:
        stmt = stmt.where(CopyRequest.received_at < to_utc(dt.datetime.combine(
            ask.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=VN_TZ)))
    if ask.document_type_id:
        stmt = stmt.where(CopyRequest.document_type_id == ask.document_type_id)
    if ask.text:
        stmt = stmt.where(_matching(ask.text))
    # Newest first, as the lists: (office_id, received_at) serves it.
    return params.page_of(session, stmt.order_by(CopyRequest.received_at.desc(),
                                                 CopyRequest.id.desc()), page)


def history(session: Session, request: CopyRequest) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "CopyRequest", AuditEvent.object_id == request.id)
        .order_by(AuditEvent.seq)))


def citizen_requests(session: Session, user: Any) -> list[CopyRequest]:
    """A verified citizen's own requests, newest first ("Giấy tờ của tôi" shows the
    delivered ones).  An unverified account sees none (``CopyRequest.__owner__``): it
    may not be that person's."""
    if getattr(user, "office_id", None):
        return []  # staff have their lists; this is the citizen's page
    return list(session.scalars(scoped(session, user, CopyRequest).select()
                                .order_by(CopyRequest.id.desc())))


def citizen_request(session: Session, user: Any, request_id: Any) -> CopyRequest:
    """One of the citizen's own requests, or 404."""
    if getattr(user, "office_id", None):
        raise NotFoundError()
    return scoped(session, user, CopyRequest).get_or_404(request_id)
