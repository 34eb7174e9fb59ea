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
rendered; certification (DocMDP) levels are enforced.  When pyHanko cannot read the
file, the byte-range digests are checked by hand.  Work is bounded (revisions, pages
rendered, wall time, renderer memory): over budget is ``indeterminate`` with the reason,
never a hang; every failure of the analysis is ``indeterminate``, never an error.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import logging
import math
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from PIL import Image, ImageChops, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError, RevokedError

from app import sandbox
from modules.signing import policy, revocation
from modules.signing.validation import anchors, validation_context

log = logging.getLogger(__name__)

RENDER_DPI = 50
MAX_PAGE_TREE_DEPTH = 64  # a page tree deeper than this is hostile, not a document
MAX_DRAWING_DEPTH = 12  # forms drawn in forms: deeper nesting draws nothing real
PIXEL_NOISE = 4  # grey levels two renders of one page may differ by
FULL_COVERAGE = {"ENTIRE_FILE", "ENTIRE_REVISION"}
#: What later revisions may change under a certification signature (DocMDP P).
DOCMDP_ALLOWED = {1: set(), 2: {"form_filling", "signature_appearance"},
                  3: {"form_filling", "signature_appearance", "annotation"}}


@dataclass(frozen=True)
class Limits:
    """The budget of one verification (public endpoints: anyone can send anything)."""

    max_revisions: int = 30
    max_render_pages: int = 60  # page renders in one verification
    seconds: float = 12.0  # the analysis' own deadline, checked between steps
    wall_seconds: float = 15.0  # the child that runs it is killed at this one
    memory_mb: int = 300  # what the analysis may add to its child
    render_seconds: float = 8.0
    render_memory_mb: int = 300  # each renderer (poppler) on its own
    render_pixels: int = 2_000_000  # a page is drawn at fewer pixels than this
    max_objects: int = 200_000  # objects read while attributing rewritten ones to pages


class OverBudgetError(Exception):
    """The file is too complex to verify here; str() names the budget."""


class _Budget:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.renders = limits.max_render_pages
        self.objects = limits.max_objects

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise OverBudgetError("time")

    def take_renders(self, count: int) -> None:
        self.renders -= count
        if self.renders < 0:
            raise OverBudgetError("pages")
        self.check()

    def take_object(self) -> None:
        self.objects -= 1
        if self.objects < 0:
            raise OverBudgetError("objects")
#: Content changes beyond these kinds go past what a certification (DocMDP P=2) allows.
ROUTINE_KINDS = {"form_filling", "signature_appearance"}
VISIBLE_KINDS = {"page_added", "page_removed"}
UTC_OFFSET = dt.timedelta(hours=7)


@dataclass
class Change:
    page: int  # 1-based
    kind: str  # form_filling, signature_appearance, annotation, page_content, page_added…
    bbox: list[float] | None  # x1, y1, x2, y2 in PDF points from the bottom left
    #: Fills a field that already existed (empty) when the first signature was made: the
    #: first signer saw the box this content went into.
    prepared: bool = False


@dataclass
class RevisionReport:
    index: int  # 1-based revision of the file
    signature: str | None  # the signature made in this revision, if any
    covered_by: str | None  # the first intact signature made in it or later
    changes: list[Change] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)  # page renders for the web page

    @property
    def visible(self) -> bool:
        return any(c.bbox or c.kind in VISIBLE_KINDS for c in self.changes)


@dataclass
class SignatureDetail:
    field: str
    kind: str  # "signature" or "timestamp" (document timestamp)
    revision: int  # 1-based revision the signature closes
    signer: str | None
    organisation: str | None
    identity: str | None  # CCCD / CMND / MST from the subject UID
    signing_time: str | None
    timestamp_time: str | None
    local_time_as_utc: bool  # the signer's software wrote Vietnam time with a Z
    intact: bool
    valid: bool
    trusted: bool
    chain: list[str]
    algorithms: list[str]
    warnings: list[str]
    certification_level: int | None  # DocMDP P (1 no change, 2 forms + signing, 3 + annots)
    error: str | None = None
    fingerprint: str | None = None  # SHA-256 of the signer's certificate
    coverage: str | None = None  # pyHanko's coverage level: ENTIRE_FILE / ENTIRE_REVISION…
    #: Revocation of the signer's certificate, from the answers the file carries (/DSS):
    #: "good", "revoked" (before the time the signature is proven: never valid),
    #: "revoked_since" (valid when signed, revoked later), "unknown" (the certificate names
    #: a responder and the file holds no answer), "not_declared" (it names none).
    revocation: str | None = None
    #: Where the revocation answer came from: "embedded" (the file's /DSS) or "fetched"
    #: (asked now of the certificate's responder, for a trusted chain only).
    revocation_source: str | None = None
    #: The time the signature is proven to have existed (its timestamp), else None.
    proven_at: str | None = None
    #: The validated path (DER, anchor first) of a trusted signer: the only certificates
    #: whose responders the verifier may ask.  Internal: not in the public answer.
    path: list[bytes] = field(default_factory=list, repr=False)


