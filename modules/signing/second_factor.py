"""The leader's second factor for server custody: a time-based one-time code (RFC 6238,
the codes of any authenticator app) that only the leader holds.

A leader whose key the server holds (custody chosen by the system administrator) signs
only in a *signing session* opened with a code: the session lasts the working day and
ends when the leader's password changes (a reset by someone else ends it too).  The
secret is enrolled by the leader and confirmed by the system administrator — an office
administrator who resets a leader's password can neither enrol a code of their own nor
reuse an open session.  The secret is kept encrypted with the server's key; a code is
accepted once (a code seen over a shoulder cannot be replayed).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import struct
import time
from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.timeutil import VN_TZ, to_utc, utcnow
from modules.signing.models import SecondFactor

STEP_SECONDS = 30
DIGITS = 6
#: Codes one step early or late still count (clocks of phones drift).
DRIFT_STEPS = 1
ISSUER = "SaoY"
#: Wrong codes in a row before signing pauses (a million codes cannot be tried).
MAX_FAILURES = 5
PAUSE = dt.timedelta(minutes=15)


class SecondFactorError(DomainError):
    status = 403


def _fernet() -> Fernet:
    key = hashlib.sha256(b"saoy-second-factor:" +
                         str(current_app.config["SECRET_KEY"]).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    """A base32 secret of 160 bits, as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def code_at(secret: str, counter: int) -> str:
    """RFC 4226 HOTP of ``secret`` (base32) at ``counter``."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def current_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows now (tests and the README's demo use it)."""
    return code_at(secret, int((at or time.time()) // STEP_SECONDS))


def provisioning_uri(secret: str, account: str) -> str:
    label = quote(f"{ISSUER}:{account}")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={ISSUER}&digits={DIGITS}"
            f"&period={STEP_SECONDS}")


def _factor(session: Session, user: Any) -> SecondFactor | None:
    return session.scalars(select(SecondFactor).where(SecondFactor.user_id == user.id)).first()


def state(session: Session, user: Any) -> str:
    """"none", "waiting" (for the administrator's confirmation) or "confirmed"."""
    found = _factor(session, user)
    if found is None:
        return "none"
    return "confirmed" if found.confirmed_at is not None else "waiting"


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_of(factor: SecondFactor) -> str:
    try:
        return _fernet().decrypt(factor.secret.encode()).decode()
    except InvalidToken:
        raise SecondFactorError(_("The code setup of this leader is no longer readable: the "
                                  "system administrator must set it up again.")) from None


def enrol(session: Session, user: Any, code: str | None, secret: str) -> SecondFactor:
    """The leader proves the app shows the codes of ``secret``; the system administrator
    confirms it before it signs anything.  A confirmed factor is replaced only with a
    code of the current one (a password reset by someone else does not allow it)."""
    found = _factor(session, user)
    if found is not None and found.confirmed_at is not None:
        raise SecondFactorError(_("Your code is already set up. Ask the system administrator "
                                  "to reset it if you lost your phone."), 409)
    if not _matches(secret, code, last=None):
        raise SecondFactorError(_("This code does not match: type the 6 digits the app "
                                  "shows now."), 422)
    encrypted = encrypt(secret)
    if found is None:
        found = SecondFactor(user_id=user.id, secret=encrypted)
        session.add(found)
    else:
        found.secret, found.confirmed_at, found.confirmed_by_id = encrypted, None, None
    found.enrolled_at = utcnow()
    session.flush()
    audit.record(session, user, "second_factor_enrolled", obj=found,
                 office_id=getattr(user, "office_id", None))
    return found


def confirm(session: Session, admin: Any, user_id: int) -> SecondFactor:
    """The system administrator confirms a leader's enrolment (in person: it is theirs)."""
    found = session.scalars(select(SecondFactor).where(SecondFactor.user_id == user_id)).first()
    if found is None:
        raise SecondFactorError(_("This leader has not set up a code yet."), 404)
    found.confirmed_at, found.confirmed_by_id = utcnow(), admin.id
    audit.record(session, admin, "second_factor_confirmed", obj=found,
                 office_id=found.user.office_id if found.user else None)
    return found


def reset(session: Session, admin: Any, user_id: int) -> None:
    """A lost phone: the system administrator removes the factor (audited)."""
    found = session.scalars(select(SecondFactor).where(SecondFactor.user_id == user_id)).first()
    if found is not None:
        audit.record(session, admin, "second_factor_reset", obj=found,
                     office_id=found.user.office_id if found.user else None)
        session.delete(found)


def _matches(secret: str, code: str | None, last: int | None) -> int | None:
    """The counter of the step ``code`` belongs to (None: no match, or already used)."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = int(time.time() // STEP_SECONDS)
    for counter in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if (last is None or counter > last) and hmac.compare_digest(code_at(secret, counter),
                                                                     code):
            return counter
    return None


def _credentials_stamp(user: Any) -> dt.datetime | None:
    return getattr(user, "credentials_changed_at", None)


def session_open(session: Session, user: Any) -> bool:
    """Is a signing session open for this leader (opened today, same password)?"""
    found = _factor(session, user)
    return bool(found is not None and found.confirmed_at is not None and found.session_until
                and found.session_until > utcnow()
                and found.session_stamp == _credentials_stamp(user))


def _end_of_working_day(now: dt.datetime) -> dt.datetime:
    local = now.replace(tzinfo=dt.UTC).astimezone(VN_TZ)
    end = dt.datetime.combine(local.date(), dt.time(23, 59, 59), tzinfo=VN_TZ)
    return min(to_utc(end), now + dt.timedelta(hours=12))


def require(session: Session, user: Any, code: str | None) -> None:
    """Let a server-custody signature go ahead: an open session, or a code that opens one.
    Raises with a clear message when the code is missing, wrong or already used."""
    found = _factor(session, user)
    if found is None or found.confirmed_at is None:
        raise SecondFactorError(_(
            "Your key is held by the server: signing needs your own authentication code, and "
            "yours is not set up (or not confirmed by the system administrator) yet."))
    now = utcnow()
    if found.locked_until and found.locked_until > now:
        raise SecondFactorError(_("Too many wrong codes: signing is paused for a few minutes. "
                                  "Try again later with the code your app shows."), 429)
    if session_open(session, user):
        return
    if not (code or "").strip():
        raise SecondFactorError(_("Type the 6-digit authentication code from your app to "
                                  "open today's signing session (otp)."), 401)
    counter = _matches(secret_of(found), code, last=found.last_counter)
    if counter is None:
        raise SecondFactorError(_("The authentication code is wrong or was already used: "
                                  "type the one the app shows now."), wrong_code=True)
    found.failures, found.last_counter = 0, counter
    found.session_until = _end_of_working_day(now)
    found.session_stamp = _credentials_stamp(user)
    audit.record(session, user, "signing_session_opened", obj=found,
                 office_id=getattr(user, "office_id", None))


def note_failure(session: Session, user: Any) -> None:
    """A wrong code, counted in its own unit of work (the refused one is rolled back):
    after ``MAX_FAILURES`` in a row, signing pauses."""
    found = _factor(session, user)
    if found is None:
        return
    found.failures = (found.failures or 0) + 1
    if found.failures >= MAX_FAILURES:
        found.failures, found.locked_until = 0, utcnow() + PAUSE
    audit.record(session, user, "second_factor_refused", obj=found,
                 office_id=getattr(user, "office_id", None))
