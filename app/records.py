"""Generic record changes (create, change, delete one row) the one way every change goes:
validate, write, audit — in the caller's unit of work, never committing.

The FAB-facing half (``app.crud.Datamodel``) calls these services inside ``atomic()``; a
model whose rows must change only through its own workflow gets ``READ_ONLY``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.ownership import OfficeOwned
from app.params import check_values
from app.scope import staff_office_id
from app.timeutil import today_vn

_SECRET_FIELDS = {"password"}


def describe_changes(item: Any) -> str | None:
    """``field: old → new; …`` of the pending changes of ``item`` (secrets masked)."""
    state = inspect(item)
    parts = []
    for attr in state.mapper.column_attrs.keys() + state.mapper.relationships.keys():
        history = state.attrs[attr].history
        if not history.has_changes():
            continue
        if attr in _SECRET_FIELDS:
            parts.append(f"{attr}: ***")
            continue
        old = ", ".join(_plain(v) for v in history.deleted) or "∅"
        new = ", ".join(_plain(v) for v in history.added) or "∅"
        if attr in state.mapper.relationships.keys() and state.mapper.relationships[
                attr].uselist:
            old = ", ".join(_plain(v) for v in (history.unchanged + history.deleted)) or "∅"
            new = ", ".join(_plain(v) for v in (history.unchanged + history.added)) or "∅"
        parts.append(f"{attr}: {old} → {new}")
    return "; ".join(parts)[:4000] or None


def _plain(value: Any) -> str:
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        value = value.value  # enums
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


class RecordService:
    """Create, change and delete one kind of record: validate, write, audit.

    Never commits (the caller's unit of work does).  Subclasses add the rules of their
    model in ``validate`` and ``check_delete``; office-owned rows take the acting user's
    office and can never be moved to another one.
    """

    def __init__(self, event_prefix: str | None = None):
        self.event_prefix = event_prefix

    def prefix(self, item: Any) -> str:
        return self.event_prefix or type(item).__name__.lower()

    def validate(self, session: Session, user: Any, item: Any, *, created: bool) -> None:
        """Raise DomainError when ``item`` (with its unsaved edits) breaks a rule."""

    def check_delete(self, session: Session, user: Any, item: Any) -> None:
        """Raise DomainError when ``item`` may not be deleted."""

    def create(self, session: Session, user: Any, item: Any) -> Any:
        if isinstance(item, OfficeOwned):
            item.office_id = staff_office_id(user)
        check_values(item)
        with session.no_autoflush:
            self.validate(session, user, item, created=True)
        session.add(item)
        session.flush()
        audit.record(session, user, f"{self.prefix(item)}_created", obj=item,
                     reason=describe_changes(item))
        return item

    def update(self, session: Session, user: Any, item: Any) -> Any:
        state = inspect(item)
        if isinstance(item, OfficeOwned) and state.attrs.office_id.history.deleted:
            raise DomainError(_("A record cannot be moved to another office."), 403)
        changes = describe_changes(item)
        check_values(item)
        with session.no_autoflush:
            self.validate(session, user, item, created=False)
        session.flush()
        audit.record(session, user, f"{self.prefix(item)}_updated", obj=item, reason=changes)
        return item

    def delete(self, session: Session, user: Any, item: Any) -> None:
        self.check_delete(session, user, item)
        audit.record(session, user, f"{self.prefix(item)}_deleted", obj=item,
                     office_id=getattr(item, "office_id", None), reason=repr(item)[:4000])
        session.delete(item)
        session.flush()




class ReadOnlyService(RecordService):
    """For lists whose rows change only through their own services (a request through
    its workflow, an entry through numbering): FAB's generic doors write nothing."""

    def _refuse(self, *_args: Any) -> None:
        raise DomainError(_("These records are not changed here."), 403)

    create = update = delete = _refuse


READ_ONLY = ReadOnlyService()


class DatedRuleService(RecordService):
    """Rules that take effect on a date (fee rates, attestation wording): the record's date
    decides which one applies, so a version already in force is history — it is neither
    changed nor deleted, and a new one takes effect from tomorrow at the earliest."""

    def validate(self, session: Session, user: Any, item: Any, *, created: bool) -> None:
        if not created:
            self._check_not_in_force(item, inspect(item).attrs.effective_from.history
                                     .deleted or [item.effective_from])
        if item.effective_from is None or item.effective_from <= today_vn():
            raise DomainError(_("A new version takes effect from tomorrow at the earliest: "
                                "requests already received keep the version they were "
                                "received under."), 422)

    def check_delete(self, session: Session, user: Any, item: Any) -> None:
        self._check_not_in_force(item, [item.effective_from])

    def _check_not_in_force(self, item: Any, dates: list[dt.date]) -> None:
        if any(day is not None and day <= today_vn() for day in dates):
            raise DomainError(_("This version has been in force since %(day)s: it is kept as "
                                "it is. Add a new version instead.",
                                day=dates[0].strftime("%d/%m/%Y")), 409)
