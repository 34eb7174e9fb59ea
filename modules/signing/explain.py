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
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
import re
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from PIL import Image, ImageChops, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.settings import KeyUsageConstraints

from modules.signing.validation import validation_context

log = logging.getLogger(__name__)

RENDER_DPI = 50
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


@dataclass
class Explanation:
    verdict: str
    readable: bool
    signatures: list[SignatureDetail] = field(default_factory=list)
    revisions: list[RevisionReport] = field(default_factory=list)
    pages: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self, previews: bool = False) -> dict[str, Any]:
        data = asdict(self)
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
    path = getattr(status, "validation_path", None)
    if path is None:
        return []
    try:
        return [_name(cert, "common_name") or cert.subject.human_friendly
                for cert in path.iter_certs(include_root=True)]
    except Exception:  # noqa: BLE001
        return []


def _check_signature(sig, roots) -> SignatureDetail:
    is_timestamp = sig.sig_object.get("/Type") == "/DocTimeStamp"
    base = dict(field=str(sig.field_name or "?"),  # plain str: pyHanko strings hold the reader
                kind="timestamp" if is_timestamp else "signature",
                revision=sig.signed_revision + 1)
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
        local_time_as_utc=local_as_utc, intact=bool(status.intact),
        valid=bool(status.valid), trusted=bool(status.trusted), chain=_chain(status),
        algorithms=algorithms, warnings=warnings, certification_level=level,
        fingerprint=hashlib.sha256(cert.dump()).hexdigest() if cert is not None else None)


def _local_time_written_as_utc(signing: str | None, stamped: str | None) -> bool:
    """signingTime about 7 hours ahead of the TSA's time: Vietnam time labelled UTC."""
    if not signing or not stamped:
        return False
    delta = dt.datetime.fromisoformat(signing) - dt.datetime.fromisoformat(stamped)
    return abs(delta - UTC_OFFSET) < dt.timedelta(minutes=20)


# --- revisions -----------------------------------------------------------------------------

def revision_ends(data: bytes, reader: PdfFileReader) -> list[int]:
    """Byte length of the file as it stood after each revision."""
    eofs = [m.end() for m in re.finditer(rb"%%EOF[ \t]*(\r\n|\r|\n)?", data)]
    ends, reach = [], 0
    sections = reader.xrefs._xref_sections  # noqa: SLF001 - start/end per revision
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


def _page_refs(resolver) -> list[generic.Reference]:
    root = resolver(resolver.root_ref)
    found: list[generic.Reference] = []

    def walk(raw, depth: int) -> None:
        node = _deref(resolver, raw)
        if depth > 64 or not isinstance(node, generic.DictionaryObject):
            return
        if "/Kids" in node:
            for kid in _raw_items(_deref(resolver, node.raw_get("/Kids"))):
                walk(kid, depth + 1)
        elif (ref := _ref(raw)) is not None:
            found.append(ref)

    walk(root.raw_get("/Pages"), 0)
    return found


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


def _structural_changes(reader: PdfFileReader, revision: int, base: int
                        ) -> tuple[dict[int, set[tuple[str, bool]]], int, int, bool]:
    """What one revision rewrote, per page (0-based index → kinds), read from the few
    objects it wrote — not from the whole document, which pyHanko reads slowly.

    ``base`` is the 0-based revision of the first signature.  Returns (kinds by page as
    (kind, prepared), pages before, pages after, unattributed content?)."""
    before = reader.get_historical_resolver(revision - 1)
    after = reader.get_historical_resolver(revision)
    pages_before, pages_after = _page_refs(before), _page_refs(after)
    index_of = {ref: i for i, ref in enumerate(pages_after)}
    drawn_by = {item: i for i, page in enumerate(pages_after)
                for item in _contents_key(after, page) if item}
    xrefs = reader.xrefs
    kinds: dict[int, set[tuple[str, bool]]] = {}
    unattributed = False
    for ref in xrefs.explicit_refs_in_revision(revision):
        try:
            obj = after(ref)
        except Exception:  # noqa: BLE001 - an unreadable object: let the renders tell
            unattributed = True
            continue
        if not isinstance(obj, generic.DictionaryObject):
            continue
        subtype, type_ = obj.get("/Subtype"), obj.get("/Type")
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
                unattributed = True
            else:
                prepared = xrefs.get_introducing_revision(ref) <= base
                kinds.setdefault(page, set()).add((_annotation_kind(obj), prepared))
        elif ref in drawn_by:
            kinds.setdefault(drawn_by[ref], set()).add(("page_content", False))
        elif isinstance(obj, generic.StreamObject) and xrefs.get_introducing_revision(ref) \
                < revision and type_ not in ("/ObjStm", "/XRef", "/Metadata"):
            unattributed = True  # an older image, font or form rewritten: look at every page
    return kinds, len(pages_before), len(pages_after), unattributed


# --- rendering -----------------------------------------------------------------------------

def render_page(path: Path, page: int, dpi: int, *, gray: bool = True) -> Image.Image | None:
    """One page (1-based) of a PDF file via poppler; None when poppler cannot draw it."""
    with tempfile.TemporaryDirectory(prefix="saoy-render-") as tmp:
        out = Path(tmp) / "page"
        result = subprocess.run(
            ["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi),
             *(["-gray"] if gray else []), "-png", "-singlefile", str(path), str(out)],
            capture_output=True, timeout=60)
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
    diff = ImageChops.difference(old, new).point(lambda v: 255 if v > 4 else 0)
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


