"""Who may certify, and the words the attestation says: the law as data.

Since Nghị định 280/2025/NĐ-CP (in force 01/11/2025, amending Nghị định 23/2015 art. 5)
the commune's chairman, a vice-chairman, or an official the chairman authorised or
assigned certifies.  An authorised official's decision (number, date, what it covers,
validity) is recorded on their signer profile, checked at every signature and printed.
The attestation's words follow the form in force on the day the request was received.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.timeutil import format_date
from modules.signing.models import (
    AUTHORITY_HEADINGS,
    AttestationWording,
    Authority,
    SignerProfile,
)


class AuthorityError(DomainError):
    """The leader may not certify today (nothing recorded, expired, not yet valid)."""

    status = 403


def check_authority(profile: SignerProfile, day: dt.date) -> None:
    """Refuse a signature the signer has no recorded authority for on ``day``."""
    if profile.authority is None:
        raise AuthorityError(_(
            "Your authority to certify is not recorded (chairman, vice-chairman, or an "
            "official authorised by the chairman's decision): ask your office administrator "
            "to record it on your signer profile. Nothing was signed."))
    if profile.authority is not Authority.authorised:
        return
    if not (profile.authority_decision and profile.authority_decision_date):
        raise AuthorityError(_(
            "Your authorisation to certify has no decision number and date recorded: ask "
            "your office administrator to record the chairman's decision. Nothing was "
            "signed."))
    if profile.authority_from and day < profile.authority_from:
        raise AuthorityError(_(
            "Your authorisation (decision %(decision)s) applies from %(day)s. Nothing was "
            "signed.", decision=profile.authority_decision,
            day=format_date(profile.authority_from)))
    if profile.authority_until and day > profile.authority_until:
        raise AuthorityError(_(
            "Your authorisation (decision %(decision)s) ended on %(day)s: ask your office "
            "administrator to record the new decision. Nothing was signed.",
            decision=profile.authority_decision, day=format_date(profile.authority_until)))


def check_profile(profile: SignerProfile) -> None:
    """What the office administrator records must make sense (the form's rules)."""
    if profile.user_id is None:
        return  # the seal: no personal authority
    if profile.authority is Authority.authorised and not (
            profile.authority_decision and profile.authority_decision_date):
        raise DomainError(_("An authorised official's profile needs the decision's number "
                            "and date."), 422)
    if profile.authority_from and profile.authority_until and \
            profile.authority_until < profile.authority_from:
        raise DomainError(_("The authorisation cannot end before it begins."), 422)


def authority_lines(profile: SignerProfile) -> tuple[str, str]:
    """(the heading above the title, the mandate line under the name) as printed."""
    authority = profile.authority
    heading = AUTHORITY_HEADINGS.get(authority, "") if authority else ""
    mandate = ""
    if authority is Authority.authorised and profile.authority_decision:
        mandate = f"Quyết định số {profile.authority_decision}"
        if profile.authority_decision_date:
            mandate += f" ngày {format_date(profile.authority_decision_date)}"
    return heading, mandate


@dataclass(frozen=True)
class Wording:
    sentence: str
    signer_heading: str
    signer_note: str


#: The wording used before any version is recorded (Thông tư 01/2020/TT-BTP's form).
BUILT_IN_WORDING = Wording("Chứng thực bản sao đúng với bản chính.",
                           "NGƯỜI THỰC HIỆN CHỨNG THỰC", "(Ký, ghi rõ họ tên và đóng dấu)")


def wording_on(session: Session, day: dt.date) -> Wording:
    """The attestation's words in force on ``day``."""
    found = session.scalars(select(AttestationWording).where(
        AttestationWording.effective_from <= day)
        .order_by(AttestationWording.effective_from.desc()).limit(1)).first()
    if found is None:
        return BUILT_IN_WORDING
    return Wording(found.sentence, found.signer_heading, found.signer_note)
