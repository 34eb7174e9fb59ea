"""Signed documents (the certified copy's PDF and its public codes) and signer profiles."""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.labels import code_labels, labelled
from app.ownership import OfficeOwned
from app.timeutil import utcnow
from app.users import StaffUser


class Stage(str, enum.Enum):
    scanned = "scanned"
    leader_signed = "leader_signed"
    sealed = "sealed"


STAGE_LABELS = labelled({Stage.scanned: _l("Scanned"),
                         Stage.leader_signed: _l("Signed by the leader"),
                         Stage.sealed: _l("Sealed")})


class SignedDocument(OfficeOwned, Model):
    """One certified copy's file history; every version is in the file store by hash."""

    __tablename__ = "sign_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Printed in the QR code; opaque and random (never the register number).
    verify_code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    #: Second, secret code printed for the citizen: lets anyone holding it download.
    access_code: Mapped[str] = mapped_column(String(32), nullable=False)
    stage: Mapped[Stage] = mapped_column(
        Enum(Stage, name="sign_stage", native_enum=False, length=16), nullable=False,
        default=Stage.scanned)
    scan_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    leader_sha256: Mapped[str | None] = mapped_column(String(64))
    current_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    document_type: Mapped[str | None] = mapped_column(String(255))
    pages: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(String(32))
    book: Mapped[str | None] = mapped_column(String(64))
    leader_name: Mapped[str | None] = mapped_column(String(255))
    #: The field the leader's signature is in (a plugin may make a field of its own where
    #: the leader dragged it); None: the prepared field.
    leader_field: Mapped[str | None] = mapped_column(String(64))
    leader_signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sealed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    validation: Mapped[dict | None] = mapped_column(JSON)
    valid: Mapped[bool | None] = mapped_column(Boolean)
    validated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: A B-LTA copy: when the certificate of its last archive timestamp expires (the
    #: renewal job stamps it again before then); None: not archived (yet).
    archive_until: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.verify_code}"


class KeyKind(str, enum.Enum):
    pkcs12 = "pkcs12"  # a PKCS#12 file imported into the keystore (outside the database)
    pkcs11 = "pkcs11"  # a key on a token or HSM declared in configuration
    #: On the leader's own token: the plugin on the leader's computer signs (VGCA's, or
    #: SaoY's own signer); SaoY holds only the certificate.
    agent = "agent"
    #: In a remote signing provider's HSM (CSC API): the provider signs what the leader
    #: authorises there; SaoY holds the certificate and the credential's id.
    remote = "remote"


KEY_KIND_LABELS = labelled({
    KeyKind.pkcs12: _l("Key file (PKCS#12) on the server"),
    KeyKind.pkcs11: _l("Token or HSM (PKCS#11) on the server"),
    KeyKind.agent: _l("The leader's own token (signing plugin on their computer)"),
    KeyKind.remote: _l("Remote signing at a provider (CSC)"),
})


code_labels({
    "SignedDocument": _l("Electronic copy"), "SignerProfile": _l("Signer"),
    "SigningKey": _l("Signing key"), "AttestationWording": _l("Attestation wording"),
    "ExternalSigningJob": _l("Signing agent job"),
    "document_signed": _l("Signed by the leader"), "document_sealed": _l("Sealed"),
    "external_signature_requested": _l("Sent to the leader's signing plugin"),
    "external_signature_cancelled": _l("Signing job cancelled"),
    "external_signature_refused": _l("Signed file refused"),
    "external_signature_accepted": _l("Signed file accepted"),
    "signing_key_server_custody": _l("Server custody chosen for a leader's key"),
    "second_factor_enrolled": _l("Signing code set up"),
    "second_factor_confirmed": _l("Signing code confirmed"),
    "second_factor_reset": _l("Signing code removed"),
    "second_factor_refused": _l("Wrong signing code"),
    "signing_session_opened": _l("Signing session opened"),
    "SecondFactor": _l("Signing code"),
    "signer_image_uploaded": _l("Signature image uploaded"),
    "signer_profile_key_bound": _l("Key chosen for the signer"),
    "signing_key_registered": _l("Signing key registered"),
    "signing_key_approved": _l("Signing key approved"),
    "signing_key_activated": _l("Signing key activated"),
    "remote_credential_bound": _l("Remote signing credential bound"),
})


