"""Key custody: registering key material and binding it to an office or a leader.

Only the system administrator registers keys (a PKCS#12 file imported into the
keystore, a key on a declared token, or the approval of a certificate a leader's
signing agent announced).  A certificate is bound to what it names: a seal to the
office (the certificate's organisation is the office's name), a leader's key to that
leader (the certificate's name is the leader's); anything else only when the
administrator confirms the certificate's fingerprint.  The same binding is checked
before every signature, at delivery and on the verification page.  Never commits.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError, NotFoundError
from app.offices.models import Office
from app.offices.services import certifying_kinds
from app.scope import is_admin, role_names, scope
from app.storage import file_store
from app.timeutil import utcnow
from app.users import StaffUser
from modules.signing import remote
from modules.signing.models import KeyKind, SignerProfile, SigningKey
from modules.signing.signers import (
    SignerUnavailableError,
    keystore_dir,
    keystore_paths,
    open_signer,
    token_session,
)

LEADER_ROLE = "Leader"


class KeyRegistrationError(DomainError):
    """A key cannot be registered or bound; the message says why (never a path)."""


@dataclass(frozen=True)
class CertificateInfo:
    der: bytes
    fingerprint: str
    subject: str | None
    organisation: str | None
    identity: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    for_signing: bool


def _attribute(name: x509.Name, oid) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def certificate_info(der: bytes) -> CertificateInfo:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise KeyRegistrationError(_("This is not an X.509 certificate.")) from None
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        for_signing = usage.digital_signature or usage.content_commitment
    except x509.ExtensionNotFound:
        for_signing = True
    return CertificateInfo(
        der=der, fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        subject=_attribute(cert.subject, NameOID.COMMON_NAME),
        organisation=_attribute(cert.subject, NameOID.ORGANIZATION_NAME),
        identity=_attribute(cert.subject, NameOID.USER_ID),
        not_before=cert.not_valid_before_utc.replace(tzinfo=None),
        not_after=cert.not_valid_after_utc.replace(tzinfo=None), for_signing=for_signing)


def _plain(text: str | None) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").casefold().split())


def full_name(user: Any) -> str:
    return f"{user.first_name} {user.last_name}".strip()


def check_binding(info: CertificateInfo, office: Office, leader: StaffUser | None,
                  confirmed_fingerprint: str | None = None) -> None:
    """Is this certificate fit to sign for ``office`` (seal) or ``leader`` of it?"""
    now = utcnow()
    if not info.not_before <= now <= info.not_after:
        raise KeyRegistrationError(_("The certificate is not valid now (valid from %(start)s "
                                     "to %(end)s).", start=info.not_before.date().isoformat(),
                                     end=info.not_after.date().isoformat()))
    if not info.for_signing:
        raise KeyRegistrationError(_("The certificate is not for signing (its key usage has "
                                     "neither digital signature nor non-repudiation)."))
    named = (_plain(info.subject) == _plain(full_name(leader)) if leader is not None
             else _plain(info.organisation) == _plain(office.name))
    if named or (confirmed_fingerprint or "").strip().lower() == info.fingerprint:
        return
    owner = full_name(leader) if leader is not None else office.name
    raise KeyRegistrationError(_(
        "The certificate is issued to %(subject)s (%(organisation)s), not to %(owner)s. To bind "
        "it anyway, confirm its SHA-256 fingerprint %(fingerprint)s.",
        subject=info.subject or "?", organisation=info.organisation or "?", owner=owner,
        fingerprint=info.fingerprint))


def _require_key_officer(user: Any) -> None:
    if not is_admin(user):
        raise KeyRegistrationError(_("Only the system administrator registers signing keys."),
                                   403)


def _owner(session: Session, office_id: Any, user_id: Any) -> tuple[Office, StaffUser | None]:
    office = session.get(Office, int(office_id)) if str(office_id or "").isdigit() else None
    if office is None or office.kind not in certifying_kinds():
        raise KeyRegistrationError(_("Choose the certifying office the key belongs to."))
    if user_id in (None, ""):
        return office, None
    leader = session.get(StaffUser, int(user_id)) if str(user_id).isdigit() else None
    if leader is None or leader.office_id != office.id or \
            LEADER_ROLE not in role_names(leader):
        raise KeyRegistrationError(_("The chosen person is not a leader of this office."))
    return office, leader


def _new_key(session: Session, admin: Any, kind: KeyKind, name: str, office: Office,
             leader: StaffUser | None, info: CertificateInfo, **labels: Any) -> SigningKey:
    if session.scalar(select(SigningKey.id).where(SigningKey.fingerprint == info.fingerprint)):
        raise KeyRegistrationError(_("This certificate is already registered."), 409)
    file_store().put_bytes(info.der)
    key = SigningKey(
        office_id=office.id, user_id=leader.id if leader else None, kind=kind,
        name=(name or info.subject or "")[:128], fingerprint=info.fingerprint,
        subject=info.subject, organisation=info.organisation, identity=info.identity,
        not_before=info.not_before, not_after=info.not_after,
        active=kind not in (KeyKind.agent, KeyKind.remote),  # the leader's own: approved first
        registered_by_id=getattr(admin, "id", None), registered_at=utcnow(), **labels)
    if key.active:
        key.approved_by_id, key.approved_at = key.registered_by_id, key.registered_at
    session.add(key)
    session.flush()
    audit.record(session, admin, "signing_key_registered", obj=key, reason=(
        f"{kind.value} {info.fingerprint} {info.subject} / {info.organisation} → "
        f"{leader.username if leader else 'seal'}"))
    return key


def register_pkcs12(session: Session, admin: Any, *, office_id: Any, user_id: Any, name: str,
                    data: bytes, passphrase: str | bytes,
                    confirmed_fingerprint: str | None = None) -> SigningKey:
    """Import a PKCS#12 file into the keystore, re-encrypted with a passphrase of its own."""
    _require_key_officer(admin)
    office, leader = _owner(session, office_id, user_id)
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        private_key, cert, extra = pkcs12.load_key_and_certificates(data, secret or None)
    except (ValueError, TypeError):
        raise KeyRegistrationError(_("The passphrase does not open this file, or it is not a "
                                     "PKCS#12 (.p12, .pfx) file.")) from None
    if private_key is None or cert is None:
        raise KeyRegistrationError(_("The PKCS#12 file holds no key with its certificate."))
    info = certificate_info(cert.public_bytes(serialization.Encoding.DER))
    check_binding(info, office, leader, confirmed_fingerprint)
    key = _new_key(session, admin, KeyKind.pkcs12, name, office, leader, info)
    _write_keystore(info.fingerprint, private_key, cert, extra or [])
    return key


