"""Signing approved in the remote provider's app (``remote.ApprovalClient``, the SmartCA
shape): SaoY prepares the copy and its signed attributes as for the leader's own signer,
sends their digest to the provider and waits; the leader confirms on the phone; the
outcome is asked for by the leader's page (poll) or announced by the provider
(authenticated webhook) — either way SaoY asks the provider itself, so a webhook told
twice, or told a lie, changes nothing.  A signature that comes back is embedded and goes
through the same acceptance check as the plugin's file (``external.accept_upload``): the
registered certificate of that leader of that office, exactly one signature, nothing else
changed.  Refused or expired: the job fails, audited; the request keeps waiting.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from app import audit
from app.errors import NotFoundError
from app.scope import scoped
from app.storage import file_store
from app.timeutil import utcnow
from modules.signing import external, keys, pdf, remote
from modules.signing.models import ExternalSigningJob, JobState, SignedDocument
from modules.signing.signers import SignerUnavailableError


@dataclass(frozen=True)
class ForApproval:
    """What the leader approves: the prepared copy (``base``, what the acceptance check
    compares with) and the revision that waits for the signature value."""

    base: bytes
    external: pdf.PreparedExternal


@dataclass(frozen=True)
class Waiting:
    """A job as the leader's page shows it."""

    job_id: int
    state: str  # pending / done / failed / cancelled
    seconds_left: int
    message: str = ""


def _client(name: str) -> remote.ApprovalClient:
    provider = remote.providers(current_app.config).get(name)
    client = remote.service(provider) if provider is not None else None
    if not isinstance(client, remote.ApprovalClient):
        raise remote.RemoteSigningError(_("The remote signing service of this key is no "
                                          "longer declared on the server: ask the system "
                                          "administrator."))
    return client


def open_job(session: Session, user: Any, document_id: int, ready: ForApproval,
             batch: str | None = None) -> external.OpenedJob:
    """Send the digest of the signed attributes to the provider; the request waits for the
    leader's approval (one pending job per document, as for the plugin)."""
    doc = scoped(session, user, SignedDocument).get_or_404(document_id)
    key = keys.signer_key(session, doc.office_id, user.id)
    client = _client(key.remote_provider or "")
    external.cancel_jobs(session, user, doc.id, "signature requested again")
    pending = client.submit(key.remote_credential or "",
                            [hashlib.sha256(ready.external.signed_attrs).digest()],
                            f"SaoY: chứng thực bản sao, hồ sơ {doc.id}")
    job = ExternalSigningJob(
        office_id=doc.office_id, document_id=doc.id, user_id=user.id, state=JobState.pending,
        prepared_sha256=file_store().put_bytes(ready.base),
        pending_sha256=file_store().put_file(ready.external.pdf)[0],
        expires_at=pending.expires_at, batch=batch,
        document_digest=ready.external.document_digest.hex(),
        reserved_start=ready.external.reserved_start, reserved_end=ready.external.reserved_end,
        signed_attrs=base64.b64encode(ready.external.signed_attrs).decode(),
        remote_transaction=f"{client.provider.name}:{pending.transaction}")
    session.add(job)
    session.flush()
    audit.record(session, user, "remote_signature_requested", obj=job,
                 file_sha256=job.prepared_sha256, reason=client.provider.name)
    return external.OpenedJob(job.id, doc.id, "", "", job.prepared_sha256, pending.expires_at,
                              remote=client.provider.name)


def pending_for(session: Session, user: Any, document_id: int) -> Waiting | None:
    """The leader's approval still awaited for this document, if any (for the page)."""
    job = session.scalars(select(ExternalSigningJob).where(
        ExternalSigningJob.document_id == document_id, ExternalSigningJob.user_id == user.id,
        ExternalSigningJob.remote_transaction.is_not(None),
        ExternalSigningJob.state == JobState.pending)).first()
    return _shown(job) if job is not None else None


