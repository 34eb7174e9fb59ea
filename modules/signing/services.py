"""Signing services: the only code that changes signed documents and signer profiles.

They do the file work and update the rows in the caller's transaction (the copies
workflow commits together with its state change, audit event and messages).  A
signing failure raises ``SigningError`` before anything is written.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import hashlib
import hmac
import io
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, url_for
from flask_babel import gettext as _
from pyhanko_certvalidator.errors import RevokedError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, object_session

from app import audit, timing
from app.errors import DomainError, NotFoundError
from app.i18n import format_instant
from app.records import RecordService
from app.scope import scoped
from app.storage import file_store
from app.timeutil import to_local, to_utc, today_vn, utcnow
from app.transactions import atomic
from modules.signing import (
    approvals,
    archive,
    authority,
    external,
    keys,
    pdf,
    remote,
    revocation,
    second_factor,
    served_pki,
)
from modules.signing.fonts import subset_font
from modules.signing.models import KeyKind, SignedDocument, SignerProfile, SigningKey, Stage
from modules.signing.signers import SignerUnavailableError, open_signer
from modules.signing.validation import ValidationReport, trust_roots, validate_pdf
from modules.signing.verification import (
    Explanation,
    Limits,
    confirm_revocation,
    explain_bounded,
    render_page,
)

log = logging.getLogger(__name__)

ROLES = {pdf.FIELD_LEADER: "leader", pdf.FIELD_SEAL: "seal"}
CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


SecondFactorError = second_factor.SecondFactorError


class SigningError(DomainError):
    """Signing could not be done; nothing was changed."""

    status = 409


class RemoteRefusalError(SigningError):
    """The remote signing provider refused or did not answer: a batch stops there (a
    wrong PIN is not tried again on every copy)."""


def _code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def fonts() -> pdf.Fonts:
    folder = Path(current_app.config["FONT_DIR"])
    cache = str(Path(current_app.config["DATA_DIR"]) / "fonts")
    return pdf.Fonts(
        regular=subset_font(str(folder / "NotoSerif-Regular.ttf"), cache),
        bold=subset_font(str(folder / "NotoSerif-Bold.ttf"), cache),
        italic=subset_font(str(folder / "NotoSerif-Italic.ttf"), cache),
    )


def warm_up() -> None:
    """What a first signature would otherwise pay (≈ 0.6 s): the Vietnamese font subsets
    (made once into the data folder) and the trust roots."""
    fonts()
    roots()


def roots():
    """Bundled Vietnamese roots + SAOY_TRUST_DIR + (demo mode) the demo root."""
    config = current_app.config
    folders = [config["BUNDLED_TRUST_DIR"]]
    if config.get("TRUST_DIR"):
        folders.append(config["TRUST_DIR"])
    demo_root = Path(config["DATA_DIR"]) / "pki" / "demo-root.pem"
    if config.get("DEMO_MODE") and demo_root.exists():
        folders.append(str(demo_root))
    return trust_roots(*folders)


def trust_anchor_names() -> list[str]:
    """The roots a verification is checked against, by name (for the report)."""
    names = []
    for cert in roots():
        subject = cert.subject.native
        names.append(subject.get("common_name") or cert.subject.human_friendly)
    return sorted(set(names))


def verify_url(code: str) -> str:
    return f"{current_app.config['BASE_URL'].rstrip('/')}/verify/{code}"


def create_document(session: Session, office_id: int, scan_sha256: str, *,
                    document_type: str | None, pages: int | None) -> SignedDocument:
    """A new document for an uploaded scan (already checked and stored)."""
    doc = SignedDocument(office_id=office_id, verify_code=_code(16), access_code=_code(8),
                         stage=Stage.scanned, scan_sha256=scan_sha256,
                         current_sha256=scan_sha256, document_type=document_type, pages=pages)
    session.add(doc)
    session.flush()
    return doc


def replace_scan(doc: SignedDocument, scan_sha256: str, pages: int | None) -> None:
    if doc.stage is not Stage.scanned:
        raise SigningError(_("This document is already signed: its scan cannot change."))
    doc.scan_sha256 = doc.current_sha256 = scan_sha256
    doc.pages = pages


def profile_for(session: Session, office_id: int, user_id: int | None) -> SignerProfile:
    profile = session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == office_id, SignerProfile.user_id.is_(user_id)
        if user_id is None else SignerProfile.user_id == user_id,
        SignerProfile.active.is_(True))).first()
    if profile is None:
        raise SigningError(_("No signing key is configured for the leader.") if user_id
                           else _("No seal key is configured for this office."))
    return profile


class SignerProfileService(RecordService):
    """A signer profile may only point at a key the system administrator bound to that
    leader (or to the seal) of that office, and at an allowed timestamp service."""

    def validate(self, session: Session, user: Any, item: SignerProfile, *,
                 created: bool) -> None:
        key = item.key or (session.get(SigningKey, item.key_id) if item.key_id else None)
        if key is not None and (key.office_id != item.office_id or key.user_id != item.user_id
                                or not key.active):
            raise SigningError(_("This key is not bound to this leader (or to the seal) of "
                                 "your office."), 422)
        if item.tsa_name and item.tsa_name not in allowed_tsas():
            raise SigningError(_("Choose one of the timestamp services the system "
                                 "administrator allows."), 422)
        item.tsa_name = item.tsa_name or None
        authority.check_profile(item)


def archive_required(config=None) -> bool:
    """Every delivered copy must be B-LTA — except in a demo that runs without a timestamp
    service (``SAOY_ARCHIVE_REQUIRED`` says otherwise either way)."""
    config = config or current_app.config
    required = config.get("ARCHIVE_REQUIRED")
    return not config.get("DEMO_MODE") if required is None else bool(required)


def archive_health() -> tuple[dict[str, Any], bool]:
    """``/health/``: can delivered copies be made long-term verifiable (a TSA configured)?"""
    configured = "default" in allowed_tsas()
    return ({"timestamp_service": "configured" if configured else "missing",
             "required": archive_required()}, configured or not archive_required())


def allowed_tsas(config=None) -> dict[str, str]:
    """The timestamp services the system administrator allows: name → URL (the default
    one, else the served demo PKI's TSA under `make demo`)."""
    config = config or current_app.config
    allowed = dict(config.get("TSA_ALLOWED") or {})
    default = config.get("TSA_URL") or (config.get("DEMO_PKI_URL") and served_pki.tsa_url(
        config["DEMO_PKI_URL"]))
    if default:
        allowed.setdefault("default", default)
    return allowed


def _timestamper(profile: SignerProfile):
    """The profile's TSA from the allowed list (else the default), never another address."""
    allowed = allowed_tsas()
    if profile.tsa_name and profile.tsa_name not in allowed:
        raise SigningError(_("The timestamp service of this signer is no longer allowed: "
                             "choose another one."), 422)
    url = allowed.get(profile.tsa_name or "default")
    if not url:
        return None  # signing time from the server clock (reported as such)
    from modules.signing.tsa import timestamper_for

    return timestamper_for(url, current_app.config["TSA_TIMEOUT"],
                           current_app.config.get("REVOCATION_CACHE_SECONDS", 300))


@functools.lru_cache(maxsize=64)
def _image(sha256: str):
    return pdf.stamp_image(file_store().read_bytes(sha256))


def _look(profile: SignerProfile, text: str) -> pdf.SignatureLook:
    return pdf.SignatureLook(_image(profile.image_sha256) if profile.image_sha256 else None,
                             text)


@dataclass(frozen=True)
class LeaderSigning:
    """How a leader signs, for the page: with the plugin on their computer, or with a key
    the server holds (then the day's signing session needs their one-time code)."""

    with_plugin: bool
    needs_code: bool
    signer_url: str
    signer_function: str
    code_ready: bool = True  # the leader's code is set up and confirmed
    #: The key is at a remote signing provider (its name): the leader types what the
    #: provider asks (PIN, code) or approves in its app; SaoY's own code is not needed.
    remote: str | None = None
    #: ... and the provider asks in its app: the request waits for the approval.
    approves_in_app: bool = False


def how_leader_signs(session: Session, office_id: int, user: Any) -> LeaderSigning:
    config = current_app.config
    plugin = signs_elsewhere(session, office_id, user)
    remote_provider = _remote_provider(session, office_id, user)
    if remote_provider:
        return LeaderSigning(False, False, config["SIGNER_URL"], config["SIGNER_FUNCTION"],
                             True, remote_provider, _approves_in_app(remote_provider))
    return LeaderSigning(plugin, not plugin and not second_factor.session_open(session, user),
                         config["SIGNER_URL"], config["SIGNER_FUNCTION"],
                         plugin or second_factor.state(session, user) == "confirmed")


def _remote_provider(session: Session, office_id: int, user: Any) -> str | None:
    try:
        key = profile_for(session, office_id, getattr(user, "id", None)).key
    except SigningError:
        return None
    return key.remote_provider if key is not None and key.kind is KeyKind.remote else None


def _approves_in_app(provider_name: str | None) -> bool:
    provider = remote.providers(current_app.config).get(provider_name or "")
    return provider is not None and provider.waits


def _signs_elsewhere(profile: SignerProfile) -> bool:
    """The signature is made away from the server and the request waits for it: the
    leader's own signer, or a remote provider that asks in its app."""
    return profile.is_agent or (profile.key is not None and profile.key.kind is KeyKind.remote
                                and _approves_in_app(profile.key.remote_provider))


def why_not_on_server(session: Session, office_id: int, user: Any) -> str | None:
    """Why this leader's signature is not made by the server now (None: it is)."""
    if not signs_elsewhere(session, office_id, user):
        return None
    if _remote_provider(session, office_id, user):
        return _("Your provider asks for each signing in its app: press Sign digitally on the "
                 "request and approve on your phone.")
    return _("You sign with the signing plugin on your own computer.")


def signs_elsewhere(session: Session, office_id: int, user: Any) -> bool:
    """Does this leader's signature come back later (own signer, approval in an app)?"""
    try:
        return _signs_elsewhere(profile_for(session, office_id, getattr(user, "id", None)))
    except SigningError:
        return False


def _attestation(doc: SignedDocument, user: Any, profile: SignerProfile) -> pdf.Attestation:
    """The words in force when the request was received (its scan: the document's
    creation), the signer's authority as the decision gives it."""
    wording = authority.wording_on(object_session(doc), to_local(doc.created_at).date())
    heading, mandate = authority.authority_lines(profile)
    return pdf.Attestation(
        office_name=doc.office.name, certifier_name=_full_name(user),
        certifier_title=profile.title or "",  # the document's text: Vietnamese, never a UI word
        date=today_vn(), verify_url=verify_url(doc.verify_code),
        verify_code=doc.verify_code, access_code=doc.access_code,
        place=doc.office.name.replace("UBND ", "").replace("Phòng Tư pháp ", ""),
        sentence=wording.sentence, signer_heading=wording.signer_heading,
        signer_note=wording.signer_note, authority_heading=heading, mandate=mandate,
        title=" — ".join(t for t in ("Bản sao điện tử chứng thực từ bản chính",
                                     doc.document_type) if t),
    )


def _full_name(user: Any) -> str:
    return f"{user.first_name} {user.last_name}".strip()


@dataclass(frozen=True)
class NewVersion:
    """A signed version made in memory, not stored yet: ``prepare_*`` make it with no lock
    and no write, ``record_*`` store it in the caller's unit of work."""

    data: io.BytesIO
    signer_name: str | None = None


def _signing_failure(exc: Exception) -> SigningError:
    from modules.signing.tsa import TIMESTAMP_ERRORS

    if isinstance(exc, pdf.PlacementError):
        return SigningError(_("The chosen area cannot hold the attestation: it must lie "
                              "inside the page and measure at least %(w)s × %(h)s points.",
                              w=pdf.BLOCK_MIN_WIDTH, h=pdf.BLOCK_MIN_HEIGHT), 422)
    if isinstance(exc, TIMESTAMP_ERRORS):
        return SigningError(_("The timestamp service does not answer: nothing was signed. "
                              "Try again in a few minutes."), 503)
    return SigningError(_("The signing key is not available: %(reason)s", reason=str(exc)))


@dataclass
class _HeldSigners:
    stack: contextlib.ExitStack
    signers: dict[tuple[int, str], Any] = field(default_factory=dict)
    #: How many signatures the batch will make (a remote key asks one authorisation).
    signatures: int = 1

    def signer(self, key: SigningKey, approval: remote.Approval | None = None):
        found = self.signers.get((key.id, key.fingerprint))
        if found is None:
            found = self.stack.enter_context(open_signer(key, current_app.config, approval,
                                                         self.signatures))
            self.signers[(key.id, key.fingerprint)] = found
        return found


_HELD: contextvars.ContextVar[_HeldSigners | None] = contextvars.ContextVar(
    "saoy_held_signers", default=None)


@contextlib.contextmanager
def one_signer_session(signatures: int = 1) -> Iterator[None]:
    """A leader's batch of ``signatures``: inside it each registered key is opened once
    (one token login, one key file read, one remote authorisation where the provider
    allows several signatures) and kept for the next signature.  Each signature still
    checks the key first (office, person, approval, validity)."""
    with contextlib.ExitStack() as stack:
        token = _HELD.set(_HeldSigners(stack, signatures=signatures))
        try:
            yield
        finally:
            _HELD.reset(token)


def seal_keys(session: Session, user: Any, office_id: int) -> list[SigningKey]:
    """The seal certificates the clerk may choose from: those the system administrator
    bound to this office's seal, usable now; the seal profile's own first."""
    profile = profile_for(session, office_id, None)
    found = []
    for key in scoped(session, user, SigningKey).all(SigningKey.office_id == office_id,
                                                      SigningKey.user_id.is_(None)):
        try:
            found.append(keys.check_usable(key, office_id, None))
        except SignerUnavailableError:
            continue
    return sorted(found, key=lambda k: (k.id != profile.key_id, k.name or ""))


def _sign_with(profile: SignerProfile, office_id: int, user_id: int | None, make,
               key: SigningKey | None = None, approval: remote.Approval | None = None):
    """Run ``make(signer, timestamper)`` with the profile's registered key (or ``key``,
    another one bound to the same signer), checked (office, person, approval, validity,
    fingerprint, and not revoked now) right before it signs; a remote key signs under
    the leader's ``approval``."""
    from modules.signing.tsa import TIMESTAMP_ERRORS

    try:
        with contextlib.ExitStack() as stack:
            with timing.span("key"):
                key = keys.check_usable(key or profile.key, office_id, user_id)
                timestamper = _timestamper(profile)
                held = _HELD.get()
                signer = held.signer(key, approval) if held is not None else \
                    stack.enter_context(open_signer(key, current_app.config, approval))
            _check_revocation(signer)
            with timing.span("signature"):
                return make(signer, timestamper)
    except remote.RemoteSigningError as exc:
        raise RemoteRefusalError(str(exc), 409) from exc
    except (pdf.PlacementError, SignerUnavailableError, *TIMESTAMP_ERRORS) as exc:
        raise _signing_failure(exc) from exc


def _check_revocation(signer: Any) -> None:
    """Revoked, expired or not yet valid: refused; a responder that does not answer: 503."""
    with timing.span("revocation"):
        revocation.check_signer(signer.signing_cert, list(signer.cert_registry or ()), roots())


def _leader_profile(session: Session, user: Any, document_id: int
                    ) -> tuple[SignedDocument, SignerProfile]:
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    if doc.stage is not Stage.scanned:
        raise SigningError(_("This document is already signed by a leader."))
    profile = profile_for(session, doc.office_id, user.id)
    authority.check_authority(profile, today_vn())
    return doc, profile


def _prepared(doc: SignedDocument, user: Any, profile: SignerProfile,
              placement: pdf.Placement | None) -> tuple[pdf.Attestation, io.BytesIO]:
    """What the leader is asked to sign, whoever holds the key (``pdf.prepare_for_signature``)."""
    attestation = _attestation(doc, user, profile)
    scan = file_store().read_bytes(doc.scan_sha256)
    try:
        with timing.span("attestation"):
            prepared = pdf.prepare_for_signature(scan, attestation, fonts(),
                                                 placement or pdf.Placement())
    except pdf.PlacementError as exc:
        raise _signing_failure(exc) from exc
    if placement is not None and placement.page is not None:  # inside the page: checked
        _check_blank(scan, placement)
    return attestation, prepared


#: Gray levels darker than this are writing; more than this share of the placed area
#: written is "not blank" (a scan's paper and speckles stay well under it).
INK_LEVEL, MAX_INK = 160, 0.01
PLACEMENT_DPI = 72  # a pixel a point: what the leader's preview measures in


def _check_blank(scan: bytes, placement: pdf.Placement) -> None:
    """The attestation block is opaque (it must stay readable over a scan), so it may be
    placed only where the page is blank: the rendered pixels under it are measured, and
    a block that would hide the original's writing is refused before anything is signed."""
    ink = pdf.ink_under(render_page(scan, placement.page + 1, PLACEMENT_DPI, seconds=20,
                                    memory_mb=current_app.config["VERIFY_MEMORY_MB"]),
                        placement.rect, PLACEMENT_DPI, INK_LEVEL)
    if ink is None or ink > MAX_INK:
        raise SigningError(_(
            "The attestation would cover the writing on page %(page)s (%(share)s%% of the "
            "chosen area is not blank). Place it where the page is blank, or leave the "
            "placement empty: the attestation then goes on a page of its own.",
            page=placement.page + 1, share="?" if ink is None else round(ink * 100)), 422)


def prepare_leader_signature(session: Session, user: Any, document_id: int,
                             placement: pdf.Placement | None = None,
                             otp: str | None = None, pin: str | None = None) -> NewVersion:
    """The leader's certification signature (PAdES, DocMDP P=2) with a key the server
    holds — only where the system administrator chose server custody for this leader, and
    only in a signing session opened with the leader's own one-time code.  In memory: slow
    work, done before any row is locked."""
    doc, profile = _leader_profile(session, user, document_id)
    if _signs_elsewhere(profile):
        raise SigningError(_("You sign with the signing plugin on your own computer."))
    try:
        key = keys.check_usable(profile.key, doc.office_id, user.id)
    except SignerUnavailableError as exc:
        raise _signing_failure(exc) from exc
    approval = None
    if key.kind is KeyKind.remote:  # the provider authorises, with what the leader typed
        approval = remote.Approval(pin=pin or None, otp=otp or None)
    elif key.server_custody_at is None:
        raise SigningError(_("Your key is on the server, but the system administrator has not "
                             "chosen server custody for you: nothing can be signed with it."),
                           403)
    else:
        with timing.span("second_factor"):
            second_factor.require(session, user, otp)
    attestation, prepared = _prepared(doc, user, profile, placement)
    signed = _sign_with(profile, doc.office_id, user.id, lambda signer, timestamper: (
        pdf.sign_as_leader(prepared, attestation, fonts(), signer,
                           _look(profile, "Ký bởi: %(signer)s\nNgày ký: %(ts)s"),
                           timestamper=timestamper)), approval=approval)
    return NewVersion(signed, attestation.certifier_name)


def prepare_for_own_signer(session: Session, user: Any, document_id: int,
                           placement: pdf.Placement | None = None
                           ) -> io.BytesIO | approvals.ForApproval:
    """What a signature made away from the server starts from (no lock, no write): the
    prepared file for the plugin on the leader's computer, or, for a provider that asks
    in its app, also the revision whose signed attributes it is asked to sign."""
    doc, profile = _leader_profile(session, user, document_id)
    if not _signs_elsewhere(profile):
        raise SigningError(_("Your key is on the server: sign directly."))
    try:
        key = keys.check_usable(profile.key, doc.office_id, user.id)
    except SignerUnavailableError as exc:
        raise _signing_failure(exc) from exc
    attestation, prepared = _prepared(doc, user, profile, placement)
    if profile.is_agent:
        return prepared
    base = prepared.getvalue()
    return approvals.ForApproval(base, pdf.prepare_external(
        io.BytesIO(base), attestation, fonts(), file_store().read_bytes(key.fingerprint),
        _look(profile, "Ký bởi: %(signer)s\nNgày ký: %(ts)s")))


def open_signing_job(session: Session, user: Any, document_id: int,
                     prepared: io.BytesIO | approvals.ForApproval,
                     batch: str | None = None) -> external.OpenedJob:
    """The request waits for the leader's own signer, or for their approval in the remote
    provider's app (the provider is asked now; its refusal changes nothing)."""
    if isinstance(prepared, approvals.ForApproval):
        try:
            return approvals.open_job(session, user, document_id, prepared, batch)
        except remote.RemoteSigningError as exc:
            raise SigningError(str(exc), 502) from None
    return external.open_job(session, user, document_id, prepared, batch)


def approval_waiting(session: Session, user: Any, document_id: int
                     ) -> approvals.Waiting | None:
    """The leader's approval in the provider's app still awaited for this document."""
    return approvals.pending_for(session, user, document_id)


def refresh_approval(session: Session, user: Any, job_id: int) -> approvals.Waiting:
    return approvals.refresh(session, user, job_id, roots())


def remote_webhook(session: Session, provider: str, body: bytes, signature: str | None
                   ) -> bool:
    return approvals.on_webhook(session, provider, body, signature, roots())


def record_leader_signature(session: Session, user: Any, document_id: int,
                            version: NewVersion) -> SignedDocument:
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    if doc.stage is not Stage.scanned:
        raise SigningError(_("This document is already signed by a leader."))
    sha, _size = file_store().put_file(version.data)
    doc.leader_sha256 = doc.current_sha256 = sha
    doc.stage = Stage.leader_signed
    doc.leader_name = version.signer_name
    doc.leader_signed_at = utcnow()
    audit.record(session, user, "document_signed", obj=doc, file_sha256=sha,
                 from_state=Stage.scanned.value, to_state=Stage.leader_signed.value)
    return doc


def prepare_seal(session: Session, user: Any, document_id: int, number: str,
                 book: str, key_id: int | None = None) -> NewVersion:
    """Fill number and book, sign the seal field with the office certificate — in memory,
    before any row is locked.  Not validated here: both signatures were just made by
    this server from stored bytes, and delivery validates the whole file once."""
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    if doc.stage is not Stage.leader_signed:
        raise SigningError(_("Only a document signed by the leader can be sealed."))
    profile = profile_for(session, doc.office_id, None)
    key = None
    if key_id is not None:  # the clerk chose another of the office's seal certificates
        key = scoped(session, user, SigningKey).get(key_id)
        if key is None or key.office_id != doc.office_id or key.user_id is not None:
            raise NotFoundError()
    signed = file_store().read_bytes(doc.current_sha256)
    sealed = _sign_with(profile, doc.office_id, None, lambda signer, timestamper: (
        pdf.seal_with_number(signed, str(number), book, fonts(), signer, _look(profile, ""),
                             timestamper=timestamper)), key=key)
    return NewVersion(sealed)


def record_seal(session: Session, user: Any, document_id: int, version: NewVersion,
                number: str, book: str) -> SignedDocument:
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    if doc.stage is not Stage.leader_signed:
        raise SigningError(_("Only a document signed by the leader can be sealed."))
    sha, _size = file_store().put_file(version.data)
    doc.current_sha256 = sha
    doc.stage = Stage.sealed
    doc.number, doc.book = str(number), book
    doc.sealed_at = utcnow()
    doc.validation = doc.valid = doc.validated_at = None  # about the previous version
    audit.record(session, user, "document_sealed", obj=doc, file_sha256=sha,
                 from_state=Stage.leader_signed.value, to_state=Stage.sealed.value,
                 reason=f"{number} / {book}")
    return doc


def roles_of(doc: SignedDocument | None) -> dict[str, str]:
    """Which field is the leader's and which the seal's (a plugin may sign in a field of
    its own)."""
    if doc is None or not doc.leader_field:
        return ROLES
    return {doc.leader_field: "leader", pdf.FIELD_SEAL: "seal"}


def validate_bytes(data: bytes, doc: SignedDocument | None = None) -> ValidationReport:
    return validate_pdf(data, roots(), roles_of(doc))


def verify_limits() -> Limits:
    config = current_app.config
    return Limits(max_revisions=config["VERIFY_MAX_REVISIONS"],
                  max_render_pages=config["VERIFY_MAX_RENDERS"],
                  seconds=config["VERIFY_SECONDS"] * 0.8, wall_seconds=config["VERIFY_SECONDS"],
                  memory_mb=config["VERIFY_MEMORY_MB"],
                  render_memory_mb=config["VERIFY_MEMORY_MB"])


def explain_bytes(data: bytes, *, previews: bool = False) -> Explanation:
    """The explained verification (every signature, every later revision, one verdict),
    within the public endpoints' budget — live revocation answers included."""
    started = time.monotonic()
    with timing.span("explanation"):
        explanation = explain_bounded(data, roots(), previews=previews, limits=verify_limits())
    return _with_live_revocation(explanation, started)


#: The jobs worker's explanations make way for requests people wait for (their child and
#: its renderers run at this lower CPU priority).
BACKGROUND_NICE = 10


@functools.lru_cache(maxsize=256)
def _explained(sha: str, previews: bool, _roots) -> Explanation:
    """Kept in this process, and in the data folder for every other one: the first QR
    scan of a copy cost 0.5–0.7 s in each server process (its own verification child)."""
    return _kept_or_explained(sha, previews, _roots)


def _kept_or_explained(sha: str, previews: bool, anchors, nice: int = 0) -> Explanation:
    path = _kept_path(sha, previews, anchors)
    kept = _read_kept(path)
    if kept is not None:
        return kept
    data = file_store().read_bytes(sha)
    with timing.span("explanation"):
        explanation = explain_bounded(data, anchors, previews=previews,
                                      limits=verify_limits(), nice=nice)
    if not (explanation.error or "").startswith("too_complex"):  # a busy moment is not kept
        _keep(path, explanation)
    return explanation


def _kept_path(sha: str, previews: bool, anchors) -> Path:
    trust = hashlib.sha256(b"".join(sorted(c.dump() for c in anchors))).hexdigest()[:16]
    return Path(current_app.config["DATA_DIR"]) / "explained" / sha[:2] / \
        f"{sha}-{int(previews)}-{trust}.json"


def _read_kept(path: Path) -> Explanation | None:
    """A kept explanation younger than VERIFY_KEEP_HOURS (what time changes — a
    certificate expiring, revoked — is asked again then; revocation is confirmed live on
    every answer anyway)."""
    try:
        age = time.time() - path.stat().st_mtime
        if age > current_app.config["VERIFY_KEEP_HOURS"] * 3600:
            return None
        return Explanation.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):  # absent, or unreadable: made again
        return None


