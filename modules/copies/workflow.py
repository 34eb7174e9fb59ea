"""The copy-request workflow: the transition table and ``apply``, the one way a
request changes state (recording the fee and editing a draft included).

``apply`` checks office (404), role (403), state and the event's guard (409 with the
allowed events), then:

1. *prepares* the slow work with no lock held and nothing written (pyHanko signing,
   sealing with the offered register number, validation before delivery);
2. *reserves* what must be unique (the register number, by compare-and-swap; when
   another clerk took it first, the work is prepared again with the next one);
3. *claims* the request with a version-guarded UPDATE (a second or concurrent click
   finds the version moved and gets 409);
4. runs the event's *effect* (store the new file, notify) and notes the audit event.

It never commits: the edge's unit of work commits the state, the number, the file
reference, the audit event and the messages together — or none of them.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import update
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.notifications.models import Channel
from app.notifications.services import Attachment, Recipient, notify
from app.scoping import is_admin, role_names, scoped
from app.timeutil import utcnow
from modules.copies.models import CopyRequest, State
from modules.registers import services as registers
from modules.signing import pdf as signing_pdf
from modules.signing import services as signing


class Event(str, enum.Enum):
    submit = "submit"
    sign = "sign"
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
#: How often a seal is prepared again when other clerks keep taking the offered number.
ATTEMPTS = 5


def destination(request: CopyRequest) -> str | None:
    """Where the certified copy goes: "portal" (a verified account), an e-mail typed at
    intake, or nowhere yet (an unverified account without one: the copy waits)."""
    if request.citizen is not None and request.citizen.verified:
        return "portal"
    return request.requester_email or None


def _deliverable(request: CopyRequest) -> str | None:
    if request.fee and not request.fee_paid:
        return _("The fee of this request is not paid yet: mark it paid with the receipt "
                 "number first.")
    if destination(request) is None:
        return _("The requester's account is not verified: compare their identity card at "
                 "the counter (Verify the account), or enter an e-mail address for the copy.")
    return None


def _fee_due(request: CopyRequest) -> str | None:
    if request.fee_paid:
        return _("The fee of this request is already paid (receipt %(receipt)s).",
                 receipt=request.receipt_number)
    if not request.fee:
        return _("This request has no fee to pay.")
    return None


@dataclass(frozen=True)
class Transition:
    sources: tuple[State, ...]
    target: State | None  # None: the state stays (recording the fee, editing a draft)
    roles: frozenset[str]
    label: Any
    needs_reason: bool = False
    css: str = "btn-primary"
    #: Why the event is refused now although the state allows it (None: allowed).
    guard: Callable[[CopyRequest], str | None] | None = None
    audit_event: str | None = None  # default: copy_<event>

    def refusal(self, request: CopyRequest) -> str | None:
        return self.guard(request) if self.guard else None


#: The whole procedure in one table (DESIGN.md "Request workflow").
TRANSITIONS: dict[Event, Transition] = {
    Event.submit: Transition((State.draft,), State.awaiting_signature, frozenset({OFFICER}),
                             _l("Submit for signature")),
    Event.sign: Transition((State.awaiting_signature,), State.signed, frozenset({LEADER}),
                           _l("Sign digitally")),
    Event.return_: Transition((State.awaiting_signature,), State.returned,
                              frozenset({LEADER}), _l("Return"), needs_reason=True,
                              css="btn-warning"),
    Event.forward: Transition((State.signed,), State.awaiting_seal, frozenset({LEADER}),
                              _l("Forward for numbering and seal")),
    Event.seal: Transition((State.awaiting_seal,), State.sealed, frozenset({CLERK}),
                           _l("Assign number and seal")),
    Event.deliver: Transition((State.sealed,), State.delivered, frozenset({CLERK}),
                              _l("Complete and deliver the e-certified copy"), css="btn-success",
                              guard=_deliverable),
    Event.cancel: Transition((State.draft, State.returned), State.cancelled,
                             frozenset({OFFICER}), _l("Cancel request"), needs_reason=True,
                             css="btn-danger"),
    Event.resume: Transition((State.returned,), State.draft, frozenset({OFFICER}),
                             _l("Continue processing"), css="btn-default"),
    Event.pay: Transition(PAYABLE, None, frozenset({OFFICER, CLERK}), _l("Mark fee paid"),
                          css="btn-default", guard=_fee_due, audit_event="copy_fee_paid"),
    Event.edit: Transition((State.draft,), None, frozenset({OFFICER}), _l("Edit"),
                           css="btn-default", audit_event="copy_edited"),
}

#: Decree 23/2015 art. 22: grounds for refusing to certify (a return may cite one).
REFUSAL_GROUNDS = [
    _l("The original was erased, altered, or had content added or removed improperly."),
    _l("The original is damaged or worn so that its content cannot be read."),
    _l("The original is stamped secret or marked 'not to be copied'."),
    _l("The original has unlawful or immoral content."),
    _l("The original was issued or certified abroad and is not consularly legalised."),
    _l("The paper was made by the requester without an authority's confirmation and seal."),
]


class WorkflowError(DomainError):
    status = 409


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


def may(user: Any, transition: Transition) -> bool:
    return is_admin(user) or bool(role_names(user) & transition.roles)


def allowed_events(request: CopyRequest, user: Any) -> list[Event]:
    """Events the user may apply now — state, role and guard: the buttons a page shows
    and the API's ``allowed_events`` never offer what would be refused."""
    return [event for event, t in TRANSITIONS.items()
            if request.state in t.sources and may(user, t) and t.refusal(request) is None]


