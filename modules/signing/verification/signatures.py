"""Each signature on its own: checked cryptographically by pyHanko (no difference
analysis), placed in the revision its byte range ends at, judged against the revocation
answers the file carries (or the responders, for trusted chains), and the PAdES level
the file reaches.  When pyHanko cannot read the file, the byte-range digests are
checked by hand."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError, RevokedError

from modules.signing import revocation
from modules.signing.validation import anchors, validation_context
from modules.signing.verification import timestamps
from modules.signing.verification.report import Explanation, SignatureDetail
from modules.signing.verification.verdict import verdict

log = logging.getLogger(__name__)

FULL_COVERAGE = {"ENTIRE_FILE", "ENTIRE_REVISION"}
UTC_OFFSET = dt.timedelta(hours=7)


def _name(cert: asn1_x509.Certificate, key: str) -> str | None:
    try:
        value = cert.subject.native.get(key)
    except Exception:  # noqa: BLE001 - a malformed subject is shown as unknown
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _algorithms(sig) -> tuple[list[str], list[str]]:
    names, warnings = [], []
    try:
        digest = sig.md_algorithm
        mechanism = sig.signer_info["signature_algorithm"]["algorithm"].native
        names.append(f"{digest}/{mechanism}")
        if "sha1" in (digest or "") or "sha1" in (mechanism or ""):
            warnings.append("sha1_signature")
    except Exception:  # noqa: BLE001
        pass
    try:
        for token in extract_tst_data_iter(sig.signer_info, signed=False):
            tst_info = token["encap_content_info"]["content"].parsed
            imprint = tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native
            names.append(f"timestamp:{imprint}")
            if imprint == "sha1":
                warnings.append("sha1_timestamp")
    except Exception:  # noqa: BLE001 - no readable timestamp token: nothing to report
        pass
    return names, warnings


def _chain(status) -> list[str]:
    return [_name(cert, "common_name") or cert.subject.human_friendly
            for cert in _path(status)]


def _path(status) -> list[asn1_x509.Certificate]:
    path = getattr(status, "validation_path", None)
    if path is None:
        return []
    try:
        return list(path.iter_certs(include_root=True))
    except Exception:  # noqa: BLE001
        return []


def signed_revision(sig, ends: list[int]) -> int | None:
    """The 0-based revision the signature's byte range ends at (None: no revision ends
    there).  Not pyHanko's ``signed_revision``: that is the revision that last wrote the
    signature dictionary, which a later update can rewrite.  Several cross-reference
    sections written in one save end at one offset (a linearized file's first-page and
    main sections): the signature closes the last of them."""
    try:
        _start, len1, start2, len2 = (int(v) for v in sig.byte_range)
    except (TypeError, ValueError):
        return None
    end = start2 + len2
    return len(ends) - 1 - ends[::-1].index(end) if end in ends else None


def placed_in(sig, ends: list[int]) -> int:
    """The 1-based revision a signature is reported in: the one its byte range ends at,
    else (no revision ends there) the one that wrote its dictionary."""
    revision = signed_revision(sig, ends)
    return (revision if revision is not None else sig.signed_revision) + 1


def check_signature(sig, roots, ends: list[int]) -> SignatureDetail:
    is_timestamp = sig.sig_object.get("/Type") == "/DocTimeStamp"
    revision = signed_revision(sig, ends)
    base = dict(field=str(sig.field_name or "?"),  # plain str: pyHanko strings hold the reader
                kind="timestamp" if is_timestamp else "signature",
                revision=placed_in(sig, ends))
    try:
        context = validation_context(roots)
        if is_timestamp:
            status, warnings = _document_timestamp(sig, context)
            cert = status.signing_cert
            ts_time = status.timestamp.isoformat() if status.timestamp else None
            signing_time, timestamp_time = ts_time, ts_time
        else:
            status, stamped, warnings = _signature(sig, context)
            cert = status.signing_cert
            timestamp_time = stamped.isoformat() if stamped else None
            signing_time = status.signer_reported_dt.isoformat() \
                if status.signer_reported_dt else None
    except Exception as exc:  # noqa: BLE001 - a signature we cannot even check
        log.info("signature %s not checkable: %r", sig.field_name, exc)
        return SignatureDetail(**base, signer=None, organisation=None, identity=None,
                               signing_time=None, timestamp_time=None,
                               local_time_as_utc=False, intact=False, valid=False,
                               trusted=False, chain=[], algorithms=[], warnings=[],
                               certification_level=None, error=type(exc).__name__)
    algorithms, more = _algorithms(sig) if not is_timestamp else ([], [])
    warnings += more
    local_as_utc = local_time_written_as_utc(signing_time, timestamp_time)
    coverage = getattr(getattr(status, "coverage", None), "name", None)
    intact = bool(status.intact) and coverage in FULL_COVERAGE and revision is not None
    if revision is not None and sig.signed_revision != revision:
        warnings.append("signature_dictionary_rewritten")
        intact = False
    if intact and not status.valid:  # the bytes are as signed, the value does not verify
        warnings.append("signature_value_invalid" if _known_mechanism(sig)
                        else "signature_algorithm_unknown")
    level = None
    try:
        mdp = sig.docmdp_level
        level = int(mdp.value) if mdp is not None else None
    except Exception:  # noqa: BLE001
        level = None
    return SignatureDetail(
        **base, signer=_name(cert, "common_name"),
        organisation=_name(cert, "organization_name"), identity=_name(cert, "user_id"),
        signing_time=signing_time, timestamp_time=timestamp_time,
        local_time_as_utc=local_as_utc, intact=intact,
        valid=bool(status.valid) and intact, trusted=bool(status.trusted),
        chain=_chain(status), coverage=coverage,
        algorithms=algorithms, warnings=warnings, certification_level=level,
        fingerprint=hashlib.sha256(cert.dump()).hexdigest() if cert is not None else None,
        path=[c.dump() for c in _path(status)] if status.trusted else [])


def _document_timestamp(sig, context) -> tuple[Any, list[str]]:
    """pyHanko's check of a document timestamp; a token labelled as plain data is checked
    by its content (modules.signing.verification.timestamps)."""
    try:
        return validate_pdf_timestamp(sig, context, skip_diff=True), []
    except SignatureValidationError:
        checked = timestamps.check_document_timestamp(sig, context)
        if checked is None:
            raise
        return checked, ["timestamp_mislabelled"]


def _signature(sig, context) -> tuple[Any, dt.datetime | None, list[str]]:
    """pyHanko's check of a signature and the time its timestamp proves.  A timestamp
    token pyHanko refuses for its label is set aside — it lies outside what the signer
    signed — the signature checked alone, and the token on its own."""
    usage = KeyUsageConstraints(key_usage={"digital_signature"}, match_all_key_usages=False)
    try:
        status = validate_pdf_signature(sig, context, skip_diff=True,
                                        key_usage_settings=usage)
    except SignatureValidationError:
        token = timestamps.set_aside_signature_timestamp(sig)
        if token is None:
            raise
    else:
        stamp = status.timestamp_validity
        return status, stamp.timestamp if stamp is not None else None, []
    status = validate_pdf_signature(sig, context, skip_diff=True, key_usage_settings=usage)
    stamp = timestamps.check_signature_timestamp(sig, token, context)
    if stamp is not None and stamp.intact and stamp.valid and stamp.trusted:
        return status, stamp.timestamp, ["timestamp_mislabelled"]
    return status, None, ["timestamp_unusable"]


def aware(value: str) -> dt.datetime:
    """A time from a signature; one written without a zone is taken as UTC."""
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def local_time_written_as_utc(signing: str | None, stamped: str | None) -> bool:
    """signingTime about 7 hours ahead of the TSA's time: Vietnam time labelled UTC."""
    if not signing or not stamped:
        return False
    try:
        delta = aware(signing) - aware(stamped)
    except ValueError:
        return False
    return abs(delta - UTC_OFFSET) < dt.timedelta(minutes=20)


