"""The workflow engine: one way any record with a state changes state.

A module declares its procedure as a table — ``{event: Transition(...)}``, each row with
its sources, target, roles, guard and the work it does — and one ``Workflow`` applies
it.  ``apply`` checks scope (404), role (403), state and guard (409 with the allowed
events), then:

1. *prepares* the slow work with no lock held and nothing written (signing, validation);
2. *reserves* what must be unique by compare-and-swap (a register number); when another
   user took it first (``Retry``), the work is prepared again;
3. *claims* the record with a version-guarded UPDATE (a second or concurrent click finds
   the version moved and gets 409);
4. runs the row's *effect* (store the new file, notify) and records the audit event.

It never commits: the edge's unit of work commits the state, its effects, the audit
event and the messages together — or none of them.  Buttons and APIs show what
``allowed_events`` returns, so they never offer what would be refused.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask_babel import gettext as _
from sqlalchemy import update
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.labels import label
from app.scope import is_admin, role_names, scoped
from app.timeutil import utcnow

R = TypeVar("R")
E = TypeVar("E", bound=enum.Enum)

#: The actor of scheduled jobs (no-shows, reminders): not a person, sees every office,
#: may apply only the rows that name ``SYSTEM_ROLE``.
SYSTEM_ROLE = "system"


class _System:
    """The actor of scheduled jobs; never authenticated, so no door can act as it."""

    id = None
    is_authenticated = False
    roles: tuple = ()

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = _System()


class WorkflowError(DomainError):
    status = 409


class Retry(Exception):  # noqa: N818 - a signal, not an error: prepare again
    """A reservation was lost to a concurrent user: prepare again with the next one."""


@dataclass(frozen=True)
class Transition:
    """One row of a procedure: who may move a record from which states to which, why
    not now (``guard``), and what the move does."""

    sources: tuple[Any, ...]
    target: Any | None  # None: the state stays (the version moves)
    roles: frozenset[str]
    label: Any
    needs_reason: bool = False
    css: str = "btn-primary"
    #: (record, user) → why the event is refused now although the state allows it.
    guard: Callable[[Any, Any], str | None] | None = None
    #: (session, user, record, params) → prepared; slow work, no lock, nothing written.
    prepare: Callable[..., Any] | None = None
    #: (session, user, record, params, prepared) → prepared; may raise ``Retry``.
    reserve: Callable[..., Any] | None = None
    #: (session, user, record, params, prepared) → audit extras ({reason, file_sha256}).
    effect: Callable[..., Mapping[str, Any] | None] | None = None
    #: (record, params, prepared) → more columns the claim sets (a rescheduled start).
    claim: Callable[..., Mapping[str, Any]] | None = None
    audit_event: str | None = None  # default: <prefix>_<event>
    #: False: applied by the code (a hook), never offered as a button.
    offered: bool = True
    #: True: when the guard refuses, the page says why instead of hiding the button.
    explained: bool = False

    def refusal(self, record: Any, user: Any) -> str | None:
        return self.guard(record, user) if self.guard else None


@dataclass
class Workflow(Generic[R, E]):
    """A procedure (its table) over one model whose ``state`` and ``version`` columns it
    owns.  ``prefix`` names the audit events (``copy_sign``)."""

    model: type[R]
    events: type[E]
    table: Mapping[E, Transition]
    prefix: str
    state: str = "state"
    #: "This request is %(state)s: %(action)s is not possible now." (lazy text)
    wrong_state: Any = None
    attempts: int = 5
    busy_message: Callable[[], str] | None = None

    def parse_event(self, value: Any) -> E:
        try:
            return self.events(value)
        except ValueError:
            raise WorkflowError(_("Unknown action %(name)s.", name=value), 422) from None

    def get(self, session: Session, user: Any, record_id: Any) -> R:
        """The record in the actor's scope, or 404 (never 403: ids leak nothing)."""
        if user is SYSTEM:
            found = session.get(self.model, record_id)
            if found is None:
                raise WorkflowError(_("Not found."), 404)
            return found
        return scoped(session, user, self.model).get_or_404(record_id)

    def state_of(self, record: R) -> Any:
        return getattr(record, self.state)

    @staticmethod
    def may(user: Any, transition: Transition) -> bool:
        if user is SYSTEM:
            return SYSTEM_ROLE in transition.roles
        return is_admin(user) or bool(role_names(user) & transition.roles)

    def allowed_events(self, record: R, user: Any) -> list[E]:
        """Events the user may apply now — state, role and guard."""
        state = self.state_of(record)
        return [event for event, t in self.table.items()
                if t.offered and state in t.sources and self.may(user, t)
                and t.refusal(record, user) is None]

    def withheld_events(self, record: R, user: Any) -> dict[E, str]:
        """Explained events the user could do in this state but not yet — and why (the
        clerk sees "the fee is not paid" instead of a missing button)."""
        state = self.state_of(record)
        return {event: refusal for event, t in self.table.items()
                if t.explained and state in t.sources and self.may(user, t)
                and (refusal := t.refusal(record, user)) is not None}

    def check(self, record: R, user: Any, event: E, params: Any = None) -> None:
        """Would ``event`` be accepted now (role, state, guard, reason)?  Raises why not."""
        transition = self.table[event]
        if not self.may(user, transition):
            raise WorkflowError(_("Your role cannot do this: %(action)s.",
                                  action=transition.label), 403)
        state = self.state_of(record)
        allowed = [e.value for e in self.allowed_events(record, user)]
        if state not in transition.sources:
            template = str(self.wrong_state or _("This record is %(state)s: %(action)s is "
                                                 "not possible now."))
            raise WorkflowError(template % {"state": label(state), "action": transition.label},
                                allowed_events=allowed, state=state.value)
        if refusal := transition.refusal(record, user):
            raise WorkflowError(refusal, allowed_events=allowed, state=state.value)
        if transition.needs_reason and not (_reason(params) or ""):
            raise WorkflowError(_("Please give a reason."), 422)

    def _claim(self, session: Session, user: Any, record: R, transition: Transition,
               values: Mapping[str, Any]) -> None:
        """The version-guarded UPDATE: exactly one of two concurrent clicks gets the row."""
        model = self.model
        changes: dict[str, Any] = {"version": model.version + 1, **values}
        if hasattr(model, "changed_at"):
            changes["changed_at"] = utcnow()
        if hasattr(model, "changed_by_id"):
            changes["changed_by_id"] = getattr(user, "id", None)
        if transition.target is not None:
            changes[self.state] = transition.target
        claimed = session.execute(
            update(model)
            .where(model.id == record.id, model.version == record.version,
                   getattr(model, self.state) == self.state_of(record))
            .values(**changes).execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            raise WorkflowError(_("Someone else has just changed this record. Reload the "
                                  "page to see its current state."))
        session.refresh(record)

    def apply(self, session: Session, user: Any, record_id: Any, event: E | str,
              params: Any = None) -> R:
        """Apply one event in the caller's unit of work, or raise with nothing changed."""
        event = self.parse_event(event)
        transition = self.table[event]
        reason = _reason(params)
        for attempt in range(self.attempts):
            record = self.get(session, user, record_id)
            if attempt:
                session.refresh(record)
            self.check(record, user, event, params)
            previous = self.state_of(record)
            prepared = (transition.prepare(session, user, record, params)
                        if transition.prepare else None)
            if transition.reserve:
                try:
                    prepared = transition.reserve(session, user, record, params, prepared)
                except Retry:
                    continue  # prepare again with the next one
            values = dict(transition.claim(record, params, prepared)) if transition.claim \
                else {}
            if transition.needs_reason:
                values.setdefault("reason", reason)
            self._claim(session, user, record, transition, values)
            extra = (transition.effect(session, user, record, params, prepared)
                     if transition.effect else None) or {}
            audit.record(session, None if user is SYSTEM else user,
                         transition.audit_event or f"{self.prefix}_{event.value}",
                         obj=record, from_state=previous.value,
                         to_state=self.state_of(record).value,
                         reason=extra.get("reason", reason),
                         file_sha256=extra.get("file_sha256"))
            return record
        raise WorkflowError(self.busy_message() if self.busy_message else _(
            "Others are changing this at the same moment. Please try again."))


def _reason(params: Any) -> str | None:
    reason = getattr(params, "reason", None)
    return reason.strip() or None if isinstance(reason, str) else None
