"""Fonts for the attestation page and signature stamps, subset once per process.

Noto Serif (1000 units per em: pyHanko 0.38 writes widths unscaled, so other
fonts render spread out) cut down to the Vietnamese ranges.  Subsetting a full
font costs ≈ 0.25 s per signature; the subset is made once and cached on disk.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

VIETNAMESE_RANGES = [
    (0x0020, 0x007E), (0x00A0, 0x00A0), (0x00B0, 0x00B0), (0x00D7, 0x00D7),
    (0x0300, 0x0303), (0x0309, 0x0309), (0x0323, 0x0323), (0x1EA0, 0x1EF9),
    (0x2013, 0x2014), (0x2018, 0x201D), (0x2026, 0x2026), (0x20AB, 0x20AB),
]
#: The Vietnamese letters outside the ranges above (Latin-1, Latin Extended-A/B).
VIETNAMESE_LETTERS = "ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯư"


def _codepoints() -> list[int]:
    """Exactly what Vietnamese text needs: fewer glyphs, faster subsetting per signature."""
    return sorted({cp for lo, hi in VIETNAMESE_RANGES for cp in range(lo, hi + 1)}
                  | {ord(c) for c in VIETNAMESE_LETTERS})


@functools.lru_cache(maxsize=8)
def subset_font(source: str, cache_dir: str) -> str:
    """Path of the Vietnamese subset of ``source`` (made on first use, then reused)."""
    src = Path(source)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    target = Path(cache_dir) / f"{src.stem}-vi3-{digest}.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        font = TTFont(str(src))
        options = subset.Options()
        # Precomposed Vietnamese needs no shaping: dropping GSUB/GPOS makes every later
        # (per-signature) subsetting by pyHanko and ReportLab several times faster.
        options.layout_features = []
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        options.glyph_names = False
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=_codepoints())
        subsetter.subset(font)
        # A name of its own: two first signatures at once must not write one file
        # together (the loser renamed a half-written font into place).
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=target.parent)
        os.close(fd)
        font.save(tmp)
        os.replace(tmp, target)
    return str(target)