def _write_keystore(fingerprint: str, private_key, cert, extra) -> None:
    folder = keystore_dir(current_app.config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    p12_path, pass_path = keystore_paths(current_app.config, fingerprint)
    own = secrets.token_urlsafe(32).encode()
    blob = pkcs12.serialize_key_and_certificates(
        fingerprint[:16].encode(), private_key, cert, list(extra),
        serialization.BestAvailableEncryption(own))
    for path, content in ((pass_path, own), (p12_path, blob)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)


def register_pkcs11(session: Session, admin: Any, *, office_id: Any, user_id: Any, name: str,
                    token_label: str, key_label: str, cert_label: str | None = None,
                    confirmed_fingerprint: str | None = None) -> SigningKey:
    """Bind a key on a declared token (its certificate read from the token)."""
    from pyhanko.sign.pkcs11 import PKCS11Signer

    _require_key_officer(admin)
    office, leader = _owner(session, office_id, user_id)
    if not key_label:
        raise KeyRegistrationError(_("Give the label of the key on the token."))
    try:
        with token_session(current_app.config, token_label) as token:
            signer = PKCS11Signer(token, key_label=key_label, cert_label=cert_label or key_label)
            der = signer.signing_cert.dump()
    except SignerUnavailableError as exc:
        raise KeyRegistrationError(str(exc)) from None
    except Exception:  # noqa: BLE001 - no such key or certificate on the token
        raise KeyRegistrationError(_("No certificate with this label is on the token.")) \
            from None
    info = certificate_info(der)
    check_binding(info, office, leader, confirmed_fingerprint)
    return _new_key(session, admin, KeyKind.pkcs11, name, office, leader, info,
                    token_label=token_label, key_label=key_label, cert_label=cert_label)


def announce_agent_key(session: Session, leader: Any, der: bytes) -> SigningKey:
    """A leader's signing agent announces the token's certificate: it waits for the
    administrator's approval before it can sign anything."""
    if not getattr(leader, "office_id", None):
        raise NotFoundError()
    office, leader = _owner(session, leader.office_id, leader.id)
    info = certificate_info(der)
    if existing := _registered_for(session, info, leader):
        return existing
    check_binding(info, office, leader)
    return _new_key(session, leader, KeyKind.agent, f"{info.subject} (agent)", office, leader,
                    info)


def _registered_for(session: Session, info: CertificateInfo, leader: StaffUser
                    ) -> SigningKey | None:
    """The leader's key already registered with this certificate (announcing it again is
    harmless); someone else's: refused."""
    existing = session.scalars(select(SigningKey).where(
        SigningKey.fingerprint == info.fingerprint)).first()
    if existing is not None and existing.user_id != leader.id:
        raise KeyRegistrationError(_("This certificate is registered for someone else."), 409)
    return existing


@dataclass(frozen=True)
class PendingBinding:
    """A binding waiting for the leader to approve the challenge in the provider's app
    (kept in the leader's own session, nowhere else, until it is proven)."""

    provider: str
    credential: str
    transaction: str
    challenge: str  # base64 SHA-256 the provider is asked to sign
    expires_at: str  # ISO, UTC


def bind_remote_credential(session: Session, leader: Any, provider_name: str,
                           credential_id: str, approval: Any, config: Any
                           ) -> SigningKey | PendingBinding:
    """A leader binds their credential at a remote signing provider: the provider gives
    its certificate (which must name this leader) and, under the leader's authorisation,
    signs a random challenge that the certificate's key must verify — proof that the
    credential is theirs.  The key then waits for the system administrator's approval,
    like an own token's.  A provider that asks in its app answers later: the binding
    then waits (``finish_remote_binding``)."""
    office, leader, client, credential_id, credential, info = _remote_credential(
        session, leader, provider_name, credential_id, config)
    challenge = hashlib.sha256(os.urandom(32)).digest()
    try:
        if client.waits:
            pending = client.submit(credential_id, [challenge], "SaoY: liên kết chứng thư số")
            return PendingBinding(client.provider.name, credential_id, pending.transaction,
                                  base64.b64encode(challenge).decode(),
                                  pending.expires_at.isoformat())
        _check_challenge(credential, challenge, _sign_challenge(
            client, credential_id, credential, approval, challenge))
    except remote.RemoteSigningError as exc:
        raise KeyRegistrationError(str(exc)) from None
    return _bound(session, office, leader, client.provider, credential_id, info)


def finish_remote_binding(session: Session, leader: Any, pending: PendingBinding,
                          config: Any) -> str:
    """What became of a binding waiting in the provider's app: ``pending``, ``refused``,
    ``expired`` or ``bound`` (the key now waits for the administrator)."""
    office, leader, client, credential_id, credential, info = _remote_credential(
        session, leader, pending.provider, pending.credential, config)
    try:
        outcome = client.outcome(pending.transaction)
    except remote.RemoteSigningError as exc:
        raise KeyRegistrationError(str(exc)) from None
    if outcome.state == "pending" and dt.datetime.fromisoformat(pending.expires_at) < utcnow():
        return "expired"
    if outcome.state != "signed":
        return outcome.state
    _check_challenge(credential, base64.b64decode(pending.challenge), outcome.signatures[:1])
    _bound(session, office, leader, client.provider, credential_id, info)
    return "bound"


def _remote_credential(session: Session, leader: Any, provider_name: str | None,
                       credential_id: str | None, config: Any):
    """The leader, their office, the provider's adapter and the credential it describes —
    whose certificate must name this leader of this office."""
    if not getattr(leader, "office_id", None):
        raise NotFoundError()
    office, leader = _owner(session, leader.office_id, leader.id)
    provider = remote.providers(config).get(provider_name or "")
    credential_id = (credential_id or "").strip()[:255]
    if provider is None or not credential_id:
        raise KeyRegistrationError(_("Choose one of the remote signing services the system "
                                     "administrator declared, and type your credential's "
                                     "identifier."))
    client = remote.service(provider)
    try:
        credential = client.credential(credential_id)
    except remote.RemoteSigningError as exc:
        raise KeyRegistrationError(str(exc)) from None
    info = certificate_info(credential.cert)
    check_binding(info, office, leader)
    return office, leader, client, credential_id, credential, info


def _bound(session: Session, office: Office, leader: Any, provider: Any, credential_id: str,
           info: CertificateInfo) -> SigningKey:
    if existing := _registered_for(session, info, leader):
        return existing
    key = _new_key(session, leader, KeyKind.remote, f"{info.subject} ({provider.name})",
                   office, leader, info, remote_provider=provider.name,
                   remote_credential=credential_id)
    audit.record(session, leader, "remote_credential_bound", obj=key,
                 reason=f"{provider.name} {credential_id}")
    return key


def remote_keys_of(session: Session, leader: Any) -> list[SigningKey]:
    """The remote credentials a leader bound, newest first (for their page)."""
    return list(session.scalars(select(SigningKey).where(
        SigningKey.user_id == leader.id, SigningKey.kind == KeyKind.remote)
        .order_by(SigningKey.registered_at.desc())))


def _sign_challenge(client: Any, credential_id: str, credential: Any, approval: Any,
                    digest: bytes) -> list[bytes]:
    """The provider signs a random challenge under the leader's authorisation (CSC)."""
    b64 = base64.b64encode(digest).decode()
    public = x509.load_der_x509_certificate(credential.cert).public_key()
    mechanism = "1.2.840.10045.4.3.2" if isinstance(public, ec.EllipticCurvePublicKey) \
        else "1.2.840.113549.1.1.1"
    sad = client.authorize(credential_id, 1, approval,
                           [b64] if credential.hash_pinning else None)
    return client.sign_hashes(credential_id, sad, [b64], "sha256", mechanism)[:1]


def _check_challenge(credential: Any, digest: bytes, signature: Any) -> None:
    """The certificate's public key must verify the challenge's signature (else the
    credential is not this one's)."""
    public = x509.load_der_x509_certificate(credential.cert).public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature[0], digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        else:
            public.verify(signature[0], digest, padding.PKCS1v15(),
                          utils.Prehashed(hashes.SHA256()))
    except (InvalidSignature, IndexError, ValueError, TypeError):
        raise KeyRegistrationError(_("The remote signing service's signature does not match "
                                     "the credential's certificate: not bound.")) from None


def approve_key(session: Session, admin: Any, key_id: int) -> SigningKey:
    """Activate a key and make it the one its leader (or the office seal) signs with."""
    _require_key_officer(admin)
    key = session.get(SigningKey, key_id)
    if key is None:
        raise NotFoundError()
    check_binding(certificate_info(file_store().read_bytes(key.fingerprint)), key.office,
                  key.user, key.fingerprint)
    key.active, key.approved_by_id, key.approved_at = True, admin.id, utcnow()
    profile = session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == key.office_id, SignerProfile.user_id.is_(key.user_id)
        if key.user_id is None else SignerProfile.user_id == key.user_id)).first()
    if profile is None:
        profile = SignerProfile(office_id=key.office_id, user_id=key.user_id, active=True)
        session.add(profile)
    previous = profile.key_id
    profile.key = key
    session.flush()
    audit.record(session, admin, "signing_key_approved", obj=key, reason=key.fingerprint)
    audit.record(session, admin, "signer_profile_key_bound", obj=profile,
                 reason=f"{previous} → {key.id}")
    return key