@dataclass
class Explanation:
    verdict: str
    readable: bool
    signatures: list[SignatureDetail] = field(default_factory=list)
    revisions: list[RevisionReport] = field(default_factory=list)
    pages: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: Active content the PDF policy found (codes; ``policy.label`` names them).
    content: list[str] = field(default_factory=list)
    #: PAdES baseline level the file reaches: B-B, B-T, B-LT or B-LTA (``_long_term``).
    long_term: str | None = None

    def to_dict(self, previews: bool = False) -> dict[str, Any]:
        data = asdict(self)
        for signature in data["signatures"]:
            signature.pop("path", None)
        for revision in data["revisions"]:
            if not previews:
                revision.pop("previews", None)
        return data


# --- signatures ----------------------------------------------------------------------------

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
    signature dictionary, which a later update can rewrite."""
    try:
        _start, len1, start2, len2 = (int(v) for v in sig.byte_range)
    except (TypeError, ValueError):
        return None
    end = start2 + len2
    return ends.index(end) if end in ends else None


def _check_signature(sig, roots, ends: list[int]) -> SignatureDetail:
    is_timestamp = sig.sig_object.get("/Type") == "/DocTimeStamp"
    revision = signed_revision(sig, ends)
    base = dict(field=str(sig.field_name or "?"),  # plain str: pyHanko strings hold the reader
                kind="timestamp" if is_timestamp else "signature",
                revision=(revision if revision is not None else sig.signed_revision) + 1)
    try:
        context = validation_context(roots)
        if is_timestamp:
            status = validate_pdf_timestamp(sig, context, skip_diff=True)
            cert = status.signing_cert
            ts_time = status.timestamp.isoformat() if status.timestamp else None
            signing_time, timestamp_time = ts_time, ts_time
        else:
            status = validate_pdf_signature(
                sig, context, skip_diff=True, key_usage_settings=KeyUsageConstraints(
                    key_usage={"digital_signature"}, match_all_key_usages=False))
            cert = status.signing_cert
            ts = status.timestamp_validity
            timestamp_time = ts.timestamp.isoformat() if ts is not None and ts.timestamp \
                else None
            signing_time = status.signer_reported_dt.isoformat() \
                if status.signer_reported_dt else None
    except Exception as exc:  # noqa: BLE001 - a signature we cannot even check
        log.info("signature %s not checkable: %r", sig.field_name, exc)
        return SignatureDetail(**base, signer=None, organisation=None, identity=None,
                               signing_time=None, timestamp_time=None,
                               local_time_as_utc=False, intact=False, valid=False,
                               trusted=False, chain=[], algorithms=[], warnings=[],
                               certification_level=None, error=type(exc).__name__)
    algorithms, warnings = _algorithms(sig) if not is_timestamp else ([], [])
    local_as_utc = _local_time_written_as_utc(signing_time, timestamp_time)
    coverage = getattr(getattr(status, "coverage", None), "name", None)
    intact = bool(status.intact) and coverage in FULL_COVERAGE and revision is not None
    if revision is not None and sig.signed_revision != revision:
        warnings.append("signature_dictionary_rewritten")
        intact = False
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


def _aware(value: str) -> dt.datetime:
    """A time from a signature; one written without a zone is taken as UTC."""
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _local_time_written_as_utc(signing: str | None, stamped: str | None) -> bool:
    """signingTime about 7 hours ahead of the TSA's time: Vietnam time labelled UTC."""
    if not signing or not stamped:
        return False
    try:
        delta = _aware(signing) - _aware(stamped)
    except ValueError:
        return False
    return abs(delta - UTC_OFFSET) < dt.timedelta(minutes=20)


# --- revisions -----------------------------------------------------------------------------

