"""Citizen accounts: self-registration, verification, lookup.  The only code that creates
or verifies citizen accounts; it never commits (the edge does).

A citizen's login name is their identity number.  A self-registered account is
*unverified*: anyone can type someone else's identity number.  It can book, but copies
reach it only once its identity is proven — the CCCD compared at the counter by an
officer, or a national identity provider (OpenID Connect, e.g. VNeID) vouching for the
identity number.  Registration never tells whether a number or e-mail has an account.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app import audit
from app.citizens.models import Citizen
from app.errors import DomainError
from app.notifications.models import Channel
from app.notifications.services import Recipient, notify
from app.passwords import password_problem
from app.timeutil import utcnow
from app.users import StaffUser
from app.vn import InvalidIdentifierError, identity_kind, normalize_phone

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME_LENGTH = (2, 255)  # a full name as on the card: at least two letters
MAX_EMAIL = 320  # RFC 5321: 64 + @ + 255
COUNTER_CODE_DIGITS = 6
COUNTER_CODE_VALIDITY = dt.timedelta(minutes=10)


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
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1] or any(ch.isdigit() for ch in name):
        errors["full_name"] = _("Enter your full name as on your identity card.")
    if message := identity_error((data.identity_number or "").strip()):
        errors["identity_number"] = message
    try:
        normalize_phone(data.phone)
    except InvalidIdentifierError:
        errors["phone"] = _("Enter a Vietnamese mobile number of 10 digits (03x, 05x, 07x, "
                            "08x, 09x); +84 is accepted.")
    if data.email and (len(data.email) > MAX_EMAIL or not EMAIL_RE.match(data.email.strip())):
        errors["email"] = _("The e-mail address is not valid.")
    if problem := password_problem(data.password, identity=data.identity_number):
        errors["password"] = problem
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


def register_citizen(session: Session, data: Registration, role: Any) -> Citizen | None:
    """Create the login (username = identity number) and the unverified citizen profile.

    An identity number or e-mail that already has an account creates nothing and returns
    None; the caller answers exactly as for a new account (nothing to enumerate)."""
    errors = validate(data)
    if errors:
        raise CitizenError(next(iter(errors.values())), errors=errors)
    identity = data.identity_number.strip()
    email = (data.email or "").strip().lower() or None
    # Hashed first, whatever follows: a taken number must cost the same time as a new one
    # (the issue measured 2.8 ms against 110 ms, which told who has an account).
    password_hash = generate_password_hash(data.password)
    taken = session.scalars(select(StaffUser.id).where(or_(
        StaffUser.username == identity,
        func.lower(StaffUser.email) == email if email else False))).first()
    if taken is not None or by_identity(session, identity) is not None:
        return None
    full_name = " ".join(data.full_name.split())
    first, last = _split_name(full_name)
    user = StaffUser(first_name=first, last_name=last, username=identity,
                     email=email or f"{identity}@citizen.invalid", active=True,
                     password=password_hash, roles=[role])
    citizen = Citizen(user=user, full_name=full_name, identity_number=identity,
                      phone=normalize_phone(data.phone), email=email)
    session.add_all([user, citizen])
    session.flush()  # a concurrent twin fails here and its unit rolls back: still no answer
    audit.record(session, user, "citizen_registered", obj=citizen)
    return citizen


def _require_officer(officer: Any) -> None:
    from app.scope import role_names

    if not getattr(officer, "office_id", None) or "Officer" not in role_names(officer):
        raise CitizenError(_("Only an officer at the counter can verify an account."), 403)


def _code_digest(citizen: Citizen, code: str) -> str:
    from flask import current_app

    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{citizen.id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_counter_code(session: Session, officer: Any, citizen: Citizen) -> str:
    """A one-time code to the account's own phone (else e-mail): the requester reads it
    out at the counter, which proves they hold the account, not only the identity card
    (someone who registered another person's number receives the code, and is not at the
    counter with that person's card).  Returns where it went, masked, for the officer."""
    _require_officer(officer)
    if citizen.verified:
        raise CitizenError(_("This account is already verified."), 409)
    if not (citizen.phone or citizen.email):
        raise CitizenError(_("The account has no phone number or e-mail to send a code to: "
                             "the requester signs in to the portal here instead."), 409)
    code = f"{secrets.randbelow(10**COUNTER_CODE_DIGITS):0{COUNTER_CODE_DIGITS}d}"
    citizen.counter_code_digest = _code_digest(citizen, code)
    citizen.counter_code_expires_at = utcnow() + COUNTER_CODE_VALIDITY
    channel = Channel.sms if citizen.phone else Channel.email
    notify(session, Recipient(phone=citizen.phone, email=citizen.email), "counter_code",
           {"code": code, "office": officer.office.name if officer.office else "",
            "minutes": int(COUNTER_CODE_VALIDITY.total_seconds() // 60)},
           office_id=officer.office_id, related=citizen, channels=(channel,))
    audit.record(session, officer, "counter_code_sent", obj=citizen,
                 office_id=officer.office_id, reason=channel.value)
    return f"…{citizen.phone[-3:]}" if citizen.phone else _masked_email(citizen.email)


def _masked_email(email: str | None) -> str:
    name, _at, domain = (email or "").partition("@")
    return f"{name[:1]}…@{domain}"


def verify_at_counter(session: Session, officer: Any, citizen: Citizen, code: Any) -> Citizen:
    """The officer compared the identity card presented with this account, and the
    requester read out the code sent to the account (audited)."""
    _require_officer(officer)
    if citizen.verified:
        return citizen
    typed = code.strip() if isinstance(code, str) else ""
    expected = citizen.counter_code_digest
    if not (typed and expected and citizen.counter_code_expires_at
            and citizen.counter_code_expires_at > utcnow()
            and hmac.compare_digest(expected, _code_digest(citizen, typed))):
        raise CitizenError(_("The code is wrong or has expired: send a code to the account "
                             "and type the one the requester reads out."), 422)
    citizen.counter_code_digest = citizen.counter_code_expires_at = None
    citizen.verified_at, citizen.verified_by_id, citizen.verified_via = (
        utcnow(), officer.id, "counter")
    audit.record(session, officer, "citizen_verified", obj=citizen,
                 office_id=officer.office_id, reason="counter")
    return citizen


def sign_in_from_provider(session: Session, claims: dict[str, Any], role: Any) -> Citizen:
    """The account the provider vouches for, verified; made from the claims if new.

    An account someone self-registered with this number is taken over: the name comes
    from the provider, and the password and contacts typed at registration (perhaps by
    an impostor) no longer open or reach it."""
    from flask import current_app

    identity = str(claims.get(current_app.config["OIDC_IDENTITY_CLAIM"]) or "").strip()
    if identity_error(identity):
        raise CitizenError(_("The identity provider gave no valid identity number."), 422)
    name = " ".join(str(claims.get("name") or identity).split())[:255]
    phone = _provider_phone(claims.get("phone_number"))
    email = (str(claims.get("email") or "").strip().lower() or None) \
        if claims.get("email_verified", True) else None
    citizen = by_identity(session, identity)
    if citizen is None:
        first, last = _split_name(name)
        user = StaffUser(first_name=first, last_name=last, username=identity,
                         email=email or f"{identity}@citizen.invalid", active=True,
                         password=generate_password_hash(secrets.token_urlsafe(32)),
                         roles=[role])
        citizen = Citizen(user=user, full_name=name, identity_number=identity, phone=phone,
                          email=email)
        session.add_all([user, citizen])
        session.flush()
        audit.record(session, user, "citizen_registered", obj=citizen, reason="oidc")
    elif not citizen.verified:
        citizen.full_name, citizen.phone, citizen.email = name, phone, email
        citizen.user.first_name, citizen.user.last_name = _split_name(name)
        citizen.user.password = generate_password_hash(secrets.token_urlsafe(32))
        citizen.user.credentials_changed_at = utcnow()  # the registrant's sessions end too
        citizen.user.email = email or f"{identity}@citizen.invalid"
    if not citizen.verified:
        citizen.verified_at, citizen.verified_via = utcnow(), "oidc"
        audit.record(session, citizen.user, "citizen_verified", obj=citizen, reason="oidc")
    return citizen


def _provider_phone(value: Any) -> str | None:
    try:
        return normalize_phone(str(value)) if value else None
    except InvalidIdentifierError:
        return None
