"""The scope rule: which rows a user may see.  Defined once, here, as SQL; no FAB.

``scope(user, Model)`` is the WHERE clause every door applies — FAB's lists, shows,
edits, deletes, actions and REST (through ``app.scoping``'s thin filter), the services'
lookups (``scoped(...).get_or_404``), the exports and their background worker, the
notifications, the citizens' own rows.  A model says whose its rows are with
``__owner__`` (``app.ownership``); the rule reads that and the user's roles:

* an administrator sees every office's rows;
* staff see their office's rows; a supervisor also those of every office under theirs;
* a citizen sees the rows of their own account (some only once it is verified);
* a private row (an export, an inbox item) is seen by its owner only.

Another office's row is answered with 404, never 403, so ids leak nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.orm import Session

from app.citizens.models import Citizen
from app.errors import NotFoundError
from app.offices.models import Office
from app.ownership import owner_of
from app.params import as_id

ADMIN_ROLE = "Admin"
SUPERVISOR_ROLE = "Supervisor"

T = TypeVar("T")


def role_names(user: Any) -> set[str]:
    return {role.name for role in getattr(user, "roles", None) or ()}


def is_admin(user: Any) -> bool:
    return ADMIN_ROLE in role_names(user)


def _signed_in(user: Any) -> bool:
    return user is not None and bool(getattr(user, "is_authenticated", False))


def offices_of(user: Any) -> Select | None:
    """The ids of the offices whose rows ``user`` sees, as a subquery; None: every office.

    A supervisor's offices are their own and every office under it (a recursive query:
    the hierarchy is read by the database, in the same statement)."""
    if is_admin(user):
        return None
    office_id = getattr(user, "office_id", None) if _signed_in(user) else None
    if not office_id:
        return select(Office.id).where(false())
    if SUPERVISOR_ROLE not in role_names(user):
        return select(Office.id).where(Office.id == office_id)
    tree = select(Office.id).where(Office.id == office_id).cte("scope_offices", recursive=True)
    tree = tree.union_all(select(Office.id).where(Office.parent_id == tree.c.id))
    return select(tree.c.id)


def scope(user: Any, model: Any) -> ColumnElement[bool]:
    """The rows of ``model`` that ``user`` may see, as a WHERE clause."""
    owner = owner_of(model)
    if owner is None:
        raise TypeError(f"{model.__name__} declares no __owner__: it cannot be scoped")
    if not _signed_in(user):
        return false()
    rules: list[ColumnElement[bool]] = []
    if owner.user:
        rules.append(getattr(model, owner.user) == user.id)
    if owner.office:
        offices = offices_of(user)
        if offices is None:
            return true()
        if getattr(user, "office_id", None):
            rules.append(getattr(model, owner.office).in_(offices))
    if owner.citizen and not getattr(user, "office_id", None):
        own = select(Citizen.id).where(Citizen.user_id == user.id)
        if owner.verified_citizen:
            own = own.where(Citizen.verified_at.is_not(None))
        rules.append(getattr(model, owner.citizen).in_(own))
    return or_(*rules) if rules else false()


def visible_office_ids(session: Session, user: Any) -> list[int] | None:
    """The ids of the offices ``user`` sees (None: every office), for choices and labels."""
    offices = offices_of(user)
    return None if offices is None else list(session.scalars(offices))


def staff_office_id(user: Any) -> int:
    """The office a new row takes: the acting user's own.  Never a form field."""
    office_id = getattr(user, "office_id", None)
    if not office_id:
        raise PermissionError(_l("Your account does not belong to an office."))
    return office_id


class Scoped(Generic[T]):
    """Scoped lookups for services and pages: ``scoped(s, user, M).get_or_404(pk)``."""

    def __init__(self, session: Session, user: Any, model: type[T]):
        self.session, self.user, self.model = session, user, model

    def select(self) -> Select:
        return select(self.model).where(scope(self.user, self.model))

    def get(self, pk: Any) -> T | None:
        pk = as_id(pk)
        if pk is None:
            return None
        return self.session.scalars(self.select().where(self.model.id == pk)).first()

    def get_or_404(self, pk: Any) -> T:
        """The row, or ``NotFoundError`` (the one 404 answer: page or JSON, decided once)."""
        item = self.get(pk)
        if item is None:
            raise NotFoundError()
        return item

    def all(self, *where: Any) -> list[T]:
        return list(self.session.scalars(self.select().where(*where)))

    def get_many(self, pks: Iterable[Any]) -> list[T]:
        """Each pk in scope, or 404 for the whole lot (a foreign id is never half-done)."""
        return [self.get_or_404(pk) for pk in pks]


def scoped(session: Session, user: Any, model: type[T]) -> Scoped[T]:
    return Scoped(session, user, model)