# --- revocation and the long term -----------------------------------------------------------

def assess_revocation(reader: PdfFileReader, embedded: list, details: list[SignatureDetail],
                       roots) -> None:
    """Each signature's certificate judged with the revocation answers the file carries
    (no fetching in the child: ``confirm_revocation`` asks the responders afterwards, for
    trusted chains only), at the time the signature is proven (its timestamp) and now.  A
    certificate revoked before that time makes the signature untrusted; one that cannot be
    checked is said so ("unknown")."""
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:  # noqa: BLE001 - no /DSS (or an unreadable one): nothing embedded
        dss = None

    def carried(moment: dt.datetime | None) -> ValidationContext:
        settings = {"trust_roots": anchors(roots), "other_certs": list(roots),
                    "allow_fetching": False, "revocation_mode": "hard-fail", "moment": moment,
                    "retroactive_revinfo": moment is not None}
        return dss.as_validation_context(settings) if dss is not None else \
            ValidationContext(crls=[], ocsps=[], **settings)

    for sig, detail in zip(embedded, details, strict=True):
        if detail.kind != "signature" or not detail.intact:
            continue
        try:
            cert = sig.signer_cert
        except Exception:  # noqa: BLE001
            continue
        if not (cert.ocsp_urls or cert.crl_distribution_points):
            detail.revocation = "not_declared"
            continue
        detail.proven_at = detail.timestamp_time
        _judge(detail, revocation_status(cert, list(sig.other_embedded_certs or ()), carried,
                                         detail.timestamp_time), "embedded")