def revision_ends(data: bytes, reader: PdfFileReader) -> list[int]:
    """Byte length of the file as it stood after each revision."""
    eofs = [m.end() for m in re.finditer(rb"%%EOF[ \t]*(\r\n|\r|\n)?", data)]
    ends, reach = [], 0
    sections = reader.xrefs._xref_sections
    for revision in range(reader.xrefs.total_revisions):
        reach = max(reach, sections[revision].meta_info.end_location)
        ends.append(next((e for e in eofs if e >= reach), len(data)))
    return ends


def _ref(raw) -> generic.Reference | None:
    """The reference an indirect value points to (comparable across revisions)."""
    if isinstance(raw, generic.IndirectObject):
        return generic.Reference(raw.idnum, raw.generation)
    return None


def _deref(resolver, value):
    ref = _ref(value)
    return resolver(ref) if ref is not None else value


def _raw_items(array) -> list:
    """An array's items without dereferencing them."""
    if isinstance(array, generic.ArrayObject):
        return [array.raw_get(i) for i in range(len(array))]
    return []


def _page_tree(resolver) -> tuple[list[generic.Reference], set]:
    """The page objects in order, and the refs of the tree's nodes (and of the catalog)."""
    root = resolver(resolver.root_ref)
    found: list[generic.Reference] = []
    nodes: set = set()

    def walk(raw, depth: int) -> None:
        node = _deref(resolver, raw)
        if depth > MAX_PAGE_TREE_DEPTH or not isinstance(node, generic.DictionaryObject):
            return
        if "/Kids" in node:
            if (ref := _ref(raw)) is not None:
                nodes.add(ref)
            kids = node.raw_get("/Kids")
            if (kids_ref := _ref(kids)) is not None:
                nodes.add(kids_ref)
            for kid in _raw_items(_deref(resolver, kids)):
                walk(kid, depth + 1)
        elif (ref := _ref(raw)) is not None:
            found.append(ref)

    walk(root.raw_get("/Pages"), 0)
    return found, nodes


def _page_refs(resolver) -> list[generic.Reference]:
    return _page_tree(resolver)[0]


class _Trees:
    """Page trees per revision: a revision that rewrote no node of the tree (nor the
    catalog) has the previous one's — pyHanko re-reads object streams per object, so the
    30 pages of a decree are not walked again for every revision."""

    def __init__(self, reader: PdfFileReader):
        self.reader, self.known = reader, {}

    def pages(self, revision: int) -> list[generic.Reference]:
        if revision not in self.known:
            previous = self.known.get(revision - 1)
            written = set(self.reader.xrefs.explicit_refs_in_revision(revision))
            if previous is not None and not (written & previous[1]) and \
                    not self._pages_moved(revision, written):
                self.known[revision] = previous
            else:
                self.known[revision] = _page_tree(
                    self.reader.get_historical_resolver(revision))
        return self.known[revision][0]

    def _pages_moved(self, revision: int, written: set) -> bool:
        """Did the catalog, rewritten in this revision, point /Pages elsewhere?"""
        before = self.reader.get_historical_resolver(revision - 1)
        after = self.reader.get_historical_resolver(revision)
        if before.root_ref not in written and after.root_ref == before.root_ref:
            return False
        return not _same(before, _entry(before(before.root_ref), "/Pages"),
                         after, _entry(after(after.root_ref), "/Pages"))


def _contents_key(resolver, page_ref) -> tuple:
    """The page's content streams as references (what the page draws, by identity)."""
    page = resolver(page_ref)
    raw = page.raw_get("/Contents") if "/Contents" in page else None
    value = _deref(resolver, raw)
    items = _raw_items(value) if isinstance(value, generic.ArrayObject) else [raw]
    return tuple(_ref(item) for item in items)


def _annotation_kind(obj) -> str:
    if obj.get("/Subtype") != "/Widget":
        return "annotation"
    field_type = obj.get("/FT")
    parent = obj.get("/Parent") if "/Parent" in obj else None
    if field_type is None and isinstance(parent, generic.DictionaryObject):
        field_type = parent.get("/FT")
    return "signature_appearance" if field_type == "/Sig" else "form_filling"


ANNOTATION_TYPES = {"/Text", "/Link", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon",
                    "/PolyLine", "/Highlight", "/Underline", "/Squiggly", "/StrikeOut",
                    "/Stamp", "/Caret", "/Ink", "/Popup", "/FileAttachment", "/Sound",
                    "/Movie", "/Widget", "/Screen", "/PrinterMark", "/TrapNet", "/Watermark",
                    "/3D", "/Redact"}


