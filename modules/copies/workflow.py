"""The copy-request workflow: the transition table and ``apply``, the one way a
request changes state.

``apply`` checks office (404), role (403) and state (409 with the allowed events),
claims the request with a version-guarded UPDATE *before* doing the work (a second
click, or a concurrent one, waits on the row and then finds the version moved),
runs the event's effect through the other modules' services (signing, registers,
notifications), writes the audit event and commits — or rolls everything back, so
a failed signature or seal leaves the request where it was and no number is used.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.notifications.models import Channel
from app.notifications.services import Attachment, Recipient, notify
from app.scoping import is_admin, role_names, scoped
from app.timeutil import utcnow
from app.transactions import atomic
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


@dataclass(frozen=True)
class Transition:
    sources: tuple[State, ...]
    target: State
    roles: frozenset[str]
    label: Any
    needs_reason: bool = False
    css: str = "btn-primary"


OFFICER, LEADER, CLERK = "Officer", "Leader", "Clerk"

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
                              _l("Complete and deliver the e-certified copy"), css="btn-success"),
    Event.cancel: Transition((State.draft, State.returned), State.cancelled,
                             frozenset({OFFICER}), _l("Cancel request"), needs_reason=True,
                             css="btn-danger"),
    Event.resume: Transition((State.returned,), State.draft, frozenset({OFFICER}),
                             _l("Continue processing"), css="btn-default"),
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


@dataclass
class Params:
    """What an event may need from the user."""

    reason: str | None = None
    register_id: int | None = None
    placement: signing_pdf.Placement | None = None
    extra: dict = field(default_factory=dict)


def may(user: Any, transition: Transition) -> bool:
    return is_admin(user) or bool(role_names(user) & transition.roles)


def allowed_events(request: CopyRequest, user: Any) -> list[Event]:
    """Events the user may apply now: the buttons a page shows."""
    return [event for event, t in TRANSITIONS.items()
            if request.state in t.sources and may(user, t)]


def get_visible(session: Session, user: Any, request_id: Any) -> CopyRequest:
    """The request in the user's offices, or 404 (never 403: ids leak nothing)."""
    found = scoped(session, user, CopyRequest).get(request_id)
    if found is None:
        raise WorkflowError(_("The page or record you asked for does not exist."), 404)
    return found


def parse_event(value: Any) -> Event:
    try:
        return Event(value)
    except ValueError:
        raise WorkflowError(_("Unknown action %(name)s.", name=value), 422) from None