def revocation_status(cert: asn1_x509.Certificate, chain: list, context_at,
                      proven: str | None) -> str:
    """"good", "revoked", "revoked_since" or "unknown" for ``cert``, with the contexts
    ``context_at(moment)`` gives (the file's answers, or the responders' now).  An answer
    issued after the proven time still says whether the certificate was revoked before it
    (retroactive): that is how a copy outlives a later revocation."""
    moment = aware(proven) if proven else None
    at_proof = _revocation_at(cert, chain, context_at(moment))
    if at_proof == "good" and moment is not None and \
            _revocation_at(cert, chain, context_at(None)) == "revoked":
        return "revoked_since"
    return at_proof


def _revocation_at(cert, chain: list, context: ValidationContext) -> str:
    try:
        validator = CertificateValidator(cert, intermediate_certs=chain,
                                         validation_context=context)
        asyncio.run(validator.async_validate_usage(set()))
    except RevokedError:
        return "revoked"
    except InsufficientRevinfoError:
        return "unknown"
    except Exception:  # noqa: BLE001 - an untrusted path is judged elsewhere (trusted)
        return "unknown"
    return "good"


def _judge(detail: SignatureDetail, status: str, source: str) -> None:
    detail.revocation = status
    if status != "unknown":
        detail.revocation_source = source
    if status == "revoked":
        detail.trusted = detail.valid = False


def confirm_revocation(explanation: Explanation, roots, seconds: float, *,
                       most: int = 4) -> None:
    """Ask the responders about the signatures the file could not answer for — only for
    signers whose path was validated to our anchors (the addresses are then a trusted
    authority's, never the uploader's), at most ``most`` of them, all within ``seconds``
    (what the public page's budget has left).  Runs in the web process, after the
    sandboxed analysis; answers are kept (``revocation``'s cache) so a QR scan asks once.
    What does not answer in time stays "unknown"."""
    todo = [s for s in explanation.signatures
            if s.revocation == "unknown" and s.trusted and len(s.path) > 1][:most]
    if not todo or seconds <= 0 or explanation.error:
        return
    checks = []
    for detail in todo:
        path = [asn1_x509.Certificate.load(der) for der in detail.path]
        context_at = revocation.live_contexts(roots, path, seconds)
        checks.append((detail, path[-1], path[:-1], context_at))
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="revocation")
    futures = [pool.submit(revocation_status, cert, chain, context_at, detail.proven_at)
               for detail, cert, chain, context_at in checks]
    wait(futures, timeout=seconds)
    pool.shutdown(wait=False, cancel_futures=True)
    for (detail, *_rest), future in zip(checks, futures, strict=True):
        if future.done() and future.exception() is None:
            _judge(detail, future.result(), "fetched")
    revocation_notes(explanation.notes, explanation.signatures)
    explanation.verdict = verdict(explanation.signatures, explanation.revisions,
                                   explanation.notes)