def get_visible(session: Session, user: Any, request_id: Any) -> CopyRequest:
    """The request in the user's offices, or 404 (never 403: ids leak nothing)."""
    return scoped(session, user, CopyRequest).get_or_404(request_id)


def parse_event(value: Any) -> Event:
    try:
        return Event(value)
    except ValueError:
        raise WorkflowError(_("Unknown action %(name)s.", name=value), 422) from None


def check(request: CopyRequest, user: Any, event: Event, params: Params | None = None) -> None:
    """Would ``event`` be accepted now (role, state, guard, reason)?  Raises why not."""
    transition = TRANSITIONS[event]
    params = params or Params()
    if not may(user, transition):
        raise WorkflowError(_("Your role cannot do this: %(action)s.",
                              action=transition.label), 403)
    allowed = [e.value for e in allowed_events(request, user)]
    if request.state not in transition.sources:
        raise WorkflowError(_("This request is %(state)s: %(action)s is not possible now.",
                              state=request.state_text, action=transition.label),
                            allowed_events=allowed, state=request.state.value)
    if refusal := transition.refusal(request):
        raise WorkflowError(refusal, allowed_events=allowed, state=request.state.value)
    if transition.needs_reason and not (params.reason or "").strip():
        raise WorkflowError(_("Please give a reason."), 422)