class SigningKey(OfficeOwned, Model):
    """Key material registered by the system administrator and bound to one office (the
    seal: no user) or one leader of it.  Only the certificate is kept here (in the file
    store, by its SHA-256: the fingerprint); the key stays in the keystore or the token."""

    __tablename__ = "sign_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), index=True)
    kind: Mapped[KeyKind] = mapped_column(
        Enum(KeyKind, name="sign_key_kind", native_enum=False, length=16), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    token_label: Mapped[str | None] = mapped_column(String(64))
    key_label: Mapped[str | None] = mapped_column(String(64))
    cert_label: Mapped[str | None] = mapped_column(String(64))
    #: SHA-256 of the certificate (DER), which is also its name in the file store.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    subject: Mapped[str | None] = mapped_column(String(255))
    organisation: Mapped[str | None] = mapped_column(String(255))
    identity: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[dt.datetime | None] = mapped_column(DateTime)
    not_after: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Agent keys announced by a leader wait for the administrator's approval.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: A leader's personal key held by the server signs only once the system administrator
    #: chose server custody for that leader (audited, stated on the verification page).
    server_custody_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    server_custody_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    #: A remote key: the provider (a name of SAOY_CSC_PROVIDERS) and its credential id.
    remote_provider: Mapped[str | None] = mapped_column(String(64))
    remote_credential: Mapped[str | None] = mapped_column(String(255))

    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")

    @property
    def purpose(self) -> str:
        return "leader" if self.user_id else "seal"

    @property
    def on_server(self) -> bool:
        return self.kind in (KeyKind.pkcs12, KeyKind.pkcs11)

    def __repr__(self) -> str:
        return f"{self.name} ({self.fingerprint[:12]}…)"


class Authority(str, enum.Enum):
    """Who may certify at a commune (Nghị định 23/2015 art. 5 as amended by Nghị định
    280/2025): the chairman, a vice-chairman, or an official the chairman authorised or
    assigned by a decision."""

    chairman = "chairman"
    vice_chairman = "vice_chairman"
    authorised = "authorised"


AUTHORITY_LABELS = labelled({
    Authority.chairman: _l("Chairman of the people's committee"),
    Authority.vice_chairman: _l("Vice-chairman of the people's committee"),
    Authority.authorised: _l("Official authorised or assigned by the chairman (decision)"),
})
#: How the attestation names the authority above the title (the administrative-document
#: convention: KT. = signing for, TUQ. = by authorisation).  Document text: Vietnamese.
AUTHORITY_HEADINGS = {Authority.chairman: "", Authority.vice_chairman: "KT. CHỦ TỊCH",
                      Authority.authorised: "TUQ. CHỦ TỊCH"}


class AttestationWording(Model):
    """The attestation's words in force from a date (the form annexed to the circular in
    force): a copy carries the words in force on the day its request was received.
    Without any row the built-in wording applies."""

    __tablename__ = "sign_attestation_wording"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[dt.date] = mapped_column(Date, unique=True, nullable=False)
    sentence: Mapped[str] = mapped_column(Text, nullable=False)
    signer_heading: Mapped[str] = mapped_column(String(128), nullable=False)
    signer_note: Mapped[str] = mapped_column(String(255), nullable=False)
    legal_basis: Mapped[str] = mapped_column(String(255), nullable=False)

    def __repr__(self) -> str:
        return f"{self.legal_basis} ({self.effective_from:%d/%m/%Y})"


class SignerProfile(OfficeOwned, Model):
    """Who signs for a leader (user set) or as the office seal (user empty): the title
    printed, the signature or seal image, the timestamp service, and the registered key
    (chosen by the office admin among the keys bound to that leader or seal)."""

    __tablename__ = "sign_signer"
    __table_args__ = (UniqueConstraint("office_id", "user_id", name="uq_sign_signer_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("sign_key.id"))
    #: Printed under the signature: "Chủ tịch", "Phó Chủ tịch", …
    title: Mapped[str | None] = mapped_column(String(128))
    #: Transparent PNG: the leader's blue signature, or the office's red seal.
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    #: One of the timestamp services the system administrator allows (SAOY_TSA_ALLOWED).
    tsa_name: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: A leader's authority to certify, checked at every signature; None: not recorded
    #: (the leader cannot sign until the office administrator records it).
    authority: Mapped[Authority | None] = mapped_column(
        Enum(Authority, name="sign_authority", native_enum=False, length=16))
    #: An authorised official's decision: number, date, what it covers, and its validity.
    authority_decision: Mapped[str | None] = mapped_column(String(64))
    authority_decision_date: Mapped[dt.date | None] = mapped_column(Date)
    authority_scope: Mapped[str | None] = mapped_column(String(255))
    authority_from: Mapped[dt.date | None] = mapped_column(Date)
    authority_until: Mapped[dt.date | None] = mapped_column(Date)

    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")
    key = relationship(SigningKey, foreign_keys=[key_id], lazy="joined")

    @property
    def is_agent(self) -> bool:
        return self.key is not None and self.key.kind is KeyKind.agent

    def __repr__(self) -> str:
        return f"{self.user.username if self.user else 'seal'}"


class JobState(str, enum.Enum):
    pending = "pending"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"  # its request was returned, cancelled or signed again


JOB_STATE_LABELS = labelled({
    JobState.pending: _l("Waiting for the signer"), JobState.done: _l("Signed"),
    JobState.failed: _l("Failed"), JobState.cancelled: _l("Cancelled"),
})


class ExternalSigningJob(OfficeOwned, Model):
    """A signature made away from the server: the leader's own signer (the plugin on
    their computer) fetches the prepared file with a one-time token and uploads the
    signed file with another; each token is kept only as its SHA-256, valid a few
    minutes, used once.  (A remote signing service signs ``signed_attrs`` instead.)"""

    __tablename__ = "sign_external_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("sign_document.id"), nullable=False,
                                             index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False, index=True)
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, name="sign_job_state", native_enum=False, length=16), nullable=False,
        default=JobState.pending)
    prepared_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    download_token: Mapped[str | None] = mapped_column(String(64), unique=True)  # SHA-256
    upload_token: Mapped[str | None] = mapped_column(String(64), unique=True)  # SHA-256
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    downloaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Jobs opened together (the leader's batch), approved at once by SaoY's own signer.
    batch: Mapped[str | None] = mapped_column(String(32))
    document_digest: Mapped[str | None] = mapped_column(String(128))
    reserved_start: Mapped[int | None] = mapped_column(Integer)
    reserved_end: Mapped[int | None] = mapped_column(Integer)
    signed_attrs: Mapped[str | None] = mapped_column(Text)  # base64 DER
    #: Approved in a remote provider's app: the revision waiting for the signature value,
    #: and "<provider>:<its transaction>" (``approvals``).
    pending_sha256: Mapped[str | None] = mapped_column(String(64))
    remote_transaction: Mapped[str | None] = mapped_column(String(160), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    document = relationship(SignedDocument, lazy="joined")
    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")


class SecondFactor(Model):
    """A leader's one-time-code secret (``second_factor``): enrolled by the leader,
    confirmed by the system administrator; the day's signing session it opened."""

    __tablename__ = "sign_second_factor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True, nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)  # encrypted with the server key
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    #: The last time step whose code was used (a code is accepted once).
    last_counter: Mapped[int | None] = mapped_column(Integer)
    session_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: The password the session was opened under: a password change ends it.
    session_stamp: Mapped[dt.datetime | None] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")

    def __repr__(self) -> str:
        return f"{self.user.username if self.user else self.user_id}"