def revocation_notes(notes: list[str], signatures: list[SignatureDetail]) -> None:
    for note, status in (("revocation_unknown", "unknown"),
                         ("revoked_since_signing", "revoked_since")):
        present = any(s.revocation == status for s in signatures)
        if present and note not in notes:
            notes.append(note)
        elif not present and note in notes:
            notes.remove(note)


def long_term_level(reader: PdfFileReader, signatures: list[SignatureDetail]) -> str:
    """How long the file stays verifiable, by PAdES baseline level: B-B (a signature),
    B-T (every signature timestamped), B-LT (and the chains' revocation answers in /DSS),
    B-LTA (and a document timestamp after the last signature, which an archive keeps
    renewing)."""
    signed = [s for s in signatures if s.kind == "signature"]
    stamps = [s for s in signatures if s.kind == "timestamp" and s.intact]
    try:
        dss = reader.root["/DSS"] if "/DSS" in reader.root else None
        revinfo = isinstance(dss, generic.DictionaryObject) and any(
            key in dss for key in ("/OCSPs", "/CRLs"))
    except Exception:  # noqa: BLE001 - an unreadable /DSS holds nothing to count on
        revinfo = False
    last = max((s.revision for s in signed), default=0)
    if revinfo and any(t.revision > last for t in stamps):
        return "B-LTA"
    timestamped = bool(signed) and all(s.timestamp_time for s in signed)
    if not timestamped:
        return "B-B"
    return "B-LT" if revinfo else "B-T"


_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def _known_mechanism(sig) -> bool:
    """Is the signature's algorithm one a verifier here computes (a value that does not
    verify under it is forged, not merely uncheckable)?"""
    try:
        return bool(sig.signer_info["signature_algorithm"].signature_algo)
    except Exception:  # noqa: BLE001 - asn1crypto does not know the OID
        return False


def byte_range_digests(data: bytes) -> list[bool | None]:
    """For each /ByteRange in the raw bytes: does the signed data's digest match the one
    the signature carries (None: cannot tell)?  Needs no PDF parser at all."""
    return list(digests_by_range(data).values())


def digests_by_range(data: bytes) -> dict[tuple[int, ...], bool | None]:
    """``byte_range_digests`` by byte range, to pair with the signatures pyHanko found."""
    from asn1crypto import cms

    results: dict[tuple[int, ...], bool | None] = {}
    for match in _BYTE_RANGE.finditer(data):
        start, len1, start2, len2 = key = tuple(int(v) for v in match.groups())
        try:
            if start != 0 or start2 + len2 > len(data) or start2 <= len1:
                results[key] = False  # a range past the end, or overlapping: forged
                continue
            hex_contents = data[len1:start2].strip().lstrip(b"<").rstrip(b">")
            signed = cms.ContentInfo.load(bytes.fromhex(hex_contents.decode()))["content"]
            encapsulated = signed["encap_content_info"]
            if encapsulated["content_type"].native == "tst_info":  # a document timestamp
                imprint = encapsulated["content"].parsed["message_imprint"]
                algorithm = imprint["hash_algorithm"]["algorithm"].native
                expected = imprint["hashed_message"].native
            else:
                info = signed["signer_infos"][0]
                algorithm = info["digest_algorithm"]["algorithm"].native
                expected = next(a["values"][0].native for a in info["signed_attrs"]
                                if a["type"].native == "message_digest")
            digest = hashlib.new(algorithm, data[:len1])
            digest.update(data[start2:start2 + len2])
            results[key] = digest.digest() == expected
        except Exception:  # noqa: BLE001 - not a signature we can read by hand
            results[key] = None
    return results
