"""Signed documents (the certified copy's PDF and its public codes) and signer profiles."""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.scoping import OfficeOwned
from app.timeutil import utcnow
from app.users import StaffUser


class Stage(str, enum.Enum):
    scanned = "scanned"
    leader_signed = "leader_signed"
    sealed = "sealed"


class SignerKind(str, enum.Enum):
    pkcs12 = "pkcs12"
    pkcs11 = "pkcs11"
    external = "external"


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
    leader_signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sealed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    validation: Mapped[dict | None] = mapped_column(JSON)
    valid: Mapped[bool | None] = mapped_column(Boolean)
    validated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.verify_code}"


class SignerProfile(OfficeOwned, Model):
    """Which key signs for a leader (user set) or as the office seal (user empty)."""

    __tablename__ = "sign_signer"
    __table_args__ = (UniqueConstraint("office_id", "user_id", name="uq_sign_signer_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    kind: Mapped[SignerKind] = mapped_column(
        Enum(SignerKind, name="sign_signer_kind", native_enum=False, length=16), nullable=False)
    pkcs12_path: Mapped[str | None] = mapped_column(String(500))
    pkcs11_token_label: Mapped[str | None] = mapped_column(String(64))
    pkcs11_key_label: Mapped[str | None] = mapped_column(String(64))
    pkcs11_cert_label: Mapped[str | None] = mapped_column(String(64))
    #: Printed under the signature: "Chủ tịch", "Phó Chủ tịch", …
    title: Mapped[str | None] = mapped_column(String(128))
    #: Transparent PNG: the leader's blue signature, or the office's red seal.
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    tsa_url: Mapped[str | None] = mapped_column(String(500))
    #: External signers: the leader's certificate (DER, in the file store), registered
    #: by the signing agent; the key itself never leaves the token.
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    user = relationship(StaffUser, foreign_keys=[user_id], lazy="joined")

    def __repr__(self) -> str:
        return f"{self.kind.value}:{self.user.username if self.user else 'seal'}"


class JobState(str, enum.Enum):
    pending = "pending"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"  # its request was returned, cancelled or signed again


class ExternalSigningJob(OfficeOwned, Model):
    """A signature the leader's signing agent must make: the prepared file is in the
    file store, and the agent signs ``signed_attrs`` with the token."""

    __tablename__ = "sign_external_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("sign_document.id"), nullable=False,
                                             index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False, index=True)
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, name="sign_job_state", native_enum=False, length=16), nullable=False,
        default=JobState.pending)
    prepared_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    document_digest: Mapped[str] = mapped_column(String(128), nullable=False)
    reserved_start: Mapped[int] = mapped_column(Integer, nullable=False)
    reserved_end: Mapped[int] = mapped_column(Integer, nullable=False)
    signed_attrs: Mapped[str] = mapped_column(Text, nullable=False)  # base64 DER
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    document = relationship(SignedDocument, lazy="joined")
