"""The copy-request procedure: one table, each row with its guard and the work it does,
applied by the platform's workflow engine (``app.workflow``) — the one way a request
changes state (recording the fee and editing a draft included).

The rows call the other modules only through their service functions: signing
(prepare, record), registers (offer and take a number), notifications.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, object_session

from app.notifications.models import Channel
from app.notifications.services import Attachment, Recipient, notify
from app.scope import scoped
from app.timeutil import utcnow
from app.workflow import Retry, Transition, Workflow, WorkflowError
from modules.copies.models import CopyRequest, State
from modules.registers import services as registers
from modules.signing import pdf as signing_pdf
from modules.signing import services as signing


class Event(str, enum.Enum):
    submit = "submit"
    sign = "sign"
    request_signature = "request_signature"
    signature_received = "signature_received"
    return_ = "return"
    forward = "forward"
    seal = "seal"
    deliver = "deliver"
    cancel = "cancel"
    resume = "resume"
    pay = "pay"
    edit = "edit"


OFFICER, LEADER, CLERK = "Officer", "Leader", "Clerk"
PAYABLE = (State.awaiting_signature, State.signed, State.awaiting_seal, State.sealed)

#: Decree 23/2015 art. 22: grounds for refusing to certify (a return may cite one).
REFUSAL_GROUNDS = [
    _l("The original was erased, altered, or had content added or removed improperly."),
    _l("The original is damaged or worn so that its content cannot be read."),
    _l("The original is stamped secret or marked 'not to be copied'."),
    _l("The original has unlawful or immoral content."),
    _l("The original was issued or certified abroad and is not consularly legalised."),
    _l("The paper was made by the requester without an authority's confirmation and seal."),
]


@dataclass(frozen=True)
class DraftChanges:
    """A draft's new values, checked by the copies services before the claim."""

    document_type_id: int
    document_type_name: str
    copies: int
    note: str | None
    fee: int | None  # None: unchanged (already paid)
    scan_sha256: str | None = None  # a new scan, already checked and stored
    pages: int | None = None
    dpi: int | None = None
    filename: str | None = None


@dataclass
class Params:
    """What an event may need from the user."""

    reason: str | None = None
    ground: int | None = None  # 1–6: REFUSAL_GROUNDS[ground - 1]; None: a reason of its own
    register_id: int | None = None
    seal_key_id: int | None = None  # another seal certificate of the office (seal)
    placement: signing_pdf.Placement | None = None
    receipt_number: str | None = None
    draft: DraftChanges | None = None
    #: sign with a key the server holds: the leader's one-time code (opens the day's
    #: signing session; not needed while one is open)
    otp: str | None = None
    #: sign with a key at a remote signing provider: the PIN it asks (the code: ``otp``)
    pin: str | None = None
    #: request_signature: jobs opened together, shown and approved at once by the signer
    batch: str | None = None
    #: request_signature, filled in by the event: the job the page hands to the plugin
    opened: Any = None


# --- guards: why an event is refused although the state allows it ------------------------

def destination(request: CopyRequest) -> str | None:
    """Where the certified copy goes: "portal" (a verified account), an e-mail typed at
    intake, or nowhere yet (an unverified account without one: the copy waits)."""
    if request.citizen is not None and request.citizen.verified:
        return "portal"
    return request.requester_email or None


def _deliverable(request: CopyRequest, user: Any) -> str | None:
    if request.fee and not request.fee_paid:
        return _("The fee of this request is not paid yet: mark it paid with the receipt "
                 "number first.")
    if destination(request) is None:
        return _("The requester's account is not verified: compare their identity card at "
                 "the counter (Verify the account), or enter an e-mail address for the copy.")
    return None


def _fee_due(request: CopyRequest, user: Any) -> str | None:
    if request.fee_paid:
        return _("The fee of this request is already paid (receipt %(receipt)s).",
                 receipt=request.receipt_number)
    if not request.fee:
        return _("This request has no fee to pay.")
    return None


def _signs_on_server(request: CopyRequest, user: Any) -> str | None:
    return signing.why_not_on_server(object_session(request), request.office_id, user)


def _signs_elsewhere(request: CopyRequest, user: Any) -> str | None:
    if not signing.signs_elsewhere(object_session(request), request.office_id, user):
        return _("Your key is on the server: sign directly.")
    return None


# --- the work each event does, through the other modules' services ----------------------

def _prepare_sign(session, user, request: CopyRequest, params: Params):
    return signing.prepare_leader_signature(session, user, request.document_id,
                                            params.placement, params.otp, params.pin)


def _sign(session, user, request: CopyRequest, params: Params, version) -> dict:
    doc = signing.record_leader_signature(session, user, request.document_id, version)
    request.signed_by_id = user.id
    return {"file_sha256": doc.current_sha256}


def _prepare_external(session, user, request: CopyRequest, params: Params):
    return signing.prepare_for_own_signer(session, user, request.document_id,
                                          params.placement)


