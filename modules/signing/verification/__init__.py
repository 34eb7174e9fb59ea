"""Verification that explains: every signature, every revision after the first one,
what changed where, and who vouched for it — one verdict people can read.

Why not pyHanko's modification analysis alone: real Vietnamese documents (the leader
signs, then the organisation fills in number and date as page content and seals in
later revisions) are called "modified" by it, and it takes half a minute on a
30-page decree.  Here each signature is checked cryptographically (pyHanko, no diff
analysis), and each later revision is compared with the one before it:

* structurally — which pages reach an object (re)written in that revision, and
  whether the page's content, its annotations, a form field or a signature
  appearance changed, or pages were added or removed;
* visually — only those pages are rendered (poppler) before and after, and the
  differing regions are boxed.

A revision is covered by the first intact signature made in it or after it.

Hard cases (Mladenov et al. CCS 2019, Mainka et al. NDSS 2021): a signature is intact
only when it covers its whole revision (pyHanko's coverage level), and its revision is
the one its byte range ends at — not the one that last wrote its dictionary, which a
forger can rewrite; the object at every page position is compared between revisions
(a page tree redirected to a prepared page); any rewritten object a page draws (fonts,
images, forms, resources, appearance streams) is attributed to the pages reaching it and
rendered; certification (DocMDP) levels are enforced; a field's value that was shown when
signed and is replaced afterwards is "hidden or replaced" even when no render shows it
(readers asked to redraw fields from their values, which poppler does not always do).
When pyHanko cannot read the file, the byte-range digests are checked by hand; a timestamp
token it refuses for its label is checked by its content (``timestamps``); a revision
whose structure cannot be walked is judged by drawing every page (a difference then says
nothing of what made it: ``unattributed``, never a pass where that decides the answer).
Work is bounded (revisions, pages rendered, wall time, renderer memory): over budget is
``indeterminate`` with the reason, never a hang; every failure of the analysis is
``indeterminate``, never an error; content the PDF policy could not walk to the end is
never "nothing found".

The package follows those seams: ``signatures`` (and ``timestamps``), ``revisions``,
``rendering``, ``verdict``, and the report they fill (``report``); the PDF policy (active
content) is ``modules.signing.policy``, shared with intake and the signing paths.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader

from app import sandbox
from app.pdf_reader import read_pdf
from modules.signing import policy
from modules.signing.verification.rendering import (
    Drawings,
    Plan,
    locate,
    page_count,
    render_page,
)
from modules.signing.verification.report import (
    Budget,
    Change,
    Explanation,
    Limits,
    OverBudgetError,
    RevisionReport,
    SignatureDetail,
)
from modules.signing.verification.revisions import (
    PageTrees,
    page_refs,
    revision_ends,
    structural_changes,
)
from modules.signing.verification.signatures import (
    assess_revocation,
    aware,
    byte_range_digests,
    check_signature,
    confirm_revocation,
    digests_by_range,
    long_term_level,
    placed_in,
    revocation_notes,
)
from modules.signing.verification.verdict import docmdp_violated, verdict

__all__ = ["Change", "Explanation", "Limits", "RevisionReport", "SignatureDetail",
           "byte_range_digests", "confirm_revocation", "explain", "explain_bounded",
           "render_page", "revision_ends"]

log = logging.getLogger(__name__)


def explain(data: bytes, roots, *, previews: bool = False,
            limits: Limits | None = None) -> Explanation:
    """Check every signature and explain every revision after the first signature.  Never
    raises: what cannot be analysed within the budget is ``indeterminate`` with a reason."""
    if b"%PDF-" not in data[:1024]:
        return Explanation("unreadable", False, error="not-a-pdf")
    budget = Budget(limits or Limits())
    try:
        return _explain(data, roots, previews, budget)
    except OverBudgetError as exc:
        log.info("explain: over budget (%s)", exc)
        return Explanation("indeterminate", True, error=f"too_complex:{exc}")
    except Exception as exc:  # noqa: BLE001 - say what failed, never guess, never a 500
        log.warning("explain: analysis failed: %r", exc)
        return Explanation("indeterminate", True, error=f"analysis:{type(exc).__name__}")


def explain_bounded(data: bytes, roots, *, previews: bool = False,
                    limits: Limits | None = None, nice: int = 0) -> Explanation:
    """explain() in a child under hard limits (app.sandbox): what a public upload may
    cost the server is bounded even when a library loops or a page eats memory.  Work
    nobody waits for runs ``nice``."""
    limits = limits or Limits()
    try:
        return sandbox.run(_explain_from_der, data, tuple(c.dump() for c in roots), previews,
                           limits, bounds=sandbox.Bounds(limits.wall_seconds, limits.memory_mb,
                                                         nice))
    except sandbox.SandboxError as exc:
        log.info("explain: stopped in its sandbox (%s)", exc.reason)
        return Explanation("indeterminate", True, error=f"too_complex:{exc.reason}")


def _explain_from_der(data: bytes, roots: tuple[bytes, ...], previews: bool,
                      limits: Limits) -> Explanation:
    return explain(data, tuple(asn1_x509.Certificate.load(c) for c in roots),
                   previews=previews, limits=limits)


def _explain(  # noqa: C901, PLR0912, PLR0915 - to be cut up with the verifier
        data: bytes, roots, previews: bool, budget: Budget) -> Explanation:
    try:
        reader = read_pdf(data)
        embedded = list(reader.embedded_signatures)
        total = reader.xrefs.total_revisions
        ends = revision_ends(data, reader)
    except Exception as exc:  # noqa: BLE001 - a PDF whose structure cannot be trusted
        log.info("explain: unreadable structure: %r", exc)
        if any(ok is False for ok in byte_range_digests(data)):
            return Explanation("tampered", False, error=f"structure:{type(exc).__name__}",
                               notes=["byte_range_digest_mismatch"])
        return Explanation("indeterminate", False, error=f"structure:{type(exc).__name__}")
    if not embedded:
        return Explanation("indeterminate", True, error="no-signature")
    if total > budget.limits.max_revisions:
        raise OverBudgetError("revisions")
    first = min(placed_in(sig, ends) for sig in embedded)  # 1-based
    view = memoryview(data)

    def prefix(revision: int) -> memoryview:  # the file as it stood after that revision
        return view[:ends[revision - 1]]

    trees = PageTrees(reader)

    def page_of(revision: int, page: int) -> Any:  # 1-based both, as the renders' keys
        refs = trees.pages(revision - 1)
        return reader.get_historical_resolver(revision - 1)(refs[page - 1]) \
            if page <= len(refs) else None
    revisions: list[RevisionReport] = []
    notes: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        drawings = Drawings(prefix, page_of, pool, budget, previews)
        # The structure first, its pages sent to poppler; the signatures and the policy
        # are checked while they are drawn.
        plans = _planned(reader, range(first, total), first, budget, trees, prefix, drawings)
        signatures = [check_signature(sig, roots, ends) for sig in embedded]
        _checked_by_hand(data, embedded, signatures)
        assess_revocation(reader, embedded, signatures, roots)
        signatures.sort(key=lambda s: s.revision)
        content = foreign_content(reader)
        budget.check()
        if plans is None:
            notes.append("revision_analysis_failed")
        pages = plans[-1].pages[1] if plans else None
        try:
            for plan in plans or ():
                own = next((s.field for s in signatures if s.revision == plan.index), None)
                cover = next((s.field for s in signatures if s.revision >= plan.index
                              and s.intact), None)
                report = RevisionReport(plan.index, own, cover)
                locate(report, plan, drawings)
                revisions.append(report)
        except OverBudgetError:
            raise
        except Exception as exc:  # noqa: BLE001 - cannot compare: say so, do not guess
            log.info("explain: revision comparison failed: %r", exc)
            notes.append("revision_analysis_failed")
    if pages is None:
        try:
            pages = len(page_refs(reader.get_historical_resolver(total - 1)))
        except Exception:  # noqa: BLE001
            pages = None
    stamps = [s.timestamp_time for s in signatures if s.timestamp_time]
    try:
        if sorted(aware(t) for t in stamps) != [aware(t) for t in stamps]:
            notes.append("timestamps_out_of_order")
    except ValueError:
        notes.append("timestamps_out_of_order")
    if docmdp_violated(signatures, revisions):
        notes.append("docmdp_violated")
    revocation_notes(notes, signatures)
    if content is None:  # not walked to the end: active content cannot be ruled out
        notes.append("content_unchecked")
    elif policy.active(content):
        notes.append("active_content")
    return Explanation(verdict(signatures, revisions, notes), True, signatures, revisions,
                       pages, notes, content=[f.code for f in policy.active(content or [])],
                       long_term=long_term_level(reader, signatures))


def _planned(reader: PdfFileReader, revisions: range, first: int, budget: Budget,
             trees: PageTrees, prefix, drawings: Drawings) -> list[Plan] | None:
    """Each later revision's plan (what the structure says it touched), its drawings
    started; None when the revisions cannot be compared at all."""
    plans = []
    try:
        for revision in revisions:  # 0-based index of the later revision
            budget.check()
            try:
                kinds, before, after, render_all = structural_changes(
                    reader, revision, first - 1, budget, trees)
                plan = Plan(revision + 1, kinds, (before, after), render_all)
            except OverBudgetError:
                raise
            except Exception as exc:  # noqa: BLE001 - the structure cannot tell: the eye can
                log.info("explain: revision %s not read (%r): every page drawn", revision,
                         exc)
                plan = Plan(revision + 1, {}, (page_count(prefix(revision)),
                                               page_count(prefix(revision + 1))), True,
                            "unattributed")
            plan.draw(drawings)
            plans.append(plan)
    except OverBudgetError:
        raise
    except Exception as exc:  # noqa: BLE001 - cannot compare: say so, do not guess
        log.info("explain: revision analysis failed: %r", exc)
        return None
    return plans


def foreign_content(reader: PdfFileReader) -> list[policy.Finding] | None:
    """The PDF policy's findings on the file as a reader opens it (its last revision);
    None when an object cannot be read or the walk is over its budget — never "nothing
    found" for what was not looked at."""
    try:
        return policy.findings(reader.trailer)
    except Exception as exc:  # noqa: BLE001 - unreadable or too large: said, not hidden
        log.info("explain: the policy's walk stopped: %r", exc)
        return None


def _checked_by_hand(data: bytes, embedded: list, signatures: list[SignatureDetail]) -> None:
    """A signature pyHanko cannot check (an unusual CMS) still covers its revision when
    the digest of its byte range, computed by hand, is the one it carries: its bytes are
    as signed, only the signature itself is unchecked (the answer stays indeterminate)."""
    if not any(s.error for s in signatures):
        return
    by_hand = digests_by_range(data)
    for sig, detail in zip(embedded, signatures, strict=True):
        try:
            key = tuple(int(v) for v in sig.byte_range)
        except (TypeError, ValueError):
            continue
        if detail.error and by_hand.get(key) is True:
            detail.intact = True
            detail.warnings.append("checked_by_hand")