#: Catalog entries that change what is shown (optional content) or run something.
_CATALOG_DRAWN = ("/Pages", "/OCProperties")
_CATALOG_ACTIVE = ("/OpenAction", "/AA", "/Names")
#: Page-tree node entries its pages inherit.
_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
#: Keys of dictionaries that can take part in drawing (resources, fonts, graphics states,
#: appearances, patterns, shadings, forms, images).  A rewritten dictionary without any
#: (document info, logical structure …) cannot change what a page shows.
_DRAWN_KEYS = {"/Font", "/XObject", "/ExtGState", "/ColorSpace", "/Pattern", "/Shading",
               "/Properties", "/BaseFont", "/FontDescriptor", "/FontFile", "/FontFile2",
               "/FontFile3", "/CharProcs", "/Widths", "/W", "/Encoding", "/DescendantFonts",
               "/ToUnicode", "/N", "/R", "/D", "/CA", "/ca", "/SMask", "/BM", "/LW", "/TR",
               "/TR2", "/Subtype", "/PatternType", "/ShadingType", "/Function",
               "/FunctionType", "/BBox", "/Matrix", "/Filter", "/OC", "/Mask", "/Decode",
               "/Differences", "/FontMatrix", "/MK", "/AP"}
_OPTIONAL_CONTENT = {"/OCGs", "/ON", "/OFF", "/Usage", "/Intent"}
#: Links that point back up or sideways, never to what a page draws.
_BACK_LINKS = {"/Parent", "/P", "/Kids", "/Prev", "/Next", "/First", "/Last", "/Dest",
               "/StructParent", "/StructParents", "/V", "/Popup", "/IRT"}


def _same(resolver_a, raw_a, resolver_b, raw_b) -> bool:
    """Two raw values denote the same thing (same reference, or equal direct values)."""
    ref_a, ref_b = _ref(raw_a), _ref(raw_b)
    if ref_a is not None or ref_b is not None:
        return ref_a == ref_b
    return str(raw_a) == str(raw_b)


def _entry(obj, key):
    return obj.raw_get(key) if isinstance(obj, generic.DictionaryObject) and key in obj else None


def _drawn_by_pages(resolver, pages: list[generic.Reference], budget: _Budget
                    ) -> dict[generic.Reference, set[tuple[int, str]]]:
    """Every object a page draws — its resources (fonts, images, forms, their own resources,
    font programs …) and its annotations' appearances — mapped to (page index, kind)."""
    found: dict[generic.Reference, set[tuple[int, str]]] = {}

    def walk(raw, index: int, kind: str, seen: set, depth: int) -> None:
        ref = _ref(raw)
        if ref is not None:
            if ref in seen or depth > MAX_DRAWING_DEPTH:
                return
            seen.add(ref)
            found.setdefault(ref, set()).add((index, kind))
            budget.take_object()
        value = _deref(resolver, raw)
        if isinstance(value, generic.DictionaryObject):  # streams are dictionaries too
            for key in list(value.keys()):
                if key not in _BACK_LINKS:
                    walk(value.raw_get(key), index, kind, seen, depth + 1)
        elif isinstance(value, generic.ArrayObject):
            for item in _raw_items(value):
                walk(item, index, kind, seen, depth + 1)

    for index, page_ref in enumerate(pages):
        page = resolver(page_ref)
        walk(_entry(page, "/Resources"), index, "page_content", set(), 0)
        annots = _deref(resolver, _entry(page, "/Annots"))
        for raw in _raw_items(annots):
            annot = _deref(resolver, raw)
            if isinstance(annot, generic.DictionaryObject):
                walk(_entry(annot, "/AP"), index, _annotation_kind(annot), set(), 0)
    return found


def _may_draw(obj: generic.DictionaryObject) -> bool:
    """Could this rewritten dictionary or stream change what some page shows?"""
    subtype, type_ = obj.get("/Subtype"), obj.get("/Type")
    if isinstance(obj, generic.StreamObject):
        # XMP metadata, object and xref streams are never drawn (a drawn stream needs a
        # /Subtype of /Form or /Image, or is a content stream compared above).
        return not (subtype == "/XML" or (type_ in ("/ObjStm", "/XRef") and subtype is None))
    return type_ in {"/Catalog", "/Pages"} or \
        any(key in obj for key in _DRAWN_KEYS | _OPTIONAL_CONTENT)