def choose_server_custody(session: Session, admin: Any, key_id: int) -> SigningKey:
    """The system administrator chooses, for one leader, that the server holds their
    personal key (audited; the verification page says so).  Signing with it still needs
    the leader's own one-time code."""
    _require_key_officer(admin)
    key = session.get(SigningKey, key_id)
    if key is None:
        raise NotFoundError()
    if key.user_id is None or not key.on_server:
        raise KeyRegistrationError(_("Server custody is chosen for a leader's key held by the "
                                     "server only."))
    if key.server_custody_at is None:
        key.server_custody_at, key.server_custody_by_id = utcnow(), admin.id
        audit.record(session, admin, "signing_key_server_custody", obj=key,
                     reason=f"{key.fingerprint} → {key.user.username}")
    return key


def set_active(session: Session, admin: Any, key: SigningKey, active: bool) -> None:
    _require_key_officer(admin)
    if key.active != active:
        key.active = active
        audit.record(session, admin, "signing_key_activated" if active
                     else "signing_key_deactivated", obj=key, reason=key.fingerprint)


def check_usable(key: SigningKey | None, office_id: int, user_id: int | None) -> SigningKey:
    """The key a signer profile points at, checked again before every signature."""
    if key is None:
        raise SignerUnavailableError(_("No registered key is bound to this signer: the system "
                                       "administrator registers it."))
    if not key.active:
        raise SignerUnavailableError(_("The key of this signer is not approved or was "
                                       "deactivated."))
    if key.office_id != office_id or key.user_id != user_id:
        raise SignerUnavailableError(_("The key of this signer is bound to someone else."))
    if key.not_after and key.not_after < utcnow():
        raise SignerUnavailableError(_("The certificate of this key has expired."))
    return key