def _keep(path: Path, explanation: Explanation) -> None:
    """Written whole and renamed: a reader never sees half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        partial.write_text(explanation.to_json(), encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # a full or read-only disk costs time, never an answer
        log.warning("explanation not kept: %r", exc)


def warm_explanations(session: Session, limit: int = 10) -> int:
    """Explain the copies delivered lately (their delivery validated them) that no process
    has explained yet, so the first person scanning a QR code does not wait for it (the
    jobs worker runs this)."""
    since = utcnow() - dt.timedelta(hours=current_app.config["VERIFY_KEEP_HOURS"])
    anchors = roots()
    made = 0
    for sha in session.scalars(select(SignedDocument.current_sha256).where(
            SignedDocument.stage == Stage.sealed, SignedDocument.validated_at >= since)
            .order_by(SignedDocument.id.desc()).limit(200)):  # the newest copies first
        if made >= limit:
            break
        if _read_kept(_kept_path(sha, False, anchors)) is None:
            _kept_or_explained(sha, False, anchors, nice=BACKGROUND_NICE)
            made += 1
    return made


def explain_document(doc: SignedDocument, *, previews: bool = False) -> Explanation:
    """One of our copies, explained once per version and kept (a QR scan costs nothing
    the second time).  A copy is returned, so callers may adjust its verdict."""
    import copy

    started = time.monotonic()
    explanation = copy.deepcopy(_explained(doc.current_sha256, previews, roots()))
    return _with_live_revocation(explanation, started)


def _with_live_revocation(explanation: Explanation, started: float) -> Explanation:
    """What the file could not answer about revocation, asked of the responders with the
    time the verification has left (never more than one responder's timeout)."""
    left = current_app.config["VERIFY_SECONDS"] - (time.monotonic() - started)
    with timing.span("revocation"):
        confirm_revocation(explanation, roots(),
                           min(left, current_app.config["REVOCATION_SECONDS"]))
    return explanation


def page_png(doc: SignedDocument, page: int, dpi: int = 50) -> bytes | None:
    """A page of the current file as PNG (the leader places the attestation on it):
    rendered once per version, with a time and memory limit, then kept."""
    if not 1 <= page <= (doc.pages or 1) + 1:
        return None
    cache = Path(current_app.config["DATA_DIR"]) / "previews" / doc.current_sha256[:2] / \
        f"{doc.current_sha256}-{page}-{dpi}.png"
    if cache.exists():
        return cache.read_bytes()
    image = render_page(file_store().path(doc.current_sha256), page, dpi, gray=False,
                        seconds=15, memory_mb=768)
    if image is None:
        return None
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(cache)
    return out.getvalue()


def record_validation(doc: SignedDocument, report: ValidationReport) -> None:
    doc.validation = report.to_dict()
    doc.valid = report.valid
    doc.validated_at = utcnow()


def check_delivery(session: Session, user: Any, document_id: int) -> ValidationReport:
    """Validate the current file now; refuse delivery unless both signatures are good.
    Reads only: the result is recorded by ``record_delivery``."""
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    if doc.stage is not Stage.sealed:
        raise SigningError(_("The copy is not sealed yet."))
    data = file_store().read_bytes(doc.current_sha256)
    with timing.span("validation"):
        report = validate_bytes(data, doc)
    roles = {s.role for s in report.signatures if s.intact and s.trusted}
    if not report.valid or not {"leader", "seal"} <= roles:
        raise SigningError(_("Delivery refused: the signatures of this copy do not validate."))
    if unbound_signatures(session, doc.office_id, report):
        raise SigningError(_("Delivery refused: a signature of this copy was made with a key "
                             "that is not registered for this office's leader or seal."))
    return report


def unbound_signatures(session: Session, office_id: int, report: ValidationReport) -> list[str]:
    """Fields whose signer's certificate is not the one registered for that role in this
    office (a leader of *this* office, the seal of *this* office)."""
    bound = keys.bound_purposes(session, office_id,
                                {s.fingerprint for s in report.signatures if s.fingerprint})
    return [s.field for s in report.signatures
            if s.role in ("leader", "seal") and bound.get(s.fingerprint) != s.role]


@dataclass(frozen=True)
class Delivery:
    """What delivery found (the validation) and made (the B-LTA copy; only a demo without
    a timestamp service delivers the copy as it was signed)."""

    report: ValidationReport
    archived: NewVersion | None


def prepare_delivery(session: Session, user: Any, document_id: int) -> Delivery:
    """Validate, then make the copy long-term verifiable (``archive.make_lta``: /DSS with
    every chain's revocation answers, then a document timestamp) — before any row is
    locked.  A revoked certificate refuses; a silent responder or TSA is a 503."""
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    timestamper = _timestamper(profile_for(session, doc.office_id, None))
    if timestamper is None and archive_required():
        raise SigningError(_("No timestamp service is configured, so this copy cannot be "
                             "made verifiable for the long term (PAdES B-LTA) and was not "
                             "delivered. The system administrator sets SAOY_TSA_URL."), 503)
    report = check_delivery(session, user, document_id)
    if timestamper is None:
        return Delivery(report, None)
    data = _archived(lambda: archive.make_lta(read_current(doc), roots(), timestamper))
    return Delivery(report, NewVersion(io.BytesIO(data)))


def _archived(make) -> bytes:
    """``make()`` (archive.make_lta or renew), its failures said plainly: a silent TSA or
    responder 503, a certificate revoked since it signed 409, a chain that cannot be
    validated here (an untrusted TSA) 503."""
    from modules.signing.tsa import TIMESTAMP_ERRORS

    try:
        with timing.span("archive"):
            return make()
    except TIMESTAMP_ERRORS as exc:
        raise _signing_failure(exc) from exc
    except RevokedError as exc:
        raise SigningError(_("Delivery refused: a certificate of this copy was revoked on "
                             "%(when)s, after it signed. The copy must be signed again.",
                             when=format_instant(exc.revocation_dt.isoformat())), 409) from None
    except archive.ARCHIVE_ERRORS as exc:
        log.warning("long-term archive failed: %r", exc)
        raise SigningError(_("The long-term archive of this copy (revocation answers and "
                             "an archive timestamp) could not be made, so it was not "
                             "delivered. The system administrator checks the timestamp "
                             "service and its certificate."), 503) from None


def record_delivery(session: Session, user: Any, document_id: int, delivery: Delivery) -> None:
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    record_validation(doc, delivery.report)
    if delivery.archived is not None:
        _store_archive(session, user, doc, delivery.archived, "document_archived")


def _store_archive(session: Session, user: Any, doc: SignedDocument, version: NewVersion,
                   event: str) -> None:
    data = version.data.getvalue()
    sha, _size = file_store().put_file(version.data)
    doc.current_sha256 = sha
    with timing.span("archive_expiry"):
        doc.archive_until = archive.stamp_expiry(data)
    audit.record(session, user, event, obj=doc, file_sha256=sha,
                 reason=f"PAdES B-LTA, next renewal before {doc.archive_until:%Y-%m-%d}"
                 if doc.archive_until else "PAdES B-LTA")


def archives_due(session: Session, margin: dt.timedelta, limit: int = 100) -> list[int]:
    """Delivered copies whose archive timestamp nears the end of its certificate, and
    sealed copies validated at delivery before B-LTA existed (never archived)."""
    soon = utcnow() + margin
    return list(session.scalars(
        select(SignedDocument.id).where(
            SignedDocument.stage == Stage.sealed, SignedDocument.valid.is_(True),
            or_(SignedDocument.archive_until <= soon, SignedDocument.archive_until.is_(None)))
        .order_by(SignedDocument.archive_until.is_(None), SignedDocument.archive_until,
                  SignedDocument.id).limit(limit)))


def renew_archive(session: Session, document_id: int) -> bool:
    """One copy stamped again (or made B-LTA, for a copy delivered before): the job's and
    the command's step, one unit of work each.  False when no timestamp service serves
    the office (nothing to do yet)."""
    doc = session.get(SignedDocument, document_id)
    timestamper = _timestamper(profile_for(session, doc.office_id, None))
    if timestamper is None:
        return False
    data = read_current(doc)
    renewed = _archived(lambda: archive.renew(data, roots(), timestamper) if doc.archive_until
                        else archive.make_lta(data, roots(), timestamper))
    _store_archive(session, None, doc, NewVersion(io.BytesIO(renewed)),
                   "document_archive_renewed" if doc.archive_until else "document_archived")
    return True


def document_by_code(session: Session, code: str) -> SignedDocument | None:
    if not code or len(code) > SignedDocument.verify_code.type.length:
        return None
    return session.scalars(select(SignedDocument).where(
        SignedDocument.verify_code == code)).first()


def document_by_printout(session: Session, number: str, day: dt.date,
                         access_code: str) -> SignedDocument | None:
    """The sealed copy a paper printout shows (Austria's model): its certification number,
    the day it was certified (in Vietnam) and the access code printed under them — all
    three must match; which of them did not is not said."""
    number, access_code = (number or "").strip()[:32], (access_code or "").strip()[:32]
    if not (number and access_code):
        return None
    start = to_utc(dt.datetime.combine(day, dt.time.min))
    found = session.scalars(select(SignedDocument).where(
        SignedDocument.number == number, SignedDocument.stage == Stage.sealed,
        SignedDocument.sealed_at >= start,
        SignedDocument.sealed_at < start + dt.timedelta(days=1)))
    return next((doc for doc in found if hmac.compare_digest(
        doc.access_code.encode(), access_code.encode())), None)


def document_by_sha(session: Session, sha: str) -> SignedDocument | None:
    return session.scalars(select(SignedDocument).where(
        SignedDocument.current_sha256 == sha)).first()


def read_current(doc: SignedDocument) -> bytes:
    return file_store().read_bytes(doc.current_sha256)


def pdf_stream(doc: SignedDocument) -> io.BufferedReader:
    return file_store().open(doc.current_sha256)


# --- the leader's own signer ------------------------------------------------------------

@contextlib.contextmanager
def counting_wrong_codes(session: Session, user: Any) -> Iterator[None]:
    """Around an edge's unit of work: a wrong one-time code is counted in a unit of its own
    (the refused unit rolls back), so that wrong codes in a row pause signing."""
    try:
        yield
    except second_factor.SecondFactorError as exc:
        if exc.details.get("wrong_code"):
            with atomic(session):
                second_factor.note_failure(session, user)
        raise


def job_json(opened: external.OpenedJob, request_id: int) -> dict[str, Any]:
    """What the page hands to the plugin: the one-time links (absolute, at the address the
    leader's browser uses: the plugin is on the same computer), the file's SHA-256.  For
    an approval in the provider's app: where to ask what became of it."""
    if opened.remote:
        return {"job_id": opened.job_id, "request_id": request_id, "sha256": opened.sha256,
                "remote": opened.remote, "expires_at": opened.expires_at.isoformat() + "Z",
                "status_url": url_for("RemoteCredentialView.job", job_id=opened.job_id,
                                      _external=True)}
    return {"job_id": opened.job_id, "request_id": request_id, "sha256": opened.sha256,
            "field": opened.field, "doc_number": f"Hồ sơ #{request_id}",
            "expires_at": opened.expires_at.isoformat() + "Z",
            "download_url": url_for("SignerFilesView.file", token=opened.download_token,
                                    _external=True),
            "upload_url": url_for("SignerFilesView.upload", token=opened.upload_token,
                                  _external=True)}


def register_agent_certificate(session: Session, user: Any, cert_der: bytes):
    """The leader's plugin tells SaoY the token's certificate; the key stays on the token,
    and the certificate signs nothing until the system administrator approves it."""
    return keys.announce_agent_key(session, user, cert_der)


def cancel_jobs(session: Session, user: Any, document_id: int, why: str) -> int:
    return external.cancel_jobs(session, user, document_id, why)


def prepared_for_download(session: Session, token: str) -> bytes:
    return external.prepared_file(session, token)


def accept_signed_upload(session: Session, token: str, data: bytes) -> SignedDocument:
    """The plugin's upload: taken only if it is the prepared file plus exactly the
    leader's one signature (``external.check_one_more_signature``)."""
    job = external.job_for_upload(session, token)
    try:
        with timing.span("acceptance"):
            return external.accept_upload(session, job, data, roots())
    except (external.RefusedSignatureError, SignerUnavailableError) as exc:
        raise SigningError(str(exc), 422, job_id=job.id) from None


def record_refused_upload(session: Session, token: str, why: str) -> None:
    try:
        external.record_refusal(session, external.job_for_upload(session, token), why)
    except NotFoundError:
        pass


MAX_IMAGE_BYTES = 2 * 1024 * 1024


def set_signer_image(session: Session, user: Any, profile_id: int, png: bytes) -> SignerProfile:
    """OfficeAdmin uploads the leader's blue signature or the office's red seal:
    a transparent PNG (with an alpha channel), at most 2 MB."""
    from PIL import Image, UnidentifiedImageError

    profile = scoped(session, user, SignerProfile).get_or_404(profile_id)
    if len(png) > MAX_IMAGE_BYTES:
        raise SigningError(_("The image is larger than 2 MB."), 422)
    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise SigningError(_("The file is not an image."), 422) from exc
    if image.format != "PNG" or "A" not in image.getbands():
        raise SigningError(_("Upload a PNG with a transparent background."), 422)
    profile.image_sha256 = file_store().put_bytes(png)
    audit.record(session, user, "signer_image_uploaded", obj=profile,
                 file_sha256=profile.image_sha256)
    return profile


def file_refs(session: Session, prefix: str) -> set[str]:
    """Every file-store hash starting with ``prefix`` that signing's rows refer to: each
    version of each document, signature images, prepared files of agent jobs, the
    certificates of registered keys."""
    from modules.signing.models import ExternalSigningJob

    columns = (SignedDocument.scan_sha256, SignedDocument.leader_sha256,
               SignedDocument.current_sha256, SignerProfile.image_sha256,
               ExternalSigningJob.prepared_sha256, ExternalSigningJob.pending_sha256,
               SigningKey.fingerprint)
    found: set[str] = set()
    for column in columns:
        found.update(session.scalars(select(column).where(column.like(f"{prefix}%"))))
    return found