def _send_to_signer(session, user, request: CopyRequest, params: Params, prepared) -> dict:
    """The request waits for the leader's own signer; ``signature_received`` moves it on
    (one pending job per request: an earlier one is cancelled)."""
    params.opened = signing.open_signing_job(session, user, request.document_id, prepared,
                                             params.batch)
    return {"file_sha256": params.opened.sha256}


def _signature_received(session, user, request: CopyRequest, params: Params, prepared) -> None:
    request.signed_by_id = user.id


def _return(session, user, request: CopyRequest, params: Params, prepared) -> None:
    """Back to the officer who received it (a new scan, or the officer refuses it): the
    officer is told which request and where it is; for the requester nothing happened
    yet, so they are not told (``_cancel`` tells them when the office refuses)."""
    signing.cancel_jobs(session, user, request.document_id, "request returned")
    request.returned_at, request.return_ground = utcnow(), params.ground or 0
    base = current_app.config["BASE_URL"].rstrip("/")
    notify(session, Recipient(user_id=request.created_by_id), "copy_returned_to_officer",
           _context(request, reason=params.reason, request_id=request.id,
                    requester=request.requester, link=f"{base}/copies/request/{request.id}"),
           office_id=request.office_id, related=request, channels=(Channel.portal,))


def _cancel(session, user, request: CopyRequest, params: Params, prepared) -> None:
    """The office refuses to certify: the requester is told why."""
    signing.cancel_jobs(session, user, request.document_id, "request cancelled")
    who = requester_contact(request)
    if who is not None:
        notify(session, who, "copy_refused", _context(request, reason=params.reason,
                                                      request_id=request.id),
               office_id=request.office_id, related=request,
               channels=(Channel.portal, Channel.email))


@dataclass(frozen=True)
class _Sealing:
    offer: registers.NumberOffer
    version: signing.NewVersion


def _prepare_seal(session, user, request: CopyRequest, params: Params) -> _Sealing:
    if not params.register_id:
        raise WorkflowError(_("Choose the register that gives the number."), 422)
    offer = registers.offer_number(session, user, params.register_id, f"copy:{request.id}")
    version = signing.prepare_seal(session, user, request.document_id, str(offer.number),
                                   offer.book, params.seal_key_id)
    return _Sealing(offer, version)


def _reserve_number(session, user, request: CopyRequest, params: Params,
                    sealing: _Sealing) -> _Sealing:
    try:
        entry = registers.take_number(
            session, user, sealing.offer, f"copy:{request.id}",
            registers.EntryDetails(
                requester_name=request.requester_name or request.requester_email,
                requester_identity=request.requester_identity,
                document_type=request.document_type.name_vi, pages=request.pages,
                copies=request.copies, fee=request.fee,
                signer_name=request.signed_by and
                f"{request.signed_by.first_name} {request.signed_by.last_name}"))
    except registers.NumberTakenError:
        raise Retry() from None
    request.register_entry_id = entry.id
    return sealing


def _seal(session, user, request: CopyRequest, params: Params, sealing: _Sealing) -> dict:
    number, book = str(sealing.offer.number), sealing.offer.book
    doc = signing.record_seal(session, user, request.document_id, sealing.version, number,
                              book)
    request.number, request.book = number, book
    request.sealed_by_id = user.id
    return {"file_sha256": doc.current_sha256, "reason": f"{number} / {book}"}


def _prepare_delivery(session, user, request: CopyRequest, params: Params):
    return signing.prepare_delivery(session, user, request.document_id)


def _deliver(session, user, request: CopyRequest, params: Params, delivery) -> None:
    signing.record_delivery(session, user, request.document_id, delivery)
    doc = request.document
    context = _context(request, number=request.number, book=request.book,
                       verify_url=signing.verify_url(doc.verify_code),
                       access_code=doc.access_code, requester=request.requester_name or "")
    target = destination(request)
    if target == "portal":
        notify(session, Recipient(user_id=request.citizen.user_id), "copy_delivered", context,
               office_id=request.office_id, related=request, channels=(Channel.portal,))
    else:
        notify(session, Recipient(email=target), "copy_delivered", context,
               office_id=request.office_id, related=request, channels=(Channel.email,),
               attachments=[Attachment(doc.current_sha256, request.file_name)])
    request.delivered_to = target
    request.delivered_at = utcnow()


def _prepare_payment(session, user, request: CopyRequest, params: Params) -> str:
    receipt = (params.receipt_number or "").strip()
    if not receipt:
        raise WorkflowError(_("Enter the receipt number."), 422)
    return receipt[:64]


def _pay(session, user, request: CopyRequest, params: Params, receipt: str) -> dict:
    request.fee_paid, request.receipt_number, request.paid_at = True, receipt, utcnow()
    return {"reason": receipt}


def _prepare_edit(session, user, request: CopyRequest, params: Params) -> DraftChanges:
    if params is None or params.draft is None:
        raise WorkflowError(_("Nothing to change."), 422)
    return params.draft


