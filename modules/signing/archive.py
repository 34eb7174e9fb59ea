"""Copies that outlive their certificates: PAdES B-LTA at delivery.

A citizen presents a copy years after it was issued, when the leader's certificate has
expired or been revoked since.  At delivery the copy gets, in incremental updates that the
leader's certification (DocMDP) allows: a ``/DSS`` holding every certificate of the
leader's, the seal's and the timestamps' chains with the OCSP and CRL answers about them
(fetched now, by the revocation policy), then a document timestamp whose own chain and
revocation go into the ``/DSS`` too.  That is what lets anyone validate the copy with no
network and after the certificates expire; a later archive timestamp (``renew``) carries
it past the timestamp authority's own certificate.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Iterable

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper, TimestampDSSContentSettings
from pyhanko.sign.validation import add_validation_info
from pyhanko.sign.validation.dss import collect_validation_info
from pyhanko.sign.validation.generic_cms import extract_certificate_info
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from app.pdf_reader import read_pdf
from modules.signing import revocation

#: What making the archive raises when a chain cannot be validated (untrusted TSA, …).
ARCHIVE_ERRORS = (SigningError, PathBuildingError, PathValidationError)
ARCHIVE_FIELD = "LuuTruDaiHan"  # the document timestamp's field: "long-term archive"
TIMESTAMP_BYTES = 16 * 1024
#: The /DSS written in the timestamp's own revision (so no /VRI, which names the stamp).
_BEFORE_STAMP = TimestampDSSContentSettings(update_before_ts=True, include_vri=False)


def embedded_certs(signatures: Iterable) -> list[asn1_x509.Certificate]:
    """Every certificate the signatures carry (their chains), for the fetch policy."""
    found: list[asn1_x509.Certificate] = []
    for sig in signatures:
        found.append(sig.signer_cert)
        found.extend(sig.other_embedded_certs or ())
    return found


def make_lta(data: bytes, roots: tuple[asn1_x509.Certificate, ...], timestamper,
             tsa_certs: Iterable[asn1_x509.Certificate] = ()) -> bytes:
    """The copy as delivered, in one incremental update: a ``/DSS`` with every chain and
    its revocation answers (the signatures' and the TSA's, whose certificate the
    timestamper learnt from an earlier stamp), then a document timestamp over it.  Raises
    revocation's errors (revoked: refused; no answer: 503) and the timestamper's.  One
    validation context serves every step: what it fetched once is not asked again."""
    signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    context = revocation.fetching_context(roots, [*embedded_certs(signatures), *tsa_certs])
    paths = [path for sig in signatures
             for path in asyncio.run(collect_validation_info(sig, context))]
    out, watched = io.BytesIO(), _Watched(timestamper)
    PdfTimeStamper(watched, field_name=ARCHIVE_FIELD).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(data), strict=False), "sha256",
        validation_context=context, validation_paths=paths, bytes_reserved=TIMESTAMP_BYTES,
        dss_settings=_BEFORE_STAMP, output=out)
    if watched.stamped_by() in watched.prepared_for:
        return out.getvalue()
    # The TSA answered with another certificate than the one prepared for (a rollover, a
    # load balancer): its chain's answers go in one more update, as PAdES allows.
    stamp = PdfFileReader(out, strict=False).embedded_signatures[-1]
    again = io.BytesIO()
    add_validation_info(stamp, context, add_vri_entry=False, output=again)
    return again.getvalue()


class _Watched:
    """The timestamper, noting which TSA certificates the /DSS was prepared for and which
    one signed the token (so the file need not be parsed again to know)."""

    def __init__(self, inner) -> None:
        self.inner, self.token, self.prepared_for = inner, None, set()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def validation_paths(self, context):
        async for path in self.inner.validation_paths(context):
            self.prepared_for.add(path.leaf.issuer_serial)
            yield path

    async def async_timestamp(self, message_digest, md_algorithm):
        self.token = await self.inner.async_timestamp(message_digest, md_algorithm)
        return self.token

    def stamped_by(self) -> bytes | None:
        if self.token is None:
            return None
        return extract_certificate_info(self.token["content"]).signer_cert.issuer_serial


#: How many of the last revisions are searched for the archive timestamp before every
#: signature of the file is read (a stamp and its /DSS are one or two updates).
LAST_REVISIONS = 3


def stamp_expiry(data: bytes) -> dt.datetime | None:
    """When the certificate of the file's last document timestamp expires (UTC, naive):
    the archive must be stamped again before then.  Looked for in the last few revisions
    first: reading every signature of a freshly stamped copy again was a fifth of a
    delivery."""
    reader = read_pdf(data)
    xrefs = reader.xrefs
    for revision in range(xrefs.total_revisions - 1,
                          max(xrefs.total_revisions - 1 - LAST_REVISIONS, -1), -1):
        for ref in xrefs.explicit_refs_in_revision(revision):
            obj = reader.get_object(ref)
            if isinstance(obj, generic.DictionaryObject) and \
                    obj.get("/Type") == "/DocTimeStamp" and "/Contents" in obj:
                signed_data = cms.ContentInfo.load(bytes(obj["/Contents"]))["content"]
                return _expiry(extract_certificate_info(signed_data).signer_cert)
    stamps = [s for s in reader.embedded_signatures if s.sig_object_type == "/DocTimeStamp"]
    if not stamps:
        return None
    return _expiry(max(stamps, key=lambda s: s.signed_revision).signer_cert)


def _expiry(cert: asn1_x509.Certificate) -> dt.datetime:
    return cert.not_valid_after.astimezone(dt.UTC).replace(tzinfo=None)


def renew(data: bytes, roots: tuple[asn1_x509.Certificate, ...], timestamper,
          tsa_certs: Iterable[asn1_x509.Certificate] = ()) -> bytes:
    """One more archive timestamp over the copy, after fresh validation data for the last
    timestamp's chain (without it, the copy fails once the old TSA certificate expires:
    "CRL is not recent enough")."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    context = revocation.fetching_context(
        roots, [*embedded_certs(reader.embedded_signatures), *tsa_certs])
    out = io.BytesIO()
    PdfTimeStamper(timestamper, field_name=None).update_archival_timestamp_chain(
        reader, context, in_place=False, output=out)
    return out.getvalue()