def custody(session: Session, office_id: int, fingerprints: set[str]
            ) -> dict[str, tuple[str, dt.datetime | None]]:
    """fingerprint → ("server", since) or ("own", None) for this office's leader keys: what
    the verification page says of who held the key."""
    found = session.scalars(select(SigningKey).where(
        SigningKey.office_id == office_id, SigningKey.user_id.is_not(None),
        SigningKey.fingerprint.in_(fingerprints or {""})))
    return {k.fingerprint: ("server", k.server_custody_at) if k.on_server else ("own", None)
            for k in found}


def signer_key(session: Session, office_id: int, user_id: int | None) -> SigningKey:
    """The key a signer's active profile points at, checked (``check_usable``)."""
    profile = session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == office_id, SignerProfile.active.is_(True),
        SignerProfile.user_id.is_(None) if user_id is None
        else SignerProfile.user_id == user_id)).first()
    return check_usable(profile.key if profile else None, office_id, user_id)


def bound_purposes(session: Session, office_id: int, fingerprints: set[str]) -> dict[str, str]:
    """fingerprint → "leader" / "seal" for the certificates registered for this office."""
    keys = session.scalars(select(SigningKey).where(
        SigningKey.office_id == office_id, SigningKey.fingerprint.in_(fingerprints or {""})))
    return {key.fingerprint: key.purpose for key in keys}



