"""Citizen self-registration and lookup.  The only code that creates citizen accounts.

A citizen's login name is their identity number.  The account stands for the
"DVCQG account" in this system; an external OpenID Connect provider (VNeID)
would create the same two rows from its claims through ``register_citizen``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app import audit
from app.citizens.models import Citizen
from app.errors import DomainError
from app.users import StaffUser
from app.vn import InvalidIdentifierError, identity_kind, normalize_phone

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class CitizenError(DomainError):
    """Registration data refused; ``field`` says which input is wrong."""


@dataclass(frozen=True)
class Registration:
    full_name: str
    identity_number: str
    phone: str
    email: str | None
    password: str


def identity_error(value: str) -> str | None:
    """A user-facing explanation of why an identity number is not valid, or None."""
    try:
        identity_kind(value)
    except InvalidIdentifierError as exc:
        if str(exc) == "province":
            return _("The first three digits of the personal identification number are not a "
                     "province code.")
        return _("The identity number must be a 12-digit personal identification number, a "
                 "9-digit old ID card number or a tax code (10 digits, or 10-3).")
    return None


def validate(data: Registration) -> dict[str, str]:
    """Field → message for every invalid field (empty when all is well)."""
    errors: dict[str, str] = {}
    name = " ".join((data.full_name or "").split())
    if len(name) < 2 or len(name) > 255 or any(ch.isdigit() for ch in name):
        errors["full_name"] = _("Enter your full name as on your identity card.")
    if message := identity_error((data.identity_number or "").strip()):
        errors["identity_number"] = message
    try:
        normalize_phone(data.phone)
    except InvalidIdentifierError:
        errors["phone"] = _("Enter a Vietnamese mobile number of 10 digits (03x, 05x, 07x, "
                            "08x, 09x); +84 is accepted.")
    if data.email and not EMAIL_RE.match(data.email.strip()):
        errors["email"] = _("The e-mail address is not valid.")
    if len(data.password or "") < MIN_PASSWORD:
        errors["password"] = _("The password must have at least %(n)s characters.",
                               n=MIN_PASSWORD)
    return errors


def _split_name(full_name: str) -> tuple[str, str]:
    """Vietnamese order: family and middle names first, the given name last."""
    parts = full_name.split()
    if len(parts) == 1:
        return parts[0], parts[0]
    return " ".join(parts[:-1]), parts[-1]


def citizen_of(session: Session, user: Any) -> Citizen | None:
    """The citizen profile of a login (None for staff and anonymous users)."""
    if user is None or not getattr(user, "id", None):
        return None
    return session.scalars(select(Citizen).where(Citizen.user_id == user.id)).first()


def by_identity(session: Session, identity_number: str) -> Citizen | None:
    return session.scalars(select(Citizen).where(
        Citizen.identity_number == (identity_number or "").strip())).first()


def register_citizen(session: Session, data: Registration, role: Any) -> Citizen:
    """Create the login (username = identity number) and the citizen profile."""
    errors = validate(data)
    if errors:
        raise CitizenError(next(iter(errors.values())), errors=errors)
    identity = data.identity_number.strip()
    email = (data.email or "").strip().lower() or None
    taken = session.scalars(select(StaffUser).where(or_(
        StaffUser.username == identity,
        func.lower(StaffUser.email) == email if email else False))).first()
    if taken is not None or by_identity(session, identity) is not None:
        field = "identity_number" if taken is None or taken.username == identity else "email"
        message = (_("An account with this identity number already exists. Sign in instead.")
                   if field == "identity_number" else
                   _("This e-mail address is already used by another account."))
        raise CitizenError(message, status=409, errors={field: message})
    full_name = " ".join(data.full_name.split())
    first, last = _split_name(full_name)
    user = StaffUser(first_name=first, last_name=last, username=identity,
                     email=email or f"{identity}@citizen.invalid", active=True,
                     password=generate_password_hash(data.password), roles=[role])
    citizen = Citizen(user=user, full_name=full_name, identity_number=identity,
                      phone=normalize_phone(data.phone), email=email)
    session.add_all([user, citizen])
    try:
        session.flush()
    except IntegrityError:  # registered concurrently: the caller's unit rolls back
        message = _("An account with this identity number already exists. Sign in instead.")
        raise CitizenError(message, status=409, errors={"identity_number": message}) from None
    audit.record(session, user, "citizen_registered", obj=citizen)
    return citizen
