"""A citizen's profile beside their login user; identity numbers are unique."""
from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.timeutil import utcnow
from app.users import StaffUser


class Citizen(Model):
    __tablename__ = "citizen_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True, nullable=False)
    full_name: Mapped[str] = mapped_column(String(255), nullable=False)
    identity_number: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    phone: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Identity proven (the CCCD compared at the counter, or a national identity provider):
    #: only then do certified copies reach this account.
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    verified_via: Mapped[str | None] = mapped_column(String(16))  # "counter" / "oidc"
    #: The counter check's one-time code (sent to the account's phone or e-mail, read out
    #: by the requester at the counter): its digest and end of validity.
    counter_code_digest: Mapped[str | None] = mapped_column(String(64))
    counter_code_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def __repr__(self) -> str:
        return f"{self.full_name} ({self.identity_number})"
