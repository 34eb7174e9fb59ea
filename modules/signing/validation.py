"""Validation of signed PDFs with pyHanko against the configured trust roots.

Produces a plain report (JSON-able) and one verdict.  pdfsig is only a second
opinion in tests: it calls a paint-over update "valid"; pyHanko's difference
analysis does not.
"""
from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext

ACCEPTED_LEVELS = {ModificationLevel.NONE, ModificationLevel.LTA_UPDATES,
                   ModificationLevel.FORM_FILLING}


@dataclass
class SignatureReport:
    field: str
    signer: str
    organisation: str | None
    identity: str | None
    role: str  # "leader" / "seal" / "other"
    intact: bool
    valid: bool
    trusted: bool
    signing_time: str | None
    timestamp_time: str | None  # from an RFC 3161 token, when the signature has one
    time_source: str  # "tsa" or "server clock" (not independently attested)
    modification_level: str | None
    docmdp_ok: bool | None
    coverage: str | None
    fingerprint: str | None = None  # SHA-256 of the signer's certificate (its binding)


@dataclass
class ValidationReport:
    valid: bool
    modified_after_signing: bool
    readable: bool
    signatures: list[SignatureReport] = field(default_factory=list)
    error: str | None = None
    #: Document (archive) timestamps of a B-LTA copy: when each proves the file existed.
    archive_timestamps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_certs(path: Path) -> list[asn1_x509.Certificate]:
    data = path.read_bytes()
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


@functools.lru_cache(maxsize=16)
def trust_roots(*directories: str) -> tuple[asn1_x509.Certificate, ...]:
    """Every certificate in the given folders (bundled Vietnamese roots, extra, demo)."""
    certs: list[asn1_x509.Certificate] = []
    for directory in directories:
        folder = Path(directory)
        if folder.is_file():
            certs.extend(_load_certs(folder))
            continue
        for path in sorted(folder.glob("*.pem")) + sorted(folder.glob("*.crt")):
            certs.extend(_load_certs(path))
    return tuple(certs)


def anchors(roots: tuple[asn1_x509.Certificate, ...]) -> list[asn1_x509.Certificate]:
    """Self-signed certificates are the anchors; bundled intermediates (the Government
    Cipher Committee's issuing CA, …) only help build the path up to a root."""
    return [c for c in roots if c.self_signed != "no"] or list(roots)


def validation_context(roots: tuple[asn1_x509.Certificate, ...]) -> ValidationContext:
    return ValidationContext(trust_roots=anchors(roots), allow_fetching=False,
                             other_certs=list(roots))


def _subject_value(cert: asn1_x509.Certificate, key: str) -> str | None:
    try:
        return cert.subject.native.get(key)
    except Exception:  # noqa: BLE001
        return None


def validate_pdf(data: bytes, roots: tuple[asn1_x509.Certificate, ...],
                 roles: dict[str, str] | None = None) -> ValidationReport:
    """Validate every signature; ``roles`` maps field names to "leader"/"seal"."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except Exception as exc:  # noqa: BLE001 - any parse failure is "unreadable"
        return ValidationReport(False, False, False, error=f"{type(exc).__name__}")
    if not embedded:
        return ValidationReport(False, False, True, error="no-signature")
    reports: list[SignatureReport] = []
    key_usage = KeyUsageConstraints(key_usage={"digital_signature"}, match_all_key_usages=False)
    archive: list[str] = []
    broken_archive = False
    for sig in embedded:
        if sig.sig_object_type == "/DocTimeStamp":  # the copy's long-term archive stamps
            proven = _archive_time(sig, roots)
            broken_archive |= proven is None
            archive += [proven] if proven else []
            continue
        try:
            status = validate_pdf_signature(sig, validation_context(roots),
                                            key_usage_settings=key_usage)
        except Exception as exc:  # noqa: BLE001
            reports.append(SignatureReport(str(sig.field_name), "?", None, None,
                                           (roles or {}).get(sig.field_name, "other"), False,
                                           False, False, None, None, "unknown", None, None,
                                           f"error:{exc!r}"))
            continue
        cert = status.signing_cert
        level = status.modification_level
        ts = status.timestamp_validity
        ts_time = ts.timestamp.isoformat() if ts is not None and ts.timestamp else None
        reports.append(SignatureReport(
            field=str(sig.field_name),  # pyHanko's string keeps its whole document alive
            signer=_subject_value(cert, "common_name") or "?",
            organisation=_subject_value(cert, "organization_name"),
            identity=_subject_value(cert, "user_id"),
            role=(roles or {}).get(sig.field_name, "other"),
            intact=bool(status.intact),
            valid=bool(status.valid),
            trusted=bool(status.trusted),
            signing_time=status.signer_reported_dt.isoformat() if status.signer_reported_dt
            else None,
            timestamp_time=ts_time,
            time_source="tsa" if ts_time and ts.valid and ts.intact else "server clock",
            modification_level=level.name if level is not None else None,
            docmdp_ok=status.docmdp_ok,
            coverage=status.coverage.name if status.coverage is not None else None,
            fingerprint=hashlib.sha256(cert.dump()).hexdigest(),
        ))
    modified = broken_archive or any(
        r.modification_level not in {lvl.name for lvl in ACCEPTED_LEVELS}
        or r.docmdp_ok is False for r in reports)
    valid = all(r.intact and r.valid and r.trusted for r in reports) and not modified
    return ValidationReport(valid, modified, True, reports, archive_timestamps=archive)


def _archive_time(sig, roots: tuple[asn1_x509.Certificate, ...]) -> str | None:
    """The time a document timestamp proves, or None when it is broken or untrusted."""
    try:
        status = validate_pdf_timestamp(sig, validation_context(roots))
    except Exception:  # noqa: BLE001 - a stamp that cannot be checked proves nothing
        return None
    if not (status.intact and status.valid and status.trusted) or status.timestamp is None:
        return None
    return status.timestamp.isoformat()
