"""The leader's own signer — the plugin on the leader's computer (VGCA's, or SaoY's own):
signing jobs with one-time tokens, the prepared file handed out once, and the signed
file taken back only if it is exactly what the leader was asked to sign.

The plugin carries no session: each job has a download token and an upload token, 256
random bits each, kept only as their SHA-256, valid ``SIGNING_JOB_MINUTES``, used once.
A job dies with its request (returned, cancelled, asked again).  The acceptance check
(``check_one_more_signature``) is the same for every signature made away from the server.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import (
    CatalogModificationRule,
    DocInfoRule,
    FormUpdatingRule,
    GenericFieldModificationRule,
    MetadataUpdateRule,
    ModificationLevel,
    ObjectStreamRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
    XrefStreamRule,
)
from pyhanko.sign.diff_analysis.constants import ROOT_EXEMPT_STRICT_COMPARISON
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit
from app.errors import NotFoundError
from app.modules import handlers
from app.pdf_reader import read_pdf
from app.scope import scoped
from app.storage import file_store
from app.timeutil import utcnow
from modules.signing import keys, pdf, policy, revocation
from modules.signing.models import ExternalSigningJob, JobState, SignedDocument, Stage
from modules.signing.validation import validation_context

#: What one signature may add to the prepared file (its container and appearance).
MAX_SIGNATURE_UPDATE = 4 * 2**20
#: Fields of the office that the leader's signature must leave empty.
OFFICE_FIELDS = (pdf.FIELD_SEAL, pdf.FIELD_NUMBER, pdf.FIELD_BOOK)


class RefusedSignatureError(Exception):
    """The signed file is not what the leader was asked to sign; ``str`` says why."""


@dataclass(frozen=True)
class OpenedJob:
    """A job as the page needs it once: the tokens exist nowhere else in clear."""

    job_id: int
    document_id: int
    download_token: str
    upload_token: str
    sha256: str  # of the prepared file
    expires_at: dt.datetime
    field: str = pdf.FIELD_LEADER
    remote: str | None = None  # approved in this remote provider's app (``approvals``)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_job(session: Session, user: Any, document_id: int, prepared: io.BytesIO,
             batch: str | None = None) -> OpenedJob:
    """Leave the prepared file for the leader's own signer: one pending job per document
    (an earlier one is cancelled, so the last click is the only one that counts)."""
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    cancel_jobs(session, user, doc.id, "signature requested again")
    sha, _size = file_store().put_file(prepared)
    download, upload = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(minutes=current_app.config["SIGNING_JOB_MINUTES"])
    job = ExternalSigningJob(
        office_id=doc.office_id, document_id=doc.id, user_id=user.id, state=JobState.pending,
        prepared_sha256=sha, download_token=_digest(download), upload_token=_digest(upload),
        expires_at=expires, batch=batch)
    session.add(job)
    session.flush()
    audit.record(session, user, "external_signature_requested", obj=job, file_sha256=sha)
    return OpenedJob(job.id, doc.id, download, upload, sha, expires)


def cancel_jobs(session: Session, user: Any, document_id: int, why: str) -> int:
    """A request returned, cancelled or signed again takes its pending jobs with it."""
    jobs = scoped(session, user, ExternalSigningJob).all(
        ExternalSigningJob.document_id == document_id,
        ExternalSigningJob.state == JobState.pending)
    for job in jobs:
        job.state, job.finished_at, job.error = JobState.cancelled, utcnow(), why
        audit.record(session, user, "external_signature_cancelled", obj=job, reason=why,
                     from_state=JobState.pending.value, to_state=JobState.cancelled.value)
    return len(jobs)


def _job(session: Session, column: Any, token: str) -> ExternalSigningJob:
    job = session.scalars(select(ExternalSigningJob).where(column == _digest(token or ""))) \
        .first() if token and len(token) < 100 else None  # noqa: PLR2004 - a token's size
    if job is None:
        raise NotFoundError()
    return job


def _usable(job: ExternalSigningJob) -> None:
    if job.state is JobState.cancelled:
        raise RefusedSignatureError(_("This signing was cancelled: the request was returned, "
                                      "cancelled or sent for signature again."))
    if job.state is not JobState.pending:
        raise RefusedSignatureError(_("This document is already signed."))
    if job.expires_at is None or job.expires_at < utcnow():
        raise RefusedSignatureError(_("This signing link has expired: press Ký số again."))


def prepared_file(session: Session, token: str) -> bytes:
    """The prepared file, once, for the holder of the download token."""
    job = _job(session, ExternalSigningJob.download_token, token)
    try:
        _usable(job)
    except RefusedSignatureError:
        raise NotFoundError() from None
    taken = session.execute(
        update(ExternalSigningJob).where(ExternalSigningJob.id == job.id,
                                         ExternalSigningJob.downloaded_at.is_(None))
        .values(downloaded_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise NotFoundError()  # the link was used already
    return file_store().read_bytes(job.prepared_sha256)


def job_for_upload(session: Session, token: str) -> ExternalSigningJob:
    return _job(session, ExternalSigningJob.upload_token, token)


def accept_upload(session: Session, job: ExternalSigningJob, data: bytes, roots) -> SignedDocument:
    """Take the signed file if it is the prepared file plus exactly the leader's one
    signature; the request moves on (``signing.leader_signed``).  Raises
    ``RefusedSignatureError`` with the reason, having changed nothing."""
    _usable(job)
    doc = job.document
    if doc.stage is not Stage.scanned:
        raise RefusedSignatureError(_("This document is already signed by a leader."))
    key = keys.signer_key(session, doc.office_id, job.user_id)
    prepared = file_store().read_bytes(job.prepared_sha256)
    field = check_one_more_signature(prepared, data, key.fingerprint, roots)
    taken = session.execute(
        update(ExternalSigningJob).where(ExternalSigningJob.id == job.id,
                                         ExternalSigningJob.state == JobState.pending)
        .values(state=JobState.done, finished_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise RefusedSignatureError(_("Another signed file for this document was taken "
                                      "first."))
    session.refresh(job)
    sha = file_store().put_bytes(data)
    user = job.user
    doc.leader_sha256 = doc.current_sha256 = sha
    doc.stage, doc.leader_field = Stage.leader_signed, field
    doc.leader_name, doc.leader_signed_at = keys.full_name(user), utcnow()
    audit.record(session, user, "external_signature_accepted", obj=job, file_sha256=sha)
    audit.record(session, user, "document_signed", obj=doc, file_sha256=sha,
                 from_state=Stage.scanned.value, to_state=Stage.leader_signed.value,
                 reason="leader's own signer")
    for hook in handlers("signing.leader_signed"):
        hook(session, user, doc)
    return doc


def record_refusal(session: Session, job: ExternalSigningJob, why: str) -> None:
    """A refused upload changes nothing — but it is audited (its own unit of work)."""
    fresh = session.get(ExternalSigningJob, job.id)
    if fresh is not None:
        audit.record(session, fresh.user, "external_signature_refused", obj=fresh,
                     reason=why[:500])


# --- the acceptance check ---------------------------------------------------------------

def _refuse(message: str) -> None:
    raise RefusedSignatureError(message)


def check_one_more_signature(prepared: bytes, signed: bytes, fingerprint: str, roots) -> str:
    """The prepared file, byte for byte, plus one incremental update adding exactly one
    signature, by the registered certificate, covering the whole file, leaving the office's
    fields empty, changing nothing else a reader sees, and letting the seal follow.
    Returns the signature's field name."""
    if len(signed) > len(prepared) + MAX_SIGNATURE_UPDATE or not signed.startswith(prepared):
        _refuse(_("The signed file is not the file prepared for your signature."))
    try:
        base = PdfFileReader(io.BytesIO(prepared), strict=False).xrefs.total_revisions
        reader = read_pdf(signed)
        revisions, signatures = reader.xrefs.total_revisions, list(reader.embedded_signatures)
    except Exception:  # noqa: BLE001 - any parse failure: not a file we take
        _refuse(_("The signed file cannot be read."))
    if revisions != base + 1:
        _refuse(_("The signed file changes the document more than once."))
    if len(signatures) != 1 or signatures[0].signed_revision != base:
        _refuse(_("The signed file must carry exactly one new signature."))
    sig = signatures[0]
    if sig.field_name in OFFICE_FIELDS:
        _refuse(_("The signature is in the office's seal or number field, not the leader's."))
    status = _validated(sig, roots)
    if hashlib.sha256(status.signing_cert.dump()).hexdigest() != fingerprint:
        _refuse(_("The file was signed with a certificate that is not the one registered "
                  "for you in this office."))
    revocation.check_signer(status.signing_cert, list(sig.other_embedded_certs or ()), roots)
    if sig.docmdp_level is MDPPerm.NO_CHANGES:
        _refuse(_("The signature forbids every later change: the office could not seal."))
    _only_the_signature(reader, base, sig)
    if policy.active(policy.findings(reader.trailer)):
        _refuse(_("The signed file carries active content."))
    return str(sig.field_name)


