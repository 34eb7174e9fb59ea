"""Fonts for the attestation page and signature stamps, subset once per process.

Noto Serif (1000 units per em: pyHanko 0.38 writes widths unscaled, so other
fonts render spread out) cut down to the Vietnamese ranges.  Subsetting a full
font costs ≈ 0.25 s per signature; the subset is made once and cached on disk.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

VIETNAMESE_RANGES = [
    (0x0020, 0x007E), (0x00A0, 0x00FF), (0x0100, 0x017F), (0x01A0, 0x01B0),
    (0x0300, 0x0323), (0x1EA0, 0x1EF9), (0x2010, 0x2027), (0x2030, 0x203A), (0x20AB, 0x20AB),
]


def _codepoints() -> list[int]:
    return [cp for lo, hi in VIETNAMESE_RANGES for cp in range(lo, hi + 1)]


@functools.lru_cache(maxsize=8)
def subset_font(source: str, cache_dir: str) -> str:
    """Path of the Vietnamese subset of ``source`` (made on first use, then reused)."""
    src = Path(source)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    target = Path(cache_dir) / f"{src.stem}-vi-{digest}.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        font = TTFont(str(src))
        options = subset.Options()
        options.layout_features = ["*"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        options.glyph_names = False
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=_codepoints())
        subsetter.subset(font)
        tmp = target.with_suffix(".tmp")
        font.save(str(tmp))
        tmp.replace(target)
    return str(target)
