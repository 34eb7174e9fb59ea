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

import datetime as dt
import io
from collections.abc import Iterable

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.validation import add_validation_info
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from modules.signing import revocation

#: What making the archive raises when a chain cannot be validated (untrusted TSA, …).
ARCHIVE_ERRORS = (SigningError, PathBuildingError, PathValidationError)
ARCHIVE_FIELD = "LuuTruDaiHan"  # the document timestamp's field: "long-term archive"
TIMESTAMP_BYTES = 16 * 1024


def embedded_certs(signatures: Iterable) -> list[asn1_x509.Certificate]:
    """Every certificate the signatures carry (their chains), for the fetch policy."""
    found: list[asn1_x509.Certificate] = []
    for sig in signatures:
        found.append(sig.signer_cert)
        found.extend(sig.other_embedded_certs or ())
    return found


def make_lta(data: bytes, roots: tuple[asn1_x509.Certificate, ...], timestamper,
             tsa_certs: Iterable[asn1_x509.Certificate] = ()) -> bytes:
    """The copy as delivered: ``/DSS`` for every signature, then a document timestamp
    with its own validation data.  Raises revocation's errors (revoked: refused; no answer:
    503) and the timestamper's.  One validation context serves every step (what it fetched
    once is not asked again), and the file is parsed once per update: reading a
    signature's contents is most of the cost."""
    signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    context = revocation.fetching_context(roots, [*embedded_certs(signatures), *tsa_certs])
    current = data
    for index in range(len(signatures)):
        if index:  # the signature as read from the file the last update made
            signatures = PdfFileReader(io.BytesIO(current), strict=False).embedded_signatures
        out = io.BytesIO()
        add_validation_info(signatures[index], context, add_vri_entry=False, output=out)
        current = out.getvalue()
    writer = IncrementalPdfFileWriter(io.BytesIO(current), strict=False)
    out = io.BytesIO()
    PdfTimeStamper(timestamper, field_name=ARCHIVE_FIELD).timestamp_pdf(
        writer, "sha256", validation_context=context, bytes_reserved=TIMESTAMP_BYTES,
        output=out)
    return out.getvalue()


def stamp_expiry(data: bytes) -> dt.datetime | None:
    """When the certificate of the file's last document timestamp expires (UTC, naive):
    the archive must be stamped again before then."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    stamps = [s for s in reader.embedded_signatures if s.sig_object_type == "/DocTimeStamp"]
    if not stamps:
        return None
    last = max(stamps, key=lambda s: s.signed_revision)
    return last.signer_cert.not_valid_after.astimezone(dt.UTC).replace(tzinfo=None)


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