def _structural_changes(  # noqa: C901, PLR0912, PLR0915 - to be cut up with the verifier
        reader: PdfFileReader, revision: int, base: int, budget: _Budget, trees: _Trees
) -> tuple[dict[int, set[tuple[str, bool]]], int, int, bool]:
    """What one revision rewrote, per page (0-based index → kinds), read from the few
    objects it wrote — not from the whole document, which pyHanko reads slowly.

    ``base`` is the 0-based revision of the first signature.  Returns (kinds by page as
    (kind, prepared), pages before, pages after, render every page?)."""
    before = reader.get_historical_resolver(revision - 1)
    after = reader.get_historical_resolver(revision)
    pages_before, pages_after = trees.pages(revision - 1), trees.pages(revision)
    kinds: dict[int, set[tuple[str, bool]]] = {}
    # The object at each page position: a redirected page tree swaps in a prepared page
    # without rewriting any page object.
    for index, (old, new) in enumerate(zip(pages_before, pages_after, strict=False)):
        if old != new:
            kinds.setdefault(index, set()).add(("page_content", False))
    index_of = {ref: i for i, ref in enumerate(pages_after)}
    drawn_by = {item: i for i, page in enumerate(pages_after)
                for item in _contents_key(after, page) if item}
    root_ref = after.root_ref
    acroform = _ref(_entry(after(root_ref), "/AcroForm"))
    xrefs = reader.xrefs
    render_all = False
    reached = None  # what each page draws, computed only when an older object was rewritten
    for ref in xrefs.explicit_refs_in_revision(revision):
        budget.take_object()
        try:
            obj = after(ref)
        except Exception:  # noqa: BLE001 - an unreadable object: let the renders tell
            render_all = True
            continue
        if not isinstance(obj, generic.DictionaryObject):
            continue  # arrays: page trees, contents and annotation lists are compared above
        subtype, type_ = obj.get("/Subtype"), obj.get("/Type")
        older = xrefs.get_introducing_revision(ref) < revision
        if ref in index_of:
            index = index_of[ref]
            if index < len(pages_before) and _contents_key(after, ref) != \
                    _contents_key(before, pages_before[index]):
                kinds.setdefault(index, set()).add(("page_content", False))
            else:
                kinds.setdefault(index, set())
        elif subtype in ANNOTATION_TYPES and (type_ in (None, "/Annot")):
            page = index_of.get(_ref(obj.raw_get("/P"))) if "/P" in obj else None
            if page is None:
                render_all = True
            else:
                prepared = xrefs.get_introducing_revision(ref) <= base
                kinds.setdefault(page, set()).add((_annotation_kind(obj), prepared))
        elif ref in drawn_by:
            kinds.setdefault(drawn_by[ref], set()).add(("page_content", False))
        elif not older or ref == acroform or not _may_draw(obj):
            continue  # new objects are drawn only through what is compared above
        elif ref == root_ref:
            old_root = before(root_ref)
            if not all(_same(before, _entry(old_root, k), after, _entry(obj, k))
                       for k in _CATALOG_DRAWN):
                render_all = True
        elif any(key in obj for key in _OPTIONAL_CONTENT) or type_ == "/OCG":
            render_all = True  # optional content decides what every page shows
        elif type_ == "/Pages":
            old_node = before(ref)
            if not all(_same(before, _entry(old_node, k), after, _entry(obj, k))
                       for k in _INHERITED):
                render_all = True
        else:  # an older font, image, form, resource dictionary, appearance …
            if reached is None:
                reached = _drawn_by_pages(after, pages_after, budget)
            for index, kind in reached.get(ref, ()):
                kinds.setdefault(index, set()).add((kind, False))
            # Reached by no page: it cannot change what any page shows.
    return kinds, len(pages_before), len(pages_after), render_all


# --- rendering -----------------------------------------------------------------------------

def _limit_memory(megabytes: int):
    def apply() -> None:
        size = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return apply


