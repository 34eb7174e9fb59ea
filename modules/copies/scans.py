"""Scan checks at upload, before anything is stored: a real PDF, not encrypted, within
the size limit, at least one page; the page count and the scan resolution are read."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO

from flask_babel import gettext as _
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from app.errors import DomainError

log = logging.getLogger(__name__)
DPI_SAMPLE_PAGES = 50  # the resolution is read from the first pages only (a scan is uniform)


class ScanError(DomainError):
    """The uploaded file cannot be a scan of the original; the message says why."""


@dataclass(frozen=True)
class ScanInfo:
    pages: int
    dpi: int | None  # lowest resolution of the scanned images; None: no raster image
    size: int


def _resolve(obj):
    return obj.get_object() if hasattr(obj, "get_object") else obj


def _page_dpi(page) -> int | None:
    """Pixels of the largest image across the page width, per inch of page."""
    width_in = float(page.mediabox.width) / 72 or 1
    height_in = float(page.mediabox.height) / 72 or 1
    resources = _resolve(page.get("/Resources")) or {}
    xobjects = _resolve(resources.get("/XObject")) or {}
    best = None
    for ref in xobjects.values():
        xobj = _resolve(ref)
        if xobj.get("/Subtype") != "/Image":
            continue
        px_w, px_h = int(xobj.get("/Width", 0)), int(xobj.get("/Height", 0))
        dpi = round(min(max(px_w, px_h) / max(width_in, height_in),
                        min(px_w, px_h) / min(width_in, height_in)))
        best = dpi if best is None else max(best, dpi)
    return best


_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToE",
                   "/Rendition", "/RichMediaExecute"}
_ACTIVE_ANNOTATIONS = {"/FileAttachment", "/Movie", "/Sound", "/Screen", "/RichMedia"}


def _runs_something(action, depth: int = 0) -> bool:
    action = _resolve(action)
    if depth > 20:
        return True  # an action chain this deep is not a scanner's
    if isinstance(action, dict):
        if action.get("/S") in _ACTIVE_ACTIONS or "/JS" in action:
            return True
        return any(_runs_something(action[k], depth + 1) for k in ("/Next",) if k in action)
    if isinstance(action, list):
        return any(_runs_something(a, depth + 1) for a in action)
    return False


def active_content(reader: PdfReader) -> list[str]:
    """What a scanner never puts in a scan and a certified copy must not carry: JavaScript,
    launch and submit actions, embedded files, XFA forms, multimedia."""
    found = []
    root = _resolve(reader.trailer["/Root"])
    names = _resolve(root.get("/Names")) or {}
    found += [k[1:] for k in ("/JavaScript", "/EmbeddedFiles") if k in names]
    if "/OpenAction" in root and _runs_something(root["/OpenAction"]):
        found.append("OpenAction")
    if "/AA" in root:
        found.append("AA")
    if "XFA" not in found and "/XFA" in (_resolve(root.get("/AcroForm")) or {}):
        found.append("XFA")
    for page in reader.pages:
        if "/AA" in page:
            found.append("page AA")
        for ref in _resolve(page.get("/Annots")) or []:
            annot = _resolve(ref) or {}
            if annot.get("/Subtype") in _ACTIVE_ANNOTATIONS:
                found.append(str(annot.get("/Subtype"))[1:])
            if ("/A" in annot and _runs_something(annot["/A"])) or "/AA" in annot:
                found.append("annotation action")
    return sorted(set(found))


def check_scan(fileobj: BinaryIO, max_bytes: int, max_pages: int) -> ScanInfo:
    """Raise ScanError with a clear reason, or return what the file is."""
    fileobj.seek(0, 2)
    size = fileobj.tell()
    fileobj.seek(0)
    if size == 0:
        raise ScanError(_("The file is empty."))
    if size > max_bytes:
        raise ScanError(_("The file is larger than %(mb)s MB.", mb=max_bytes // 2**20), 413)
    if b"%PDF-" not in fileobj.read(1024):
        raise ScanError(_("This file is not a PDF. Scan the original to PDF and try again."))
    fileobj.seek(0)
    try:
        reader = PdfReader(fileobj, strict=False)
        if reader.is_encrypted:
            raise ScanError(_("The PDF is password-protected or encrypted. Save it without "
                              "protection and try again."))
        pages = len(reader.pages)
        dpis = [d for d in (_page_dpi(p) for p in list(reader.pages)[:DPI_SAMPLE_PAGES])
                if d is not None]
        active = active_content(reader)
    except ScanError:
        raise
    except (PyPdfError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        log.info("scan refused: %r", exc)
        raise ScanError(_("The PDF is damaged and cannot be read. Scan the original "
                          "again.")) from None
    finally:
        fileobj.seek(0)
    if active:
        raise ScanError(_("The PDF carries active content (%(what)s): a scan has none, and a "
                          "certified copy must not. Scan the paper original again.",
                          what=", ".join(active)))
    if pages < 1:
        raise ScanError(_("The PDF has no page."))
    if pages > max_pages:
        raise ScanError(_("The PDF has %(pages)s pages; at most %(max)s are accepted.",
                          pages=pages, max=max_pages))
    return ScanInfo(pages=pages, dpi=min(dpis) if dpis else None, size=size)
