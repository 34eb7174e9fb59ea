"""What the eye sees: the pages a revision touched are drawn (poppler) before and after,
under their own time and memory limits, and the differing regions boxed and named."""
from __future__ import annotations

import base64
import io
import logging
import math
import re
import resource
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw
from pyhanko.pdf_utils import generic

from modules.signing.verification.report import Budget, Change, RevisionReport
from modules.signing.verification.revisions import MAX_PAGE_TREE_DEPTH

log = logging.getLogger(__name__)

RENDER_DPI = 50
PIXEL_NOISE = 4  # grey levels two renders of one page may differ by


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


def page_count(source: bytes | memoryview, seconds: float = 20) -> int:
    """How many pages poppler finds — for a revision whose structure pyHanko cannot walk.
    Raises when poppler cannot tell either (the analysis then says it failed)."""
    result = subprocess.run(["pdfinfo", "-"], input=source, capture_output=True,
                            timeout=seconds, check=True)
    found = re.search(rb"^Pages:\s+(\d+)", result.stdout, re.MULTILINE)
    if found is None:
        raise ValueError("pdfinfo found no pages")
    return int(found.group(1))


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


class Drawings:
    """The renders of one verification: each (revision, page) drawn once, two at a time
    in the background (poppler runs while the signatures and the PDF policy are checked),
    within the budget; ``prefix(revision)`` is the file as it stood after it, and
    ``page_of(revision, page)`` its page object (for the size to draw it at)."""

    def __init__(self, prefix, page_of, pool, budget: Budget, previews: bool):
        self.prefix, self.page_of, self.pool = prefix, page_of, pool
        self.budget, self.previews = budget, previews
        self.renders: dict[tuple[int, int], tuple[Future, int]] = {}

    def submit(self, keys: list[tuple[int, int]]) -> None:
        """Start drawing the (revision, page) pairs not asked for yet (1-based both)."""
        missing = [k for k in dict.fromkeys(keys) if k not in self.renders]
        self.budget.take_renders(len(missing))
        limits = self.budget.limits
        for key in missing:
            dpi = _render_dpi(self.page_of(*key), limits.render_pixels)
            self.renders[key] = (self.pool.submit(
                render_page, self.prefix(key[0]), key[1], dpi, seconds=limits.render_seconds,
                memory_mb=limits.render_memory_mb), dpi)

    def get(self, revision: int, page: int) -> tuple[Image.Image | None, int]:
        """The drawing (waited for), None when it could not be drawn."""
        future, dpi = self.renders.get((revision, page), (None, 0))
        return (future.result() if future is not None else None), dpi


@dataclass
class Plan:
    """What the structure says of one revision (``index``, 1-based), before any drawing:
    the pages it touched and what touched them, the page counts before and after, whether
    every page must be drawn, and what a difference nothing names is called."""

    index: int
    kinds: dict[int, set[tuple[str, bool]]]
    pages: tuple[int, int]
    render_all: bool
    unnamed: str = "page_content"

    def candidates(self) -> list[int]:
        shared = min(self.pages)
        return sorted(range(shared) if self.render_all else
                      (i for i in self.kinds if i < shared))

    def draw(self, drawings: Drawings) -> None:
        drawings.submit([(rev, page + 1) for page in self.candidates()
                         for rev in (self.index - 1, self.index)])


def locate(report: RevisionReport, plan: Plan, drawings: Drawings) -> None:
    """Compare the pages the revision touched (every page when a change could not be
    attributed), before and after, box the differences and name each change (a difference
    the structure names nothing for is ``plan.unnamed``)."""
    kinds, unnamed = plan.kinds, plan.unnamed
    before_count, after_count = plan.pages
    report.changes += [Change(i + 1, "page_added", None) for i in range(before_count,
                                                                       after_count)]
    report.changes += [Change(i + 1, "page_removed", None) for i in range(after_count,
                                                                         before_count)]
    candidates = plan.candidates()
    plan.draw(drawings)  # (started already, as a rule)
    drawn = {page: (drawings.get(report.index - 1, page + 1), drawings.get(report.index,
                                                                           page + 1))
             for page in candidates}
    drawings.budget.check()  # the wall time, once the drawings are in
    for page in candidates:
        (old, _old_dpi), (new, dpi) = drawn[page]
        if old is None or new is None:  # not drawn (time, memory, a broken page): what
            report.changes.append(Change(page + 1, "unrendered", None))  # changed is unknown
            continue
        boxes = _regions(old, new)
        named = kinds.get(page) or set()
        if not boxes and not named:
            continue  # a page merely re-written, identical to look at
        bbox = _union([_to_points(b, new, dpi) for b in boxes])
        for kind, prepared in sorted(named) or [(unnamed, False)]:
            report.changes.append(Change(page + 1, kind, bbox, prepared))
        hidden = [b for b in boxes if _ink_hidden(old, new, b)] \
            if any(kind == "form_filling" for kind, _prepared in named) else []
        if hidden:  # a field now drawn over what was shown when signed (page or field)
            report.changes.append(Change(page + 1, "hidden_content", _union(
                [_to_points(b, new, dpi) for b in hidden])))
        if drawings.previews and boxes:
            report.previews.append({"page": page + 1, "before": _preview(old, []),
                                    "after": _preview(new, boxes),
                                    "regions": [_to_points(b, new, dpi)
                                                for b in boxes]})


#: Gray levels: the page's writing is darker than INK, and gone when lighter than PAPER;
#: more than HIDDEN_PIXELS of it gone under a filled field is content hidden, not a fill.
INK, PAPER, HIDDEN_PIXELS = 96, 192, 12


def _ink_hidden(shown: Image.Image, after: Image.Image, box: tuple[int, ...]) -> bool:
    """Did a field's new appearance take away writing that was shown in ``box`` — the
    page's own text or the field's earlier value?  An honest fill draws into an empty box;
    the shadow attacks paint over the text that was signed ("hide/replace via overlay")
    or swap the value a signer saw ("replace via overwrite")."""
    if shown.size != after.size:
        return True
    before, now = shown.crop(box).load(), after.crop(box).load()
    width, height = box[2] - box[0], box[3] - box[1]
    gone = sum(1 for y in range(height) for x in range(width)
               if before[x, y] < INK and now[x, y] > PAPER)
    return gone > HIDDEN_PIXELS


def _union(boxes: list[list[float]]) -> list[float] | None:
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)]