def render_page(source: Path | bytes | memoryview, page: int, dpi: int, *, gray: bool = True,
                seconds: float = 60, memory_mb: int = 1024) -> Image.Image | None:
    """One page (1-based) of a PDF via poppler — a file, or bytes fed on stdin (no copy of
    the document on disk); None when poppler cannot draw it within its time and memory."""
    with tempfile.TemporaryDirectory(prefix="saoy-render-") as tmp:
        out = Path(tmp) / "page"
        from_stdin = not isinstance(source, Path)
        try:
            result = subprocess.run(
                ["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi),
                 *(["-gray"] if gray else []), "-png", "-singlefile",
                 "-" if from_stdin else str(source), str(out)],
                input=source if from_stdin else None, capture_output=True, timeout=seconds,
                preexec_fn=_limit_memory(memory_mb))
        except subprocess.TimeoutExpired:
            log.info("render of page %s timed out", page)
            return None
        png = out.with_suffix(".png")
        if result.returncode != 0 or not png.exists():
            return None
        with Image.open(png) as image:
            return image.convert("L" if gray else "RGB")


def _regions(old: Image.Image, new: Image.Image, block: int = 6) -> list[tuple[int, ...]]:
    """Differing areas as pixel boxes: blocks that differ, grouped when they touch."""
    if old.size != new.size:
        return [(0, 0, *new.size)]
    # Renders of unchanged content are identical, so any difference is a real change.
    diff = ImageChops.difference(old, new).point(lambda v: 255 if v > PIXEL_NOISE else 0)
    if diff.getbbox() is None:
        return []
    cols, rows = -(-new.width // block), -(-new.height // block)
    small = diff.resize((cols, rows), Image.Resampling.BOX).load()
    cells = {(x, y) for y in range(rows) for x in range(cols) if small[x, y] > 0}
    boxes = []
    while cells:
        stack = [cells.pop()]
        xs, ys = [], []
        while stack:
            x, y = stack.pop()
            xs.append(x)
            ys.append(y)
            for dx in (-2, -1, 0, 1, 2):
                for dy in (-2, -1, 0, 1, 2):
                    if (x + dx, y + dy) in cells:
                        cells.remove((x + dx, y + dy))
                        stack.append((x + dx, y + dy))
        boxes.append((min(xs) * block, min(ys) * block, min((max(xs) + 1) * block, new.width),
                      min((max(ys) + 1) * block, new.height)))
    return boxes


def _to_points(box, image: Image.Image, dpi: int) -> list[float]:
    scale = 72 / dpi
    height = image.height * scale
    x1, y1, x2, y2 = box
    return [round(x1 * scale, 1), round(height - y2 * scale, 1), round(x2 * scale, 1),
            round(height - y1 * scale, 1)]


def _preview(image: Image.Image, boxes: Iterable[tuple[int, ...]]) -> str:
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for box in boxes:
        draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], outline=(220, 0, 0),
                       width=3)
    canvas.thumbnail((260, 360))
    out = io.BytesIO()
    canvas.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _render_dpi(page: Any, max_pixels: int) -> int:
    """The resolution a page is drawn at, decided from its size before drawing: at most
    RENDER_DPI, fewer for a page so large that it would pass ``max_pixels``."""
    node, box, depth = page, None, 0
    while isinstance(node, generic.DictionaryObject) and box is None and depth < \
            MAX_PAGE_TREE_DEPTH:
        box = node.get("/CropBox") or node.get("/MediaBox")
        node, depth = node.get("/Parent"), depth + 1
    try:
        width, height = (abs(float(box[2]) - float(box[0])) / 72,
                         abs(float(box[3]) - float(box[1])) / 72)
    except (TypeError, ValueError, IndexError):
        return 1  # no sensible size: drawn as small as can be
    area = max(width * height, 1e-6)
    return max(1, min(RENDER_DPI, int(math.sqrt(max_pixels / area))))


