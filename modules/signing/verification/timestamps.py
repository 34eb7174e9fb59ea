"""Timestamp tokens pyHanko refuses but whose answer is knowable.

Some time-stamping authorities label the token's content ``id-data`` instead of
``id-ct-TSTInfo`` (RFC 3161 asks for the latter); the TSTInfo inside is the same and the
token's signature covers it.  pyHanko stops at the label ("SignedData does not
encapsulate TSTInfo"), which made an honest signature — or a whole document timestamp —
``indeterminate``.  Here such a token is checked as RFC 3161 describes, whatever its
label: the CMS signature over its content (as labelled), the TSA's certificate path with
the time-stamping usage, and the message imprint against what it stamps.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core, tsp
from pyhanko.sign.validation.generic_cms import cms_basic_validation, message_imprint_checker
from pyhanko.sign.validation.status import TimestampSignatureStatus

#: The unsigned attribute that carries a signature's timestamp token.
SIGNATURE_TIMESTAMP = "signature_time_stamp_token"


def tst_info(signed_data: cms.SignedData) -> tsp.TSTInfo | None:
    """The TSTInfo a token encapsulates, under whatever content type; None if none."""
    content = signed_data["encap_content_info"]["content"]
    if content is core.VOID or content.contents is None:
        return None
    try:
        info = tsp.TSTInfo.load(content.contents)
        info.native  # noqa: B018 - parse it all now: a broken one is no TSTInfo
    except Exception:  # noqa: BLE001 - not a TSTInfo at all
        return None
    return info


def mislabelled(signed_data: cms.SignedData) -> bool:
    """A token whose content is a TSTInfo labelled as something else."""
    return signed_data["encap_content_info"]["content_type"].native != "tst_info" and \
        tst_info(signed_data) is not None


def check_token(signed_data: cms.SignedData, context, imprint: Callable[[str], bytes]
                ) -> TimestampSignatureStatus | None:
    """pyHanko's token validation, reading the TSTInfo whatever its label; None when the
    token carries no TSTInfo.  ``imprint(algorithm)`` is the digest it must stamp."""
    info = tst_info(signed_data)
    if info is None:
        return None
    kwargs = asyncio.run(cms_basic_validation(
        signed_data, validation_context=context,
        status_kwargs={"timestamp": info["gen_time"].native},
        key_usage_settings=TimestampSignatureStatus.default_usage_constraints()))
    stamped = info["message_imprint"]
    if imprint(stamped["hash_algorithm"]["algorithm"].native) != \
            stamped["hashed_message"].native:
        kwargs["intact"] = False
    return TimestampSignatureStatus(**kwargs)


@dataclass
class CheckedDocumentTimestamp:
    """What check_signature reads of a document timestamp pyHanko would not check."""

    token: TimestampSignatureStatus
    coverage: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.token, name)


def check_document_timestamp(sig, context) -> CheckedDocumentTimestamp | None:
    """A document timestamp whose token is mislabelled: its imprint must be the digest of
    the file's signed byte range."""
    signed_data = sig.signed_data
    if not mislabelled(signed_data):
        return None
    stream = sig.reader.stream

    def imprint(algorithm: str) -> bytes:
        digest = hashlib.new(algorithm)
        values = [int(v) for v in sig.byte_range]
        for start, length in zip(values[::2], values[1::2], strict=True):
            stream.seek(start)
            digest.update(stream.read(length))
        return digest.digest()

    status = check_token(signed_data, context, imprint)
    return CheckedDocumentTimestamp(status, sig.evaluate_signature_coverage()) \
        if status is not None else None


def set_aside_signature_timestamp(sig) -> cms.SignedData | None:
    """Take a mislabelled signature-timestamp token out of the signer's unsigned
    attributes (they are outside what the signer signed), so the signature itself can be
    checked; the token is returned to be checked on its own."""
    info = sig.signer_info
    attributes = info["unsigned_attrs"]
    if attributes is core.VOID:
        return None
    for attribute in attributes:
        if attribute["type"].native != SIGNATURE_TIMESTAMP:
            continue
        for token in attribute["values"]:
            signed_data = token["content"]
            if mislabelled(signed_data):
                kept = [a for a in attributes if a["type"].native != SIGNATURE_TIMESTAMP]
                info["unsigned_attrs"] = cms.CMSAttributes(kept)
                return signed_data
    return None


def check_signature_timestamp(sig, signed_data: cms.SignedData, context
                              ) -> TimestampSignatureStatus | None:
    """A signature timestamp token checked on its own: it must stamp the signature value."""
    return check_token(signed_data, context, message_imprint_checker(sig.signer_info))
