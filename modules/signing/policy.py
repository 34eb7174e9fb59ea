"""The one PDF policy: what a certified copy may carry, read the same way wherever a PDF
comes from — a scan at intake (it may carry pages, images and text, nothing else) and any
file given to the verifier (a copy must carry nothing that runs, fetches or hides).

The policy walks every object reachable from the trailer, not a list of places where
active content is known to hide: an action is an action in an outline, a form field's
parent, a page, an annotation or a name tree alike.  Each finding says whether it is
*active* (JavaScript, actions that launch, fetch or submit, embedded and associated files,
multimedia and 3D, XFA, optional content that can hide, portfolios: never in a copy) or
*structure* (form fields, widgets, signatures, permissions, internal links: a signed copy
has some of them, a scan has none).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils import generic

#: Every action type of ISO 32000-2 §12.6.4; /GoTo (a link inside the document) is the
#: only one that neither runs, fetches nor changes anything.
ACTION_TYPES = {"/GoTo", "/GoToR", "/GoToE", "/GoToDp", "/GoTo3DView", "/Launch", "/Thread",
                "/URI", "/Sound", "/Movie", "/Hide", "/Named", "/SubmitForm", "/ResetForm",
                "/ImportData", "/JavaScript", "/SetOCGState", "/Rendition", "/Trans",
                "/RichMediaExecute"}
HARMLESS_ACTIONS = {"/GoTo"}
MULTIMEDIA = {"/3D", "/RichMedia", "/Screen", "/Sound", "/Movie", "/FileAttachment"}


@dataclass(frozen=True, order=True)
class Finding:
    code: str  # "javascript", "action:Launch", "embedded_file", "form_field", …
    active: bool  # runs, fetches or hides: never in a certified copy


@dataclass(frozen=True)
class Budget:
    max_objects: int = 200_000
    seconds: float = 20.0
    max_depth: int = 64


class PolicyBudgetError(Exception):
    """The file is too large or too slow to walk within the budget."""


LABELS = {
    "javascript": _l("JavaScript"),
    "additional_actions": _l("actions run on opening or on events"),
    "embedded_file": _l("embedded files"),
    "associated_file": _l("associated files"),
    "xfa": _l("an XFA form"),
    "optional_content": _l("optional content that can hide parts of a page"),
    "portfolio": _l("a PDF portfolio"),
    "postscript": _l("PostScript"),
    "form_field": _l("form fields"),
    "widget": _l("form widgets"),
    "signature": _l("signatures"),
    "permissions": _l("permissions (DocMDP or usage rights)"),
    "action:GoTo": _l("links inside the document"),
}


def label(code: str) -> str:
    """A finding as a person reads it (Vietnamese first)."""
    if code in LABELS:
        return str(LABELS[code])
    kind, _sep, name = code.partition(":")
    if kind == "action":
        return str(_l("an action (%(name)s)", name=name))
    if kind == "multimedia":
        return str(_l("multimedia or 3D (%(name)s)", name=name))
    return code


def findings(trailer: Any, budget: Budget = Budget()) -> list[Finding]:
    """Everything foreign in the objects reachable from ``trailer`` (a reader's
    ``trailer``, or a trailer dictionary), each code once."""
    if hasattr(trailer, "flatten"):  # pyHanko's trailer of every revision: the last one
        trailer = trailer.flatten()
    deadline = time.monotonic() + budget.seconds
    seen: set[tuple[int, int]] = set()
    found: Counter[tuple[str, bool]] = Counter()
    stack: list[tuple[Any, int]] = [(trailer, 0)]
    root = _get(trailer, "/Root")
    reader = None  # the reader the references resolve in, from the first one met
    while stack:
        raw, depth = stack.pop()
        if isinstance(raw, generic.IndirectObject | tuple):  # tuple: read from a text
            key = raw if isinstance(raw, tuple) else (raw.idnum, raw.generation)
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > budget.max_objects or time.monotonic() > deadline:
                raise PolicyBudgetError("too many objects to check")
            if reader is None and not isinstance(raw, tuple):
                reader = raw.reference.pdf
            raw = _dereference(raw, key, reader, stack)
            if raw is None:
                continue
            # Depth is nesting inside one object; a reference starts again (a chain of
            # outline items or structure elements is long, not deep: ``seen`` ends it).
            depth = 0
        if depth > budget.max_depth:
            raise PolicyBudgetError("objects nested too deeply")
        if isinstance(raw, generic.DictionaryObject):
            for finding in _classify(raw, is_root=raw is root):
                found[(finding.code, finding.active)] += 1
            stack.extend((raw.raw_get(k), depth + 1) for k in raw)
        elif isinstance(raw, generic.ArrayObject):
            stack.extend((raw.raw_get(i), depth + 1) for i in range(len(raw)))
    return sorted(Finding(code, active) for code, active in found)


#: Every name a finding is made of: a key (/JS, /AA, /AF …) or a value (/Widget, an action
#: type, a multimedia subtype, /Sig …).  An object naming none of them finds nothing.
_FINDING_NAMES = frozenset(
    {"JS", "JavaScript", "AA", "EF", "EmbeddedFiles", "EmbeddedFile", "AF", "PS", "XFA",
     "Widget", "FT", "ByteRange", "Sig", "DocTimeStamp", "OCProperties", "Collection",
     "Perms"} | {name[1:] for name in ACTION_TYPES | MULTIMEDIA})
_NAME = re.compile(rb"/([^\s/<>\[\]()%{}]*)")
#: A key the rules read the value of (through a reference, too) — not decided by names.
_INDIRECT_VALUE = re.compile(rb"/(?:S|Subtype|Type|FT|JavaScript)\s*\d+\s+\d+\s+R")
_REFERENCE = re.compile(rb"(\d+)\s+(\d+)\s+R(?![A-Za-z0-9])")


def _dereference(raw: Any, key: tuple[int, int], reader: Any, stack: list) -> Any:
    """The object a reference points to; None when its text shows there is nothing to
    find in it, its own references then pushed on ``stack`` instead."""
    refs = _plain_refs(reader, key)
    if refs is not None:
        stack.extend((ref, 0) for ref in refs)
        return None
    if isinstance(raw, tuple):
        raw = generic.IndirectObject(key[0], key[1], reader)
    return raw.get_object()


def _plain_refs(reader: Any, key: tuple[int, int]) -> list[tuple[int, int]] | None:
    """For an object whose text names nothing a finding is made of, the objects it refers
    to — without parsing it (pyHanko parses about 3,000 small objects a second; a tagged
    30-page decree has 9,500 structure elements).  None when it must be parsed: its text
    not to be had (``IndexedPdfReader.object_text``: strings taken out), a finding's name
    in it, an escaped name (#xx), a comment, or a value the rules read held by reference.
    Over-reading is safe: a reference-like token only adds work."""
    read_text = getattr(reader, "object_text", None)
    if read_text is None:
        return None
    text = read_text(*key)
    if text is None or b"#" in text or b"%" in text or _INDIRECT_VALUE.search(text):
        return None
    if not _FINDING_NAMES.isdisjoint(n.decode("latin-1") for n in _NAME.findall(text)):
        return None
    return [(int(n), int(g)) for n, g in _REFERENCE.findall(text)]


def _get(d: generic.DictionaryObject, key: str) -> Any:
    """The value, followed if indirect (a name may hide behind a reference too)."""
    try:
        return d[key] if key in d else None
    except Exception:  # noqa: BLE001 - a dangling reference names nothing
        return None


#: (code, active, test): what one dictionary may be, whatever it is part of.
_RULES: tuple[tuple[str, bool, Callable[[generic.DictionaryObject], bool]], ...] = (
    ("javascript", True, lambda d: "/JS" in d or (
        "/JavaScript" in d and not isinstance(_get(d, "/JavaScript"), generic.NameObject))),
    ("additional_actions", True, lambda d: "/AA" in d),
    ("embedded_file", True, lambda d: "/EF" in d or "/EmbeddedFiles" in d
     or _get(d, "/Type") == "/EmbeddedFile"),
    ("associated_file", True, lambda d: "/AF" in d),
    ("postscript", True, lambda d: "/PS" in (_get(d, "/Subtype"), _get(d, "/Type"))),
    ("xfa", True, lambda d: "/XFA" in d),
    ("widget", False, lambda d: _get(d, "/Subtype") == "/Widget"),
    ("form_field", False, lambda d: "/FT" in d and _get(d, "/FT") != "/Sig"),
    ("signature", False, lambda d: _get(d, "/FT") == "/Sig" or "/ByteRange" in d
     or _get(d, "/Type") in ("/Sig", "/DocTimeStamp")),
)
#: What only the document catalog says: optional content (it can hide what a page
#: draws), a portfolio, permissions (DocMDP, usage rights).
_CATALOG = (("optional_content", True, "/OCProperties"), ("portfolio", True, "/Collection"),
            ("permissions", False, "/Perms"))


def _classify(d: generic.DictionaryObject, *, is_root: bool) -> list[Finding]:
    out = [Finding(code, active) for code, active, test in _RULES if test(d)]
    action = _get(d, "/S")
    if action in ACTION_TYPES and _get(d, "/Type") in (None, "/Action"):
        out.append(Finding(f"action:{str(action)[1:]}", action not in HARMLESS_ACTIONS))
    subtype = _get(d, "/Subtype")
    if subtype in MULTIMEDIA:
        out.append(Finding(f"multimedia:{str(subtype)[1:]}", True))
    if is_root:
        out += [Finding(code, active) for code, active, key in _CATALOG if key in d]
    return out


def active(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.active]


def describe(found: list[Finding]) -> str:
    """The findings in one line, for a refusal or a report."""
    return ", ".join(dict.fromkeys(label(f.code) for f in found))
