"""Who owns a row: what each model declares for the scope rule (``app.scope``) to read.

A leaf: it imports nothing of the application, so every model may use it (the rule
itself, which needs the office and citizen tables, lives in ``app.scope``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship


@dataclass(frozen=True)
class Owner:
    """The columns that say whose a row is; a user sees a row when any of them is theirs.

    ``office``: the office the row belongs to (``"id"`` for the office table itself);
    staff see their office's rows, supervisors also those of the offices under theirs.
    ``citizen``: the citizen account the row is about; a citizen sees their own rows
    (``verified_citizen``: only once the account's identity is proven).
    ``user``: the person a private row belongs to (an export, an inbox message); only
    that person sees it, administrators included.
    """

    office: str | None = None
    citizen: str | None = None
    verified_citizen: bool = False
    user: str | None = None


OFFICE_ROW = Owner(office="office_id")


def owner_of(model: Any) -> Owner | None:
    """The model's declaration, or None (a table nobody scopes: reference data)."""
    return getattr(model, "__owner__", None)


class OfficeOwned:
    """Mixin for rows that belong to one office (indexed ``office_id``)."""

    __owner__ = OFFICE_ROW

    @declared_attr
    def office_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("org_office.id"), index=True, nullable=False)

    @declared_attr
    def office(cls):
        return relationship("Office", lazy="joined")