def _locate(report: RevisionReport, kinds: dict[int, set[tuple[str, bool]]],
            pages: tuple[int, int], render_all: bool, prefix, renders: dict, pool,
            previews: bool, budget: _Budget, page_of) -> None:
    """Render the pages the revision touched (every page when a change could not be
    attributed), before and after, box the differences and name each change."""
    before_count, after_count = pages
    report.changes += [Change(i + 1, "page_added", None) for i in range(before_count,
                                                                       after_count)]
    report.changes += [Change(i + 1, "page_removed", None) for i in range(after_count,
                                                                         before_count)]
    shared = min(before_count, after_count)
    candidates = sorted(range(shared) if render_all else (i for i in kinds if i < shared))
    keys = [(rev, page + 1) for page in candidates for rev in (report.index - 1, report.index)]
    missing = [k for k in keys if k not in renders]
    budget.take_renders(len(missing))
    limits = budget.limits
    dpis = {k: _render_dpi(page_of(*k), limits.render_pixels) for k in missing}
    for key, image in zip(missing, pool.map(
            lambda k: render_page(prefix(k[0]), k[1], dpis[k], seconds=limits.render_seconds,
                                  memory_mb=limits.render_memory_mb), missing), strict=True):
        renders[key] = (image, dpis[key])
    budget.check()
    for page in candidates:
        old, _old_dpi = renders.get((report.index - 1, page + 1), (None, 0))
        new, dpi = renders.get((report.index, page + 1), (None, 0))
        if (old is None) != (new is None):  # drawable once, not the other time
            report.changes.append(Change(page + 1, "page_content", None))
            continue
        boxes = _regions(old, new) if old is not None and new is not None else []
        named = kinds.get(page) or set()
        if not boxes and not named:
            continue  # a page merely re-written, identical to look at
        bbox = _union([_to_points(b, new, dpi) for b in boxes])
        for kind, prepared in sorted(named) or [("page_content", False)]:
            report.changes.append(Change(page + 1, kind, bbox, prepared))
        if previews and boxes:
            report.previews.append({"page": page + 1, "before": _preview(old, []),
                                    "after": _preview(new, boxes),
                                    "regions": [_to_points(b, new, dpi)
                                                for b in boxes]})


def _union(boxes: list[list[float]]) -> list[float] | None:
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)]


# --- the whole answer ----------------------------------------------------------------------

def explain(data: bytes, roots, *, previews: bool = False,
            limits: Limits | None = None) -> Explanation:
    """Check every signature and explain every revision after the first signature.  Never
    raises: what cannot be analysed within the budget is ``indeterminate`` with a reason."""
    if b"%PDF-" not in data[:1024]:
        return Explanation("unreadable", False, error="not-a-pdf")
    budget = _Budget(limits or Limits())
    try:
        return _explain(data, roots, previews, budget)
    except OverBudgetError as exc:
        log.info("explain: over budget (%s)", exc)
        return Explanation("indeterminate", True, error=f"too_complex:{exc}")
    except Exception as exc:  # noqa: BLE001 - say what failed, never guess, never a 500
        log.warning("explain: analysis failed: %r", exc)
        return Explanation("indeterminate", True, error=f"analysis:{type(exc).__name__}")


def explain_bounded(data: bytes, roots, *, previews: bool = False,
                    limits: Limits | None = None) -> Explanation:
    """explain() in a child under hard limits (app.sandbox): what a public upload may
    cost the server is bounded even when a library loops or a page eats memory."""
    limits = limits or Limits()
    try:
        return sandbox.run(_explain_from_der, data, tuple(c.dump() for c in roots), previews,
                           limits, bounds=sandbox.Bounds(limits.wall_seconds, limits.memory_mb))
    except sandbox.SandboxError as exc:
        log.info("explain: stopped in its sandbox (%s)", exc.reason)
        return Explanation("indeterminate", True, error=f"too_complex:{exc.reason}")


def _explain_from_der(data: bytes, roots: tuple[bytes, ...], previews: bool,
                      limits: Limits) -> Explanation:
    return explain(data, tuple(asn1_x509.Certificate.load(c) for c in roots),
                   previews=previews, limits=limits)


