"""One answer out of four, by rule and in order: tampered, indeterminate, untrusted,
valid (with or without later changes)."""
from __future__ import annotations

from modules.signing.verification.report import (
    ROUTINE_KINDS,
    UNSEEN_KINDS,
    VISIBLE_KINDS,
    Change,
    RevisionReport,
    SignatureDetail,
)

#: What later revisions may change under a certification signature (DocMDP P).
DOCMDP_ALLOWED = {1: set(), 2: {"form_filling", "signature_appearance"},
                  3: {"form_filling", "signature_appearance", "annotation"}}


def docmdp_violated(signatures: list[SignatureDetail], revisions: list[RevisionReport]
                     ) -> bool:
    """A later revision changed more than the certification signature allows."""
    certified = next((s for s in signatures if s.certification_level and s.intact
                      and s.kind == "signature"), None)
    if certified is None:
        return False
    allowed = DOCMDP_ALLOWED.get(certified.certification_level, set())
    for report in revisions:
        if report.index <= certified.revision:
            continue
        if certified.certification_level == 1 and any(
                s.revision == report.index and s.kind == "signature" for s in signatures):
            return True  # no change at all means no new signature either
        if any((c.bbox or c.kind in VISIBLE_KINDS) and c.kind not in allowed
               and c.kind != UNATTRIBUTED for c in report.changes):
            return True
        if certified.certification_level == 1 and any(c.bbox for c in report.changes):
            return True  # whatever it was, P=1 allows nothing
    return False


#: A difference seen on a page whose revision's structure could not be read: what made
#: it (a permitted fill, or page content) is unknown.
UNATTRIBUTED = "unattributed"


def _unknowable(signatures: list[SignatureDetail], revisions: list[RevisionReport]) -> bool:
    """A difference no structure explains, where it decides the answer: no signature
    covers it, or the certification permits some changes and not others."""
    certified = next((s for s in signatures if s.certification_level and s.intact
                      and s.kind == "signature"), None)
    return any(c.kind == UNATTRIBUTED and c.bbox and (
        r.covered_by is None or (certified is not None and r.index > certified.revision))
        for r in revisions for c in r.changes)


def _permitted_uncovered(change: Change, level: int | None) -> bool:
    """A change no signature covers that the file's rules still permit: filling a field
    that existed when it was signed (ISO 32000: approval signatures and DocMDP P=2 let
    anyone fill forms), and annotations under P=3 — never content hidden under a field."""
    if change.kind == UNATTRIBUTED:
        return level != 1  # unknowable (below), unless nothing at all was permitted
    if change.kind == "form_filling":
        return change.prepared and level != 1
    return change.kind == "annotation" and level == 3  # noqa: PLR2004 - DocMDP P=3


def _certification(signatures: list[SignatureDetail]) -> int | None:
    return next((s.certification_level for s in signatures if s.certification_level
                 and s.intact and s.kind == "signature"), None)


def verdict(  # noqa: PLR0911 - one answer per rule, in order
        signatures: list[SignatureDetail], revisions: list[RevisionReport],
        notes: list[str]) -> str:
    """Anything not proven intact and covered is never ``valid`` nor ``untrusted``."""
    if any(s.error is None and not s.intact for s in signatures):
        return "tampered"
    if any("signature_value_invalid" in s.warnings for s in signatures):
        return "tampered"  # the bytes are as signed, but the signature is not the signer's
    level = _certification(signatures)
    if any(not _permitted_uncovered(c, level) for r in revisions if r.covered_by is None
           for c in r.changes if c.bbox or c.kind in VISIBLE_KINDS):
        return "tampered"
    if "docmdp_violated" in notes:
        return "tampered"
    if any(s.error or "signature_algorithm_unknown" in s.warnings for s in signatures) or \
            "revision_analysis_failed" in notes or "content_unchecked" in notes or \
            _unknowable(signatures, revisions):
        return "indeterminate"
    if any(c.kind in UNSEEN_KINDS for r in revisions if r.covered_by is None
           for c in r.changes):
        return "indeterminate"  # a change no signature covers that could not be seen
    if not all(s.trusted and s.valid for s in signatures) or "active_content" in notes:
        return "untrusted"
    if any(r.covered_by is None or not (c.prepared and c.kind in ROUTINE_KINDS)
           for r in revisions for c in r.changes if c.bbox or c.kind in VISIBLE_KINDS):
        return "valid_with_later_changes"
    return "valid"