def signer_health() -> tuple[dict[str, int], bool]:
    """``/health/``: how many active signer profiles can sign right now (their key opens)."""
    from app.extensions import db

    usable = unusable = 0
    for profile in db.session.scalars(select(SignerProfile).where(
            SignerProfile.active.is_(True))):
        try:
            key = check_usable(profile.key, profile.office_id, profile.user_id)
            if key.kind is KeyKind.remote:  # declared; the provider is asked when signing
                if key.remote_provider not in remote.providers(current_app.config):
                    raise SignerUnavailableError(key.remote_provider or "")
            elif not profile.is_agent:
                with open_signer(key, current_app.config):
                    pass
            usable += 1
        except SignerUnavailableError:
            unusable += 1
    return {"usable": usable, "unusable": unusable}, unusable == 0


def key_owners(session: Session, user: Any) -> tuple[list[Office], list[StaffUser]]:
    """Whom a key may be bound to, for the registration form: the certifying offices
    and the leaders among their staff (of the offices ``user`` sees)."""
    offices = list(session.scalars(select(Office).where(
        Office.kind.in_(certifying_kinds()), scope(user, Office)).order_by(Office.name)))
    leaders = [u for u in session.scalars(select(StaffUser).where(
        StaffUser.office_id.is_not(None), scope(user, StaffUser)).order_by(StaffUser.username))
        if LEADER_ROLE in role_names(u)]
    return offices, leaders
