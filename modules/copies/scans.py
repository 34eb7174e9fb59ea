"""Scan admission at upload, before anything is stored: what is accepted here can be
signed later.

The file is read whole with the reader the signer uses (pyHanko), within bounds: a
real PDF from its first byte, not encrypted, within the size limit; every object
readable and not nested absurdly deep; every compressed stream inflated under a cap
(per stream and for the file) before anything trusts it; images of a sane pixel count;
a page tree without cycles whose declared counts are its real ones; sane page sizes; no
active content; and the signer's writer finds its last page.  The page count and the
scan resolution are read on the way."""
from __future__ import annotations

import io
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from flask_babel import gettext as _
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from app import sandbox
from app.errors import DomainError
from app.pdf_reader import read_pdf
from modules.signing import policy

log = logging.getLogger(__name__)
DPI_SAMPLE_PAGES = 50  # the resolution is read from the first pages only (a scan is uniform)


@dataclass(frozen=True)
class ScanLimits:
    """What a scan of paper never needs; a file beyond it is refused, not attempted."""

    max_objects: int = 100_000
    max_depth: int = 64  # arrays and dictionaries inside each other
    max_stream_inflated: int = 256 * 2**20
    max_total_inflated: int = 1024 * 2**20
    max_image_pixels: int = 150_000_000  # A3 at 600 dpi is 70 Mpx
    max_page_points: float = 14_400  # 200 inches
    max_trailing_bytes: int = 4096  # after the last %%EOF (a PDF with a ZIP behind it)
    max_small_filter: int = 4 * 2**20  # RunLength/LZW streams: no streaming inflater
    seconds: float = 30.0
    memory_mb: int = 1536  # what reading the file may add (a 30 MB scan needs ~400)


LIMITS = ScanLimits()
_KNOWN_FILTERS = {"/FlateDecode", "/Fl", "/DCTDecode", "/DCT", "/JPXDecode", "/JBIG2Decode",
                  "/CCITTFaxDecode", "/CCF", "/ASCIIHexDecode", "/AHx", "/ASCII85Decode",
                  "/A85", "/RunLengthDecode", "/RL", "/LZWDecode", "/LZW"}
_SMALL_ONLY = {"/RunLengthDecode", "/RL", "/LZWDecode", "/LZW"}  # no streaming inflater


class _RefusedError(Exception):
    """Internal: the admission found the reason (a translated sentence) to refuse."""


class ScanError(DomainError):
    """The uploaded file cannot be a scan of the original; the message says why."""


@dataclass(frozen=True)
class ScanInfo:
    pages: int
    dpi: int | None  # lowest resolution of the scanned images; None: no raster image
    size: int


def _page_dpi(page: generic.DictionaryObject, resources, box) -> int | None:
    """Pixels of the largest image across the page width, per inch of page."""
    try:
        width_in = abs(float(box[2]) - float(box[0])) / 72 or 1
        height_in = abs(float(box[3]) - float(box[1])) / 72 or 1
    except (TypeError, ValueError, IndexError):
        return None
    xobjects = resources.get("/XObject") if isinstance(resources, generic.DictionaryObject) \
        else None
    best = None
    for name in xobjects or ():
        xobj = xobjects[name]
        if not isinstance(xobj, generic.StreamObject) or xobj.get("/Subtype") != "/Image":
            continue
        px_w, px_h = int(xobj.get("/Width", 0)), int(xobj.get("/Height", 0))
        dpi = round(min(max(px_w, px_h) / max(width_in, height_in),
                        min(px_w, px_h) / min(width_in, height_in)))
        best = dpi if best is None else max(best, dpi)
    return best