def apply(session: Session, user: Any, request_id: Any, event: Event | str,
          params: Params | None = None, *, run_effect: bool = True) -> CopyRequest:
    """Apply one event; commits, or raises with nothing changed."""
    params = params or Params()
    event = parse_event(event)
    request = get_visible(session, user, request_id)
    transition = TRANSITIONS[event]
    if not may(user, transition):
        raise WorkflowError(_("Your role cannot do this: %(action)s.",
                              action=transition.label), 403)
    if request.state not in transition.sources:
        allowed = [e.value for e in allowed_events(request, user)]
        raise WorkflowError(_("This request is %(state)s: %(action)s is not possible now.",
                              state=request.state_text, action=transition.label),
                            allowed_events=allowed, state=request.state.value)
    reason = (params.reason or "").strip() or None
    if transition.needs_reason and not reason:
        raise WorkflowError(_("Please give a reason."), 422)
    if event is Event.sign and run_effect and signing.is_external(session, user,
                                                                  request.office_id):
        return _send_to_agent(session, user, request, params)
    previous = request.state
    with atomic(session):
        claimed = session.execute(
            update(CopyRequest)
            .where(CopyRequest.id == request.id, CopyRequest.version == request.version,
                   CopyRequest.state == previous)
            .values(state=transition.target, version=CopyRequest.version + 1,
                    changed_at=utcnow(), reason=reason if transition.needs_reason
                    else CopyRequest.reason)
            .execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            raise WorkflowError(_("Someone else has just changed this request. Reload the "
                                  "page to see its current state."))
        session.refresh(request)
        if run_effect:
            EFFECTS.get(event, _nothing)(session, user, request, params)
        audit.record(session, user, f"copy_{event.value}", obj=request,
                     from_state=previous.value, to_state=transition.target.value, reason=reason)
    return request


# --- effects: the work each event does, through the other modules' services ------------

def _nothing(session, user, request, params) -> None:
    return None


def _send_to_agent(session: Session, user: Any, request: CopyRequest,
                   params: Params) -> CopyRequest:
    """External signer: the request waits for the agent; the hook moves it on."""
    with atomic(session):
        signing.request_external_signature(session, user, request.document_id,
                                           params.placement)
        audit.record(session, user, "copy_sign_requested", obj=request)
    return request


def _sign(session, user, request: CopyRequest, params: Params) -> None:
    signing.sign_leader(session, user, request.document_id, params.placement)
    request.signed_by_id = user.id


def _return(session, user, request: CopyRequest, params: Params) -> None:
    context = _context(request, reason=params.reason)
    notify(session, Recipient(user_id=request.created_by_id), "copy_returned", context,
           office_id=request.office_id, related=request, channels=(Channel.portal,))
    who = requester_contact(request)
    if who is not None:
        notify(session, who, "copy_returned", context, office_id=request.office_id,
               related=request, channels=(Channel.portal, Channel.email))


def _seal(session, user, request: CopyRequest, params: Params) -> None:
    if not params.register_id:
        raise WorkflowError(_("Choose the register that gives the number."), 422)
    entry = registers.allocate_number(
        session, user, params.register_id, f"copy:{request.id}",
        registers.EntryDetails(
            requester_name=request.requester_name or request.requester_email,
            requester_identity=request.requester_identity,
            document_type=request.document_type.name_vi, pages=request.pages,
            copies=request.copies, fee=request.fee,
            signer_name=request.signed_by and
            f"{request.signed_by.first_name} {request.signed_by.last_name}"),
        commit=False)
    book = entry.register.book_label
    signing.seal(session, user, request.document_id, str(entry.number), book)
    request.register_entry_id = entry.id
    request.number, request.book = str(entry.number), book
    request.sealed_by_id = user.id


def _deliver(session, user, request: CopyRequest, params: Params) -> None:
    if request.fee and not request.fee_paid:
        raise WorkflowError(_("The fee of this request is not paid yet: mark it paid with "
                              "the receipt number first."))
    signing.delivery_gate(session, user, request.document_id)
    doc = request.document
    context = _context(request, number=request.number, book=request.book,
                       verify_url=signing.verify_url(doc.verify_code))
    if request.citizen is not None:
        notify(session, Recipient(user_id=request.citizen.user_id), "copy_delivered", context,
               office_id=request.office_id, related=request, channels=(Channel.portal,))
        request.delivered_to = "portal"
    else:
        notify(session, Recipient(email=request.requester_email), "copy_delivered", context,
               office_id=request.office_id, related=request, channels=(Channel.email,),
               attachments=[Attachment(doc.current_sha256, f"ban-sao-{request.number}.pdf")])
        request.delivered_to = request.requester_email
    request.delivered_at = utcnow()


EFFECTS: dict[Event, Callable[..., None]] = {
    Event.sign: _sign, Event.return_: _return, Event.seal: _seal, Event.deliver: _deliver,
}


def requester_contact(request: CopyRequest) -> Recipient | None:
    if request.citizen is not None:
        return Recipient(user_id=request.citizen.user_id, email=request.citizen.email)
    if request.requester_email:
        return Recipient(email=request.requester_email)
    return None


def _context(request: CopyRequest, **extra: Any) -> dict[str, Any]:
    base = current_app.config["BASE_URL"].rstrip("/")
    return {"office": request.office.name, "document_type": request.document_type.name_vi,
            "link": f"{base}/mycopies/", **extra}


def on_leader_signed(session: Session, user: Any, doc) -> None:
    """Signing hook: a signature from the leader's agent moves the request on."""
    request = session.scalars(select(CopyRequest).where(
        CopyRequest.document_id == doc.id)).first()
    if request is not None and request.state is State.awaiting_signature:
        request.signed_by_id = user.id
        session.flush()
        apply(session, user, request.id, Event.sign, run_effect=False)