def _explain(  # noqa: C901, PLR0912, PLR0915 - to be cut up with the verifier
        data: bytes, roots, previews: bool, budget: _Budget) -> Explanation:
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
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
    signatures = [_check_signature(sig, roots, ends) for sig in embedded]
    _assess_revocation(reader, embedded, signatures, roots)
    signatures.sort(key=lambda s: s.revision)
    budget.check()
    first = min(s.revision for s in signatures)  # 1-based
    revisions: list[RevisionReport] = []
    pages = None
    notes: list[str] = []
    view = memoryview(data)

    def prefix(revision: int) -> memoryview:  # the file as it stood after that revision
        return view[:ends[revision - 1]]

    renders: dict = {}
    trees = _Trees(reader)

    def page_of(revision: int, page: int) -> Any:  # 1-based both, as the renders' keys
        refs = trees.pages(revision - 1)
        return reader.get_historical_resolver(revision - 1)(refs[page - 1]) \
            if page <= len(refs) else None
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for revision in range(first, total):  # 0-based index of the later revision
                budget.check()
                kinds, before_count, pages, render_all = _structural_changes(
                    reader, revision, first - 1, budget, trees)
                own = next((s.field for s in signatures if s.revision == revision + 1), None)
                cover = next((s.field for s in signatures if s.revision >= revision + 1
                              and s.intact), None)
                report = RevisionReport(revision + 1, own, cover)
                _locate(report, kinds, (before_count, pages), render_all, prefix, renders,
                        pool, previews, budget, page_of)
                revisions.append(report)
    except OverBudgetError:
        raise
    except Exception as exc:  # noqa: BLE001 - cannot compare: say so, do not guess
        log.info("explain: revision analysis failed: %r", exc)
        notes.append("revision_analysis_failed")
    if pages is None:
        try:
            pages = len(_page_refs(reader.get_historical_resolver(total - 1)))
        except Exception:  # noqa: BLE001
            pages = None
    stamps = [s.timestamp_time for s in signatures if s.timestamp_time]
    try:
        if sorted(_aware(t) for t in stamps) != [_aware(t) for t in stamps]:
            notes.append("timestamps_out_of_order")
    except ValueError:
        notes.append("timestamps_out_of_order")
    if _docmdp_violated(signatures, revisions):
        notes.append("docmdp_violated")
    _revocation_notes(notes, signatures)
    content = _foreign_content(reader)
    if policy.active(content):
        notes.append("active_content")
    return Explanation(_verdict(signatures, revisions, notes), True, signatures, revisions,
                       pages, notes, content=[f.code for f in policy.active(content)],
                       long_term=_long_term(reader, signatures))


def _assess_revocation(reader: PdfFileReader, embedded: list, details: list[SignatureDetail],
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
    moment = _aware(proven) if proven else None
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
    _revocation_notes(explanation.notes, explanation.signatures)
    explanation.verdict = _verdict(explanation.signatures, explanation.revisions,
                                   explanation.notes)


def _revocation_notes(notes: list[str], signatures: list[SignatureDetail]) -> None:
    for note, status in (("revocation_unknown", "unknown"),
                         ("revoked_since_signing", "revoked_since")):
        present = any(s.revocation == status for s in signatures)
        if present and note not in notes:
            notes.append(note)
        elif not present and note in notes:
            notes.remove(note)


def _long_term(reader: PdfFileReader, signatures: list[SignatureDetail]) -> str:
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


def _foreign_content(reader: PdfFileReader) -> list[policy.Finding]:
    """The PDF policy's findings on the file as a reader opens it (its last revision)."""
    try:
        return policy.findings(reader.trailer)
    except Exception:  # noqa: BLE001 - unreadable or too large: reported as such elsewhere
        return []


def _docmdp_violated(signatures: list[SignatureDetail], revisions: list[RevisionReport]
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
               for c in report.changes):
            return True
    return False


_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def byte_range_digests(data: bytes) -> list[bool | None]:
    """For each /ByteRange in the raw bytes: does the signed data's digest match the one
    the signature carries (None: cannot tell)?  Needs no PDF parser at all."""
    from asn1crypto import cms

    results: list[bool | None] = []
    for match in _BYTE_RANGE.finditer(data):
        start, len1, start2, len2 = (int(v) for v in match.groups())
        try:
            if start != 0 or start2 + len2 > len(data) or start2 <= len1:
                results.append(False)  # a range past the end, or overlapping: forged
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
            results.append(digest.digest() == expected)
        except Exception:  # noqa: BLE001 - not a signature we can read by hand
            results.append(None)
    return results


def _verdict(  # noqa: PLR0911 - one answer per rule, in order
        signatures: list[SignatureDetail], revisions: list[RevisionReport],
        notes: list[str]) -> str:
    if any(s.error is None and not s.intact for s in signatures):
        return "tampered"
    if any(r.visible and r.covered_by is None for r in revisions):
        return "tampered"
    if "docmdp_violated" in notes:
        return "tampered"
    if any(s.error for s in signatures) or "revision_analysis_failed" in notes:
        return "indeterminate"
    if not all(s.trusted and s.valid for s in signatures) or "active_content" in notes:
        return "untrusted"
    if any(not (c.prepared and c.kind in ROUTINE_KINDS) for r in revisions
           for c in r.changes if c.bbox or c.kind in VISIBLE_KINDS):
        return "valid_with_later_changes"
    return "valid"
