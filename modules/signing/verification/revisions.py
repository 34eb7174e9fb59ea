"""What each revision after the first signature changed, read from the objects it wrote:
which pages reach an object (re)written in it, and whether a page's content, its
annotations, a form field or a signature appearance changed, or pages were added or
removed (the object at every page position is compared: a page tree redirected to a
prepared page is a change)."""
from __future__ import annotations

import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from modules.signing.verification.report import Budget

MAX_PAGE_TREE_DEPTH = 64  # a page tree deeper than this is hostile, not a document
MAX_DRAWING_DEPTH = 12  # forms drawn in forms: deeper nesting draws nothing real


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


def page_refs(resolver) -> list[generic.Reference]:
    return _page_tree(resolver)[0]


class PageTrees:
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


def _drawn_by_pages(resolver, pages: list[generic.Reference], budget: Budget
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


def _annotated_by(resolver, pages: list[generic.Reference]) -> dict[generic.Reference, int]:
    """Each annotation listed in a page's /Annots → that page's index."""
    found: dict[generic.Reference, int] = {}
    for index, page_ref in enumerate(pages):
        for raw in _raw_items(_deref(resolver, _entry(resolver(page_ref), "/Annots"))):
            ref = _ref(raw)
            if ref is not None:
                found.setdefault(ref, index)
    return found


def _drew(before, ref: generic.Reference) -> bool:
    """Could the object, as it was, have drawn something?  A form replaced by an empty
    dictionary ("hide via form") no longer looks drawable: what it was decides."""
    try:
        old = before(ref)
    except Exception:  # noqa: BLE001 - not readable before: judged by what it is now
        return False
    return isinstance(old, generic.DictionaryObject) and _may_draw(old)


def _may_draw(obj: generic.DictionaryObject) -> bool:
    """Could this rewritten dictionary or stream change what some page shows?"""
    subtype, type_ = obj.get("/Subtype"), obj.get("/Type")
    if isinstance(obj, generic.StreamObject):
        # XMP metadata, object and xref streams are never drawn (a drawn stream needs a
        # /Subtype of /Form or /Image, or is a content stream compared above).
        return not (subtype == "/XML" or (type_ in ("/ObjStm", "/XRef") and subtype is None))
    return type_ in {"/Catalog", "/Pages"} or \
        any(key in obj for key in _DRAWN_KEYS | _OPTIONAL_CONTENT)


def structural_changes(  # noqa: C901, PLR0912, PLR0915 - to be cut up with the verifier
        reader: PdfFileReader, revision: int, base: int, budget: Budget, trees: PageTrees
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
    annotated = None  # annotation → page, computed only for an annotation without /P
    is_array = getattr(reader, "is_array", None)
    for ref in xrefs.explicit_refs_in_revision(revision):
        budget.take_object()
        if is_array is not None and is_array(ref, revision):
            continue  # arrays: page trees, contents and annotation lists are compared above
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
            if annotated is None:
                annotated = _annotated_by(after, pages_after)
            page = _page_of_annotation(obj, ref, index_of, annotated)
            if page is None:
                render_all = True
            else:
                prepared = xrefs.get_introducing_revision(ref) <= base
                kinds.setdefault(page, set()).add((_annotation_kind(obj), prepared))
                if older and _value_replaced(before, after, ref, obj):
                    kinds[page].add(("hidden_content", False))
        elif _is_field(obj):  # a field whose widgets are its kids: its value changed
            if annotated is None:
                annotated = _annotated_by(after, pages_after)
            prepared = xrefs.get_introducing_revision(ref) <= base
            replaced = older and _value_replaced(before, after, ref, obj)
            for page in _widget_pages(after, obj, index_of, annotated):
                kinds.setdefault(page, set()).add(("form_filling", prepared))
                if replaced:
                    kinds[page].add(("hidden_content", False))
        elif ref in drawn_by:
            kinds.setdefault(drawn_by[ref], set()).add(("page_content", False))
        elif not older or ref == acroform or not (_may_draw(obj) or _drew(before, ref)):
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
    if _appearances_regenerated(before, after):
        if annotated is None:
            annotated = _annotated_by(after, pages_after)
        for page in set(annotated.values()):
            kinds.setdefault(page, set()).add(("regenerated", False))
    return kinds, len(pages_before), len(pages_after), render_all


def _page_of_annotation(obj, ref, index_of: dict, annotated: dict) -> int | None:
    """The page an annotation is on: its /P, or (/P is optional) the page listing it."""
    page = index_of.get(_ref(obj.raw_get("/P"))) if "/P" in obj else None
    return annotated.get(ref) if page is None else page


def _is_field(obj: generic.DictionaryObject) -> bool:
    return obj.get("/Type") != "/Pages" and any(k in obj for k in ("/FT", "/T", "/V"))


def _widget_pages(resolver, field, index_of: dict, annotated: dict) -> set[int]:
    """The pages a field's widgets (its kids, a level down) are drawn on."""
    pages = set()
    for raw in _raw_items(_deref(resolver, _entry(field, "/Kids"))):
        kid = _deref(resolver, raw)
        if isinstance(kid, generic.DictionaryObject) and kid.get("/Subtype") == "/Widget":
            page = _page_of_annotation(kid, _ref(raw), index_of, annotated)
            if page is not None:
                pages.add(page)
    return pages


def _field_type(resolver, obj) -> object:
    parent = _deref(resolver, _entry(obj, "/Parent"))
    return obj.get("/FT") if "/FT" in obj or not isinstance(parent, generic.DictionaryObject) \
        else parent.get("/FT")


def _shown_value(resolver, obj) -> str | None:
    """A text field's value as a reader shows it; None when empty."""
    value = _deref(resolver, _entry(obj, "/V"))
    if value is None or isinstance(value, generic.NullObject):
        return None
    text = str(value)
    return text or None


def _value_replaced(before, after, ref, obj) -> bool:
    """Was a text the signer saw (a text field's value, non-empty when signed) replaced?
    The "replace via overwrite" attack swaps it and lets the reader redraw it
    (NeedAppearances), so no render shows it.  Text fields only: a list or a box is
    filled by changing its selection from what it showed (a prompt, "Off") — the renders
    judge those — and a signature field's value is a signature, judged as one."""
    try:
        old = before(ref)
    except Exception:  # noqa: BLE001 - not readable before: nothing was shown
        return False
    if not isinstance(old, generic.DictionaryObject) or _field_type(before, old) != "/Tx":
        return False
    shown = _shown_value(before, old)
    return shown is not None and shown != _shown_value(after, obj)


def _need_appearances(resolver) -> bool:
    form = _deref(resolver, _entry(resolver(resolver.root_ref), "/AcroForm"))
    flag = _deref(resolver, _entry(form, "/NeedAppearances"))
    return isinstance(flag, generic.BooleanObject) and bool(flag)


def _appearances_regenerated(before, after) -> bool:
    """Did the revision ask readers to redraw every field from its value on opening
    (/NeedAppearances turned on)?  What they will show then is not what was signed, and
    no render here can tell (poppler draws the stored appearances)."""
    try:
        return _need_appearances(after) and not _need_appearances(before)
    except Exception:  # noqa: BLE001 - an unreadable form: the renders tell what they can
        return False
