"""The user model: FAB's user plus the office a staff member belongs to.

Kept apart from app.security so that models referring to users can import it
before Flask-AppBuilder's security manager configures the mappers.
"""
from __future__ import annotations

import datetime as dt

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.offices.models import Office
from app.ownership import Owner


class StaffUser(User):
    """FAB's user plus the office a staff member belongs to (none for citizens)."""

    __tablename__ = "ab_user"
    __owner__ = Owner(office="office_id")  # staff of an office; the others: Admin only

    office_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_office.id"), index=True, nullable=True
    )
    office = relationship(Office, foreign_keys=[office_id], lazy="joined")
    #: Failed logins in a row lock the account until then (per account, whatever address).
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: When the password last changed: sessions and API tokens from before are void.
    credentials_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class LoginFailure(Model):
    """Wrong passwords for one account from one address: a stranger who types five
    wrong passwords for a leader locks only their own address out of that account, with
    a delay that doubles, never the leader at their desk."""

    __tablename__ = "auth_login_failure"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