def _validated(sig, roots):
    try:
        status = validate_pdf_signature(sig, validation_context(roots), key_usage_settings=
                                        KeyUsageConstraints(key_usage={"digital_signature"},
                                                            match_all_key_usages=False))
    except Exception:  # noqa: BLE001 - a signature that cannot be checked is not taken
        _refuse(_("The signature cannot be checked."))
    if not (status.intact and status.valid):
        _refuse(_("The signature does not match the document."))
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        _refuse(_("The signature does not cover the whole file."))
    return status


#: pyHanko's default policy, except that the catalog may gain /Perms: the leader's is a
#: certification signature (DocMDP), and /Perms is where it says so.  What /Perms holds
#: is checked apart (``_certifies_itself``); no DSS or timestamp updates in this revision.
LEADER_REVISION_POLICY = StandardDiffPolicy(
    global_rules=[
        CatalogModificationRule(ignored_keys=ROOT_EXEMPT_STRICT_COMPARISON | {"/Perms"}),
        DocInfoRule().as_qualified(ModificationLevel.LTA_UPDATES),
        XrefStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        ObjectStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        MetadataUpdateRule().as_qualified(ModificationLevel.LTA_UPDATES),
    ],
    form_rule=FormUpdatingRule(field_rules=[
        SigFieldCreationRule(), SigFieldModificationRule(), GenericFieldModificationRule()]),
)


def _only_the_signature(reader: PdfFileReader, base: int, sig) -> None:
    """pyHanko's difference analysis: the new revision may fill the signature field and
    draw its appearance, nothing more; the office's fields stay empty."""
    result = LEADER_REVISION_POLICY.review_file(reader, base - 1)
    if not hasattr(result, "modification_level") or \
            result.modification_level > ModificationLevel.FORM_FILLING or \
            not set(result.changed_form_fields) <= {sig.field_name} or \
            not _certifies_itself(reader, base, sig):
        _refuse(_("The signed file changes more than the signature: another page, a field, "
                  "an annotation or the content."))


def _certifies_itself(reader: PdfFileReader, base: int, sig) -> bool:
    """The catalog's /Perms is as prepared, or, new, names exactly this signature as the
    document's certification (/DocMDP) and nothing else (no /UR3 usage rights)."""
    before = reader.get_historical_root(base - 1).get("/Perms")
    after = reader.root.get("/Perms")
    if after is None or before is not None:
        return after == before
    after = after.get_object()
    named, own = after.raw_get("/DocMDP"), sig.sig_field.raw_get("/V")
    return set(after.keys()) == {"/DocMDP"} and getattr(named, "reference", None) is not None \
        and named.reference == getattr(own, "reference", None)