def check_scan(fileobj: BinaryIO, max_bytes: int, max_pages: int,
               limits: ScanLimits = LIMITS) -> ScanInfo:
    """Raise ScanError with a clear reason, or return what the file is."""
    fileobj.seek(0, 2)
    size = fileobj.tell()
    fileobj.seek(0)
    if size == 0:
        raise ScanError(_("The file is empty."))
    if size > max_bytes:
        raise ScanError(_("The file is larger than %(mb)s MB.", mb=max_bytes // 2**20), 413)
    data = fileobj.read()
    fileobj.seek(0)
    if not data.startswith(b"%PDF-"):
        raise ScanError(_("This file is not a PDF. Scan the original to PDF and try again."))
    eof = data.rfind(b"%%EOF")
    if eof < 0 or len(data) - eof > limits.max_trailing_bytes:
        raise ScanError(_("The file does not end where a PDF ends: it is damaged or carries "
                          "something else. Scan the original again."))
    try:  # in a bounded child: a loop or a bomb inside the reader stops there
        pages, dpis, foreign = sandbox.run(_admit, data, max_pages, limits, bounds=sandbox.Bounds(
            limits.seconds + 5, limits.memory_mb))
    except ScanError:
        raise
    except _RefusedError as refusal:
        raise ScanError(str(refusal)) from None
    except sandbox.SandboxError as exc:
        log.info("scan refused: %s", exc.reason)
        raise ScanError(_("The PDF is too complex to check in time.") if exc.reason == "time"
                        else _("The PDF needs far more memory to read than a scan does.")
                        if exc.reason == "memory" else
                        _("The PDF is damaged and cannot be read. Scan the original "
                          "again.")) from None
    except (RecursionError, policy.PolicyBudgetError):
        raise ScanError(_("The PDF nests its objects too deeply to be a scan. Scan the "
                          "original again.")) from None
    except Exception as exc:  # noqa: BLE001 - any reader failure: the file is not usable
        log.info("scan refused: %r", exc)
        raise ScanError(_("The PDF is damaged and cannot be read. Scan the original "
                          "again.")) from None
    if foreign:
        raise ScanError(_("The PDF carries active content or forms (%(what)s): a scan has "
                          "none, and a certified copy must not carry them. Scan the paper "
                          "original again.", what=policy.describe(foreign)))
    return ScanInfo(pages=pages, dpi=min(dpis) if dpis else None, size=size)


def _admit(data: bytes, max_pages: int, limits: ScanLimits
           ) -> tuple[int, list[int], list[policy.Finding]]:
    """Read the file as the signer will (pyHanko, which finds cross-reference loops):
    its real page count, the resolution of its first pages, and anything foreign in it;
    or raise _RefusedError."""
    deadline = time.monotonic() + limits.seconds
    reader = read_pdf(data)
    if reader.encrypted:
        raise ScanError(_("The PDF is password-protected or encrypted. Save it without "
                          "protection and try again."))
    _check_objects(reader, limits, deadline)
    pages, dpis = _count_pages(reader, max_pages, limits)
    foreign = policy.findings(reader.trailer, policy.Budget(
        seconds=max(deadline - time.monotonic(), 1)))
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    writer.find_page_for_modification(pages - 1)  # the signer finds the last page
    return pages, dpis, foreign


def _check_objects(reader: PdfFileReader, limits: ScanLimits, deadline: float) -> None:
    """Every object readable, none nested absurdly, every stream inflatable under a cap."""
    xrefs = reader.xrefs
    refs = {ref for revision in range(xrefs.total_revisions)
            for ref in xrefs.explicit_refs_in_revision(revision)}
    if len(refs) > limits.max_objects:
        raise _RefusedError(_("The PDF has more objects than a scan can have (%(n)s).",
                              n=len(refs)))
    inflated = [0]
    # Object streams first: reading any object inside one inflates the whole stream.
    for revision in range(xrefs.total_revisions):
        for container in xrefs.object_streams_used_in(revision):
            _check_stream(reader.get_object(container), limits, inflated)
    for ref in sorted(refs, key=lambda r: r.idnum):
        if time.monotonic() > deadline:
            raise _RefusedError(_("The PDF is too complex to check in time."))
        obj = reader.get_object(ref)
        _check_depth(obj, limits)
        if isinstance(obj, generic.StreamObject):
            _check_stream(obj, limits, inflated)


def _check_stream(stream: generic.StreamObject, limits: ScanLimits, inflated: list[int]) -> None:
    filters = stream.get("/Filter")
    names = [str(f) for f in (filters if isinstance(filters, list) else [filters])
             if f is not None]
    if any(name not in _KNOWN_FILTERS for name in names):
        raise _RefusedError(_("The PDF uses a compression that scans do not use (%(f)s).",
                              f=", ".join(names)))
    raw = stream.encoded_data
    if names and names[0] in ("/FlateDecode", "/Fl"):
        size = _inflated_size(raw, limits.max_stream_inflated)
        inflated[0] += size
        if size > limits.max_stream_inflated or inflated[0] > limits.max_total_inflated:
            raise _RefusedError(_("A part of the PDF inflates to far more than a scan holds "
                                  "(a compression bomb)."))
    elif any(name in _SMALL_ONLY for name in names) and len(raw) > limits.max_small_filter:
        raise _RefusedError(_("The PDF uses a compression that scans do not use (%(f)s).",
                              f=", ".join(names)))
    if stream.get("/Subtype") == "/Image":
        width, height = stream.get("/Width", 0), stream.get("/Height", 0)
        if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or \
                height <= 0 or width * height > limits.max_image_pixels:
            raise _RefusedError(_("An image of the PDF is far larger than a scan's (%(w)s × "
                                  "%(h)s pixels).", w=width, h=height))


def _check_depth(value: Any, limits: ScanLimits) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_depth:
            raise _RefusedError(_("The PDF nests its objects too deeply to be a scan. Scan "
                                  "the original again."))
        if isinstance(item, generic.DictionaryObject):
            stack.extend((item.raw_get(k), depth + 1) for k in item)
        elif isinstance(item, generic.ArrayObject):
            stack.extend((item.raw_get(i), depth + 1) for i in range(len(item)))


def _inflated_size(raw: bytes, cap: int) -> int:
    """How much a Flate stream inflates to, counted in steps and stopped past ``cap``."""
    inflater = zlib.decompressobj()
    total, pending = 0, raw
    try:
        while pending and total <= cap:
            total += len(inflater.decompress(pending, 4 * 2**20))
            pending = inflater.unconsumed_tail
        if total <= cap:
            total += len(inflater.flush())
    except zlib.error:
        raise _RefusedError(_("The PDF is damaged and cannot be read. Scan the original "
                         "again.")) from None
    return total


class _PageTree:
    """Walk the page tree: no cycle, every node's /Count its real one, sane page sizes;
    the resolution of the first pages read on the way (boxes and resources inherited)."""

    def __init__(self, max_pages: int, limits: ScanLimits):
        self.max_pages, self.limits = max_pages, limits
        self.seen: set = set()
        self.dpis: list[int] = []

    def box_ok(self, box) -> bool:
        try:
            x1, y1, x2, y2 = (float(v) for v in box)
        except (TypeError, ValueError):
            return False
        side = self.limits.max_page_points
        return 1 <= abs(x2 - x1) <= side and 1 <= abs(y2 - y1) <= side

    def walk(self, raw, depth: int, box, resources) -> int:
        ref = raw.reference if isinstance(raw, generic.IndirectObject) else None
        if ref is None or ref in self.seen or depth > self.limits.max_depth:
            raise _RefusedError(_("The PDF's page tree is damaged (a loop or a page listed "
                                  "twice)."))
        self.seen.add(ref)
        node = raw.get_object()
        if not isinstance(node, generic.DictionaryObject):
            raise _RefusedError(_("The PDF's page tree is damaged."))
        box = node.get("/MediaBox", box)
        resources = node.get("/Resources", resources)
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            return self.node(node, depth, box, resources)
        if box is None or not self.box_ok(box):
            raise _RefusedError(_("A page of the PDF has no sensible size."))
        if len(self.seen) > self.max_pages + 64:
            raise _RefusedError(_("The PDF has more than %(max)s pages.", max=self.max_pages))
        if len(self.dpis) < DPI_SAMPLE_PAGES and (dpi := _page_dpi(node, resources, box)):
            self.dpis.append(dpi)
        return 1

    def node(self, node, depth: int, box, resources) -> int:
        kids = node.get("/Kids")
        if not isinstance(kids, generic.ArrayObject):
            raise _RefusedError(_("The PDF's page tree is damaged."))
        count = sum(self.walk(kids.raw_get(i), depth + 1, box, resources)
                    for i in range(len(kids)))
        if node.get("/Count") != count:
            raise _RefusedError(_("The PDF says it has %(said)s pages but holds %(real)s.",
                                  said=node.get("/Count"), real=count))
        return count


def _count_pages(reader: PdfFileReader, max_pages: int, limits: ScanLimits
                 ) -> tuple[int, list[int]]:
    tree = _PageTree(max_pages, limits)
    pages = tree.walk(reader.root.raw_get("/Pages"), 0, None, None)
    if pages < 1:
        raise _RefusedError(_("The PDF has no page."))
    if pages > max_pages:
        raise _RefusedError(_("The PDF has %(pages)s pages; at most %(max)s are accepted.",
                              pages=pages, max=max_pages))
    return pages, tree.dpis