def refresh(session: Session, user: Any, job_id: int, roots: Any) -> Waiting:
    """The leader's page asks what became of their approval (only their own job)."""
    job = scoped(session, user, ExternalSigningJob).get_or_404(job_id)
    if job.user_id != user.id or job.remote_transaction is None:
        raise NotFoundError()
    message = settle(session, job, roots) if job.state is JobState.pending else ""
    return _shown(job, message)


def on_webhook(session: Session, provider_name: str, body: bytes,
               signature: str | None, roots: Any) -> bool:
    """The provider says a transaction moved: authenticated (HMAC of the body), then SaoY
    asks the provider itself.  False: not authentic (nothing done)."""
    provider = remote.providers(current_app.config).get(provider_name)
    client = remote.service(provider) if provider is not None else None
    if not isinstance(client, remote.ApprovalClient) or \
            not client.authentic_webhook(body, signature):
        return False
    try:
        transaction = str(json.loads(body or b"{}").get("transaction_id") or "")
    except (ValueError, AttributeError):
        raise NotFoundError() from None
    job = session.scalars(select(ExternalSigningJob).where(
        ExternalSigningJob.remote_transaction == f"{provider_name}:{transaction}")).first()
    if job is None:
        raise NotFoundError()
    if job.state is JobState.pending:  # told again after it was settled: nothing to do
        settle(session, job, roots)
    return True


def settle(session: Session, job: ExternalSigningJob, roots: Any) -> str:
    """Ask the provider about a pending job and act on the answer; returns what the leader
    should read (empty while it simply waits)."""
    name, _sep, transaction = (job.remote_transaction or "").partition(":")
    try:
        outcome = _client(name).outcome(transaction)
    except remote.RemoteSigningError as exc:  # the provider is down: ask again later
        return str(exc)
    if outcome.state == "pending":
        if job.expires_at is not None and job.expires_at < utcnow():
            return _fail(session, job, "expired")
        return ""
    if outcome.state != "signed":
        return _fail(session, job, outcome.state)
    try:
        data = _embedded(job, outcome.signatures[0] if outcome.signatures else b"")
        # The provider's word that the leader approved in time outweighs a late poll.
        job.expires_at = max(job.expires_at or utcnow(), utcnow() + dt.timedelta(minutes=1))
        external.accept_upload(session, job, data, roots)
    except (external.RefusedSignatureError, SignerUnavailableError) as exc:
        return _fail(session, job, "failed", str(exc))
    return ""


def _embedded(job: ExternalSigningJob, signature: bytes) -> bytes:
    cert = file_store().read_bytes(keys.signer_key(
        object_session(job), job.office_id, job.user_id).fingerprint)
    try:
        return pdf.finish_external(
            file_store().read_bytes(job.pending_sha256), bytes.fromhex(job.document_digest),
            job.reserved_start, job.reserved_end, base64.b64decode(job.signed_attrs), cert,
            signature).getvalue()
    except Exception:  # noqa: BLE001 - a signature value that cannot be embedded
        raise external.RefusedSignatureError(_("The remote signing service returned a "
                                               "signature that does not fit the "
                                               "document.")) from None


#: What the leader reads when the provider did not sign.
_FAILURES = {
    "refused": lambda: _("You declined the signing in your provider's app: nothing was "
                         "signed; the request is still waiting for your signature."),
    "expired": lambda: _("The time to approve in your provider's app ran out: nothing was "
                         "signed; press Sign digitally again."),
}


def _fail(session: Session, job: ExternalSigningJob, why: str, detail: str = "") -> str:
    message = detail or _FAILURES[why]()
    taken = session.execute(
        update(ExternalSigningJob).where(ExternalSigningJob.id == job.id,
                                         ExternalSigningJob.state == JobState.pending)
        .values(state=JobState.failed, finished_at=utcnow(), error=message[:500])
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(job)
    if taken == 1:
        audit.record(session, job.user, f"remote_signature_{why}", obj=job, reason=message,
                     from_state=JobState.pending.value, to_state=JobState.failed.value)
    return message


def _shown(job: ExternalSigningJob, message: str = "") -> Waiting:
    left = int((job.expires_at - utcnow()).total_seconds()) if job.expires_at else 0
    return Waiting(job.id, job.state.value, max(0, left), message or job.error or "")