def _locate(report: RevisionReport, kinds: dict[int, set[tuple[str, bool]]],
            pages: tuple[int, int],
            unattributed: bool, prefixes: dict[int, Path], renders: dict, pool,
            previews: bool) -> None:
    """Render the pages the revision touched (every page when a content stream could not
    be attributed), before and after, box the differences and name each change."""
    before_count, after_count = pages
    report.changes += [Change(i + 1, "page_added", None) for i in range(before_count,
                                                                       after_count)]
    report.changes += [Change(i + 1, "page_removed", None) for i in range(after_count,
                                                                         before_count)]
    shared = min(before_count, after_count)
    candidates = sorted(range(shared) if unattributed else (i for i in kinds if i < shared))
    keys = [(rev, page + 1) for page in candidates for rev in (report.index - 1, report.index)]
    missing = [k for k in keys if k not in renders]
    for key, image in zip(missing, pool.map(
            lambda k: render_page(prefixes[k[0]], k[1], RENDER_DPI), missing), strict=True):
        renders[key] = image
    for page in candidates:
        old, new = renders.get((report.index - 1, page + 1)), renders.get((report.index,
                                                                           page + 1))
        boxes = _regions(old, new) if old is not None and new is not None else []
        named = kinds.get(page) or set()
        if not boxes and not named:
            continue  # a page merely re-written, identical to look at
        bbox = _union([_to_points(b, new, RENDER_DPI) for b in boxes])
        for kind, prepared in sorted(named) or [("page_content", False)]:
            report.changes.append(Change(page + 1, kind, bbox, prepared))
        if previews and boxes:
            report.previews.append({"page": page + 1, "before": _preview(old, []),
                                    "after": _preview(new, boxes),
                                    "regions": [_to_points(b, new, RENDER_DPI)
                                                for b in boxes]})


def _union(boxes: list[list[float]]) -> list[float] | None:
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)]


# --- the whole answer ----------------------------------------------------------------------

def explain(data: bytes, roots, *, previews: bool = False) -> Explanation:
    """Check every signature and explain every revision after the first signature."""
    if b"%PDF-" not in data[:1024]:
        return Explanation("unreadable", False, error="not-a-pdf")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
        total = reader.xrefs.total_revisions
        ends = revision_ends(data, reader)
    except Exception as exc:  # noqa: BLE001 - a PDF whose structure cannot be trusted
        log.info("explain: unreadable structure: %r", exc)
        return Explanation("indeterminate", False, error=f"structure:{type(exc).__name__}")
    if not embedded:
        return Explanation("indeterminate", True, error="no-signature")
    signatures = [_check_signature(sig, roots) for sig in embedded]
    signatures.sort(key=lambda s: s.revision)
    first = min(s.revision for s in signatures)  # 1-based
    revisions: list[RevisionReport] = []
    pages = None
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="saoy-explain-") as tmp:
        prefixes = {}
        for revision in range(first - 1, total):
            path = Path(tmp) / f"r{revision + 1}.pdf"
            path.write_bytes(data[:ends[revision]])
            prefixes[revision + 1] = path
        renders: dict = {}
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                for revision in range(first, total):  # 0-based index of the later revision
                    kinds, before_count, pages, unattributed = _structural_changes(
                        reader, revision, first - 1)
                    own = next((s.field for s in signatures if s.revision == revision + 1),
                               None)
                    cover = next((s.field for s in signatures if s.revision >= revision + 1
                                  and s.intact), None)
                    report = RevisionReport(revision + 1, own, cover)
                    _locate(report, kinds, (before_count, pages), unattributed, prefixes,
                            renders, pool, previews)
                    revisions.append(report)
        except Exception as exc:  # noqa: BLE001 - cannot compare: say so, do not guess
            log.info("explain: revision analysis failed: %r", exc)
            notes.append("revision_analysis_failed")
    if pages is None:
        try:
            pages = len(_page_refs(reader.get_historical_resolver(total - 1)))
        except Exception:  # noqa: BLE001
            pages = None
    stamps = [s.timestamp_time for s in signatures if s.timestamp_time]
    if stamps != sorted(stamps):
        notes.append("timestamps_out_of_order")
    return Explanation(_verdict(signatures, revisions, notes), True, signatures, revisions,
                       pages, notes)


def _verdict(signatures: list[SignatureDetail], revisions: list[RevisionReport],
             notes: list[str]) -> str:
    if any(s.error is None and not s.intact for s in signatures):
        return "tampered"
    if any(r.visible and r.covered_by is None for r in revisions):
        return "tampered"
    if any(s.error for s in signatures) or "revision_analysis_failed" in notes:
        return "indeterminate"
    if not all(s.trusted and s.valid for s in signatures):
        return "untrusted"
    if any(not (c.prepared and c.kind in ROUTINE_KINDS) for r in revisions
           for c in r.changes if c.bbox or c.kind in VISIBLE_KINDS):
        return "valid_with_later_changes"
    return "valid"