def _claim(session: Session, request: CopyRequest, transition: Transition,
           reason: str | None) -> None:
    """The version-guarded UPDATE: exactly one of two concurrent clicks gets the row."""
    values: dict[str, Any] = {"version": CopyRequest.version + 1, "changed_at": utcnow()}
    if transition.target is not None:
        values["state"] = transition.target
    if transition.needs_reason:
        values["reason"] = reason
    claimed = session.execute(
        update(CopyRequest)
        .where(CopyRequest.id == request.id, CopyRequest.version == request.version,
               CopyRequest.state == request.state)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        raise WorkflowError(_("Someone else has just changed this request. Reload the page "
                              "to see its current state."))
    session.refresh(request)


def apply(session: Session, user: Any, request_id: Any, event: Event | str,
          params: Params | None = None, *, run_effect: bool = True) -> CopyRequest:
    """Apply one event in the caller's unit of work, or raise with nothing changed."""
    params = params or Params()
    event = parse_event(event)
    transition = TRANSITIONS[event]
    step = STEPS.get(event, Step()) if run_effect else Step()
    reason = (params.reason or "").strip() or None
    for attempt in range(ATTEMPTS):
        request = get_visible(session, user, request_id)
        if attempt:
            session.refresh(request)
        check(request, user, event, params)
        if event is Event.sign and run_effect and signing.is_external(session, user,
                                                                      request.office_id):
            return _send_to_agent(session, user, request, params)
        previous = request.state
        prepared = step.prepare(session, user, request, params) if step.prepare else None
        if step.reserve:
            try:
                prepared = step.reserve(session, user, request, params, prepared)
            except registers.NumberTakenError:
                continue  # prepare again with the next number
        _claim(session, request, transition, reason)
        extra = (step.effect(session, user, request, params, prepared) if step.effect
                 else None) or {}
        audit.record(session, user, transition.audit_event or f"copy_{event.value}",
                     obj=request, from_state=previous.value, to_state=request.state.value,
                     reason=extra.get("reason", reason), file_sha256=extra.get("file_sha256"))
        return request
    raise WorkflowError(_("Other clerks are numbering in this register at the same moment. "
                          "Please try again."))


# --- the work each event does, through the other modules' services ----------------------

@dataclass(frozen=True)
class Step:
    prepare: Callable[..., Any] | None = None  # (session, user, request, params) -> prepared
    reserve: Callable[..., Any] | None = None  # (…, prepared) -> prepared; may retry
    effect: Callable[..., dict | None] | None = None  # (…, prepared) -> audit extras


def _send_to_agent(session: Session, user: Any, request: CopyRequest,
                   params: Params) -> CopyRequest:
    """External signer: the request waits for the agent; the hook moves it on.  One
    pending job per request: an earlier one is cancelled."""
    prepared = signing.prepare_external_signature(session, user, request.document_id,
                                                  params.placement)
    _claim(session, request, _STAY, None)  # the version moves: a concurrent Return waits
    signing.record_external_job(session, user, request.document_id, prepared)
    audit.record(session, user, "copy_sign_requested", obj=request)
    return request


_STAY = Transition((), None, frozenset(), "")  # a claim that keeps the state


def _prepare_sign(session, user, request: CopyRequest, params: Params):
    return signing.prepare_leader_signature(session, user, request.document_id,
                                            params.placement)


def _sign(session, user, request: CopyRequest, params: Params, version) -> dict:
    doc = signing.record_leader_signature(session, user, request.document_id, version)
    request.signed_by_id = user.id
    return {"file_sha256": doc.current_sha256}


def _return(session, user, request: CopyRequest, params: Params, prepared) -> None:
    signing.cancel_jobs(session, user, request.document_id, "request returned")
    request.returned_at, request.return_ground = utcnow(), params.ground or 0
    context = _context(request, reason=params.reason)
    notify(session, Recipient(user_id=request.created_by_id), "copy_returned", context,
           office_id=request.office_id, related=request, channels=(Channel.portal,))
    who = requester_contact(request)
    if who is not None:
        notify(session, who, "copy_returned", context, office_id=request.office_id,
               related=request, channels=(Channel.portal, Channel.email))


def _cancel(session, user, request: CopyRequest, params: Params, prepared) -> None:
    signing.cancel_jobs(session, user, request.document_id, "request cancelled")


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
    entry = registers.take_number(
        session, user, sealing.offer, f"copy:{request.id}",
        registers.EntryDetails(
            requester_name=request.requester_name or request.requester_email,
            requester_identity=request.requester_identity,
            document_type=request.document_type.name_vi, pages=request.pages,
            copies=request.copies, fee=request.fee,
            signer_name=request.signed_by and
            f"{request.signed_by.first_name} {request.signed_by.last_name}"))
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
    return signing.check_delivery(session, user, request.document_id)


def _deliver(session, user, request: CopyRequest, params: Params, report) -> None:
    signing.record_delivery_check(session, user, request.document_id, report)
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
               attachments=[Attachment(doc.current_sha256, f"ban-sao-{request.number}.pdf")])
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
    if params.draft is None:
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


STEPS: dict[Event, Step] = {
    Event.sign: Step(prepare=_prepare_sign, effect=_sign),
    Event.return_: Step(effect=_return),
    Event.cancel: Step(effect=_cancel),
    Event.seal: Step(prepare=_prepare_seal, reserve=_reserve_number, effect=_seal),
    Event.deliver: Step(prepare=_prepare_delivery, effect=_deliver),
    Event.pay: Step(prepare=_prepare_payment, effect=_pay),
    Event.edit: Step(prepare=_prepare_edit, effect=_edit),
}


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
    """Signing hook: a signature from the leader's agent moves its request on — only
    while the request still waits for it (else the signature is refused)."""
    request = scoped(session, user, CopyRequest).select().where(
        CopyRequest.document_id == doc.id)
    found = session.scalars(request).first()
    if found is None:
        return  # a document outside the copies workflow
    apply(session, user, found.id, Event.sign, run_effect=False)
    found.signed_by_id = user.id