def _edit(session, user, request: CopyRequest, params: Params, draft: DraftChanges) -> dict:
    if draft.scan_sha256:
        signing.replace_scan(request.document, draft.scan_sha256, draft.pages)
        request.pages, request.scan_dpi = draft.pages, draft.dpi
        request.scan_filename = draft.filename
    if draft.document_type_id != request.document_type_id:
        request.document_type_id = draft.document_type_id
        request.document.document_type = draft.document_type_name
    request.copies, request.note = draft.copies, draft.note
    if draft.fee is not None:
        request.fee = draft.fee
    return {"file_sha256": draft.scan_sha256}


#: The whole procedure in one table (DESIGN.md "Request workflow").
TRANSITIONS: dict[Event, Transition] = {
    Event.submit: Transition((State.draft,), State.awaiting_signature, frozenset({OFFICER}),
                             _l("Submit for signature")),
    Event.sign: Transition(
        (State.awaiting_signature,), State.signed, frozenset({LEADER}), _l("Sign digitally"),
        guard=_signs_on_server, prepare=_prepare_sign, effect=_sign),
    # A leader whose key is on their own signer: the request waits for the signature.
    Event.request_signature: Transition(
        (State.awaiting_signature,), None, frozenset({LEADER}), _l("Sign digitally"),
        guard=_signs_elsewhere, prepare=_prepare_external, effect=_send_to_signer,
        audit_event="copy_sign_requested"),
    # Applied by signing's hook when that signature comes back (never a button).
    Event.signature_received: Transition(
        (State.awaiting_signature,), State.signed, frozenset({LEADER}), _l("Sign digitally"),
        guard=_signs_elsewhere, effect=_signature_received, audit_event="copy_sign",
        offered=False),
    Event.return_: Transition((State.awaiting_signature,), State.returned,
                              frozenset({LEADER}), _l("Return"), needs_reason=True,
                              css="btn-warning", effect=_return),
    Event.forward: Transition((State.signed,), State.awaiting_seal, frozenset({LEADER}),
                              _l("Forward for numbering and seal")),
    Event.seal: Transition((State.awaiting_seal,), State.sealed, frozenset({CLERK}),
                           _l("Assign number and seal"), prepare=_prepare_seal,
                           reserve=_reserve_number, effect=_seal),
    Event.deliver: Transition((State.sealed,), State.delivered, frozenset({CLERK}),
                              _l("Complete and deliver the e-certified copy"), css="btn-success",
                              guard=_deliverable, prepare=_prepare_delivery, effect=_deliver,
                              explained=True),
    Event.cancel: Transition((State.draft, State.returned), State.cancelled,
                             frozenset({OFFICER}), _l("Cancel request"), needs_reason=True,
                             css="btn-danger", effect=_cancel),
    Event.resume: Transition((State.returned,), State.draft, frozenset({OFFICER}),
                             _l("Continue processing"), css="btn-default"),
    Event.pay: Transition(PAYABLE, None, frozenset({OFFICER, CLERK}), _l("Mark fee paid"),
                          css="btn-default", guard=_fee_due, prepare=_prepare_payment,
                          effect=_pay, audit_event="copy_fee_paid"),
    Event.edit: Transition((State.draft,), None, frozenset({OFFICER}), _l("Edit"),
                           css="btn-default", prepare=_prepare_edit, effect=_edit,
                           audit_event="copy_edited"),
}

WORKFLOW = Workflow(
    CopyRequest, Event, TRANSITIONS, prefix="copy",
    wrong_state=_l("This request is %(state)s: %(action)s is not possible now."),
    busy_message=lambda: _("Other clerks are numbering in this register at the same "
                           "moment. Please try again."))
parse_event = WORKFLOW.parse_event
allowed_events = WORKFLOW.allowed_events
withheld_events = WORKFLOW.withheld_events
check = WORKFLOW.check


def apply(session: Session, user: Any, request_id: Any, event: Event | str,
          params: Params | None = None) -> CopyRequest:
    """Apply one event in the caller's unit of work, or raise with nothing changed."""
    return WORKFLOW.apply(session, user, request_id, event, params or Params())


def get_visible(session: Session, user: Any, request_id: Any) -> CopyRequest:
    """The request in the user's offices, or 404 (never 403: ids leak nothing)."""
    return scoped(session, user, CopyRequest).get_or_404(request_id)


def requester_contact(request: CopyRequest) -> Recipient | None:
    if request.citizen is not None and request.citizen.verified:
        return Recipient(user_id=request.citizen.user_id, email=request.citizen.email)
    if request.requester_email:
        return Recipient(email=request.requester_email)
    return None


def _context(request: CopyRequest, **extra: Any) -> dict[str, Any]:
    base = current_app.config["BASE_URL"].rstrip("/")
    return {"office": request.office.name, "document_type": request.document_type.name_vi,
            "link": f"{base}/mycopies/", **extra}


def on_leader_signed(session: Session, user: Any, doc) -> None:
    """Signing's hook: a signature made on the leader's own signer moves its request on —
    only while the request still waits for it (else the signature is refused)."""
    found = session.scalars(scoped(session, user, CopyRequest).select().where(
        CopyRequest.document_id == doc.id)).first()
    if found is not None:  # else a document outside the copies workflow
        apply(session, user, found.id, Event.signature_received)
