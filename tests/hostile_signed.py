"""Hostile signed PDFs, made by code (pyHanko): the attacks of the PDF-signature
literature, each with the verdict the verifier must give.

Mladenov et al., "1 Trillion Dollar Refund" (CCS 2019): incremental saving, signature
wrapping, universal forgery by coverage; Mainka et al., "Shadow Attacks" (NDSS 2021):
hide, replace, hide-and-replace — content prepared before signing and switched on by an
innocent-looking update.  Signed with a demo-PKI key (trusted in demo mode), so that
only the attack decides the verdict.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec

A4 = (595, 842)


def _stream(writer, data: bytes, **entries) -> generic.IndirectObject:
    stream = generic.StreamObject({pdf_name(k): v for k, v in entries.items()}, stream_data=data)
    return writer.add_object(stream)


def _form(writer, content: bytes) -> generic.IndirectObject:
    """A form XObject drawing ``content`` (rectangles and Helvetica text)."""
    return _stream(writer, content, **{
        "/Type": pdf_name("/XObject"), "/Subtype": pdf_name("/Form"),
        "/BBox": generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, *A4)]),
        "/Resources": generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject({
            pdf_name("/F1"): writer.font_ref})})})


def _text(words: str, y: int, size: int = 28) -> bytes:
    return f"BT /F1 {size} Tf 72 {y} Td ({words}) Tj ET\n".encode()


class Document:
    """A small document with the objects an attacker prepares before it is signed."""

    def __init__(self, pages: int = 2, with_field: bool = False, overlay: bool = False,
                 widget_page: bool = True):
        w = PdfFileWriter()
        w.font_ref = self.font = w.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Font"), pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica")}))
        # Shadow objects: in the signed revision, drawn by nothing (or hidden) for now.
        self.original = _form(w, b"0 0 0 rg 72 560 300 60 re f\n" + _text("PAY 100 VND", 520))
        self.fake = _form(w, b"1 0 0 rg 72 560 300 60 re f\n" + _text("PAY 9000000 VND", 520))
        self.cover = _form(w, b"1 1 1 rg 60 380 480 80 re f\n")
        self.empty = _form(w, b"")
        self.unused = _stream(w, b"%% an unused stream\n" * 50)
        self.resources = w.add_object(generic.DictionaryObject({
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): w.font_ref}),
            pdf_name("/XObject"): generic.DictionaryObject({
                pdf_name("/X1"): self.original, pdf_name("/Cover"): self.cover})}))
        for n in range(pages):
            content = _text(f"PAGE {n + 1} ORIGINAL", 760)
            if n == 0:
                content += _text("SECRET CLAUSE", 400) + b"q /X1 Do Q q /Cover Do Q\n"
            w.insert_page(generic.DictionaryObject({
                pdf_name("/Type"): pdf_name("/Page"),
                pdf_name("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, *A4)]),
                pdf_name("/Resources"): self.resources,
                pdf_name("/Contents"): _stream(w, content)}))
        pages_ref = w.root.raw_get("/Pages")
        # A prepared page 1 that no page-tree node lists yet (hide-and-replace).
        self.shadow_page = w.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Page"), pdf_name("/Parent"): pages_ref,
            pdf_name("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, *A4)]),
            pdf_name("/Resources"): self.resources,
            pdf_name("/Contents"): _stream(w, _text("PAGE 1 FORGED", 760))}))
        if with_field or overlay:
            fields.append_signature_field(w, SigFieldSpec("Sig2", on_page=0,
                                                          box=(300, 60, 500, 120)))
            _text_field(w, "Amount", (72, 200, 300, 230), widget_page)
        if overlay:  # an empty field lying over "PAGE 1 ORIGINAL" (y = 760)
            _text_field(w, "Overlay", (60, 745, 420, 800))
        out = io.BytesIO()
        w.write(out)
        self.data = out.getvalue()


def _text_field(writer, name: str, box, with_page: bool = True) -> None:
    """A text field with its widget on page 1 (``with_page``: the widget names its page
    with /P, which PDF leaves optional and many producers omit)."""
    page_ref = writer.find_page_for_modification(0)[0]
    widget = writer.add_object(generic.DictionaryObject({
        pdf_name("/FT"): pdf_name("/Tx"), pdf_name("/T"): generic.pdf_string(name),
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Widget"),
        pdf_name("/F"): generic.NumberObject(4),
        pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in box),
        pdf_name("/DA"): generic.pdf_string("/Helv 0 Tf 0 g"),
        **({pdf_name("/P"): page_ref} if with_page else {})}))
    form = writer.root["/AcroForm"]
    form["/Fields"].append(widget)
    writer.register_annotation(page_ref, widget)


def sign(data: bytes, signer, field: str = "Sig1", certify: MDPPerm | None = None) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(field_name=field, certify=certify is not None,
                                        docmdp_permissions=certify or MDPPerm.FILL_FORMS,
                                        md_algorithm="sha256")
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer).sign_pdf(writer, output=out)
    return out.getvalue()


def update(data: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    """One more incremental update, made by ``change``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return data + out.getvalue()[len(data):] if out.getvalue().startswith(data) \
        else out.getvalue()


def _here(writer, indirect):
    """The same object, addressed through ``writer`` (references know their document)."""
    return generic.IndirectObject(indirect.idnum, indirect.generation, writer)


def _rewrite_xobject(doc: Document, name: str, target) -> Callable:
    def change(writer):
        resources = _here(writer, doc.resources).get_object()
        resources["/XObject"][pdf_name(name)] = _here(writer, target)
        writer.update_container(resources)
    return change


# --- the corpus: name → (builder(signer) -> bytes, verdicts it may get) ------------------

def untouched(signer) -> bytes:
    return sign(Document().data, signer)


def isa_page_content(signer) -> bytes:
    """Incremental saving attack: a later update rewrites page 1's content stream."""
    signed = sign(Document().data, signer)

    def change(writer):
        page_ref, _res = writer.find_page_for_modification(0)
        page = writer.get_object(page_ref.reference)
        stream = page["/Contents"]
        stream._data = _text("PAGE 1 CHANGED AFTER SIGNING", 760)
        stream._encoded_data = None
        writer.update_container(stream)
    return update(signed, change)


def shadow_hide(signer) -> bytes:
    doc = Document()
    return update(sign(doc.data, signer), _rewrite_xobject(doc, "/Cover", doc.empty))


def shadow_replace(signer) -> bytes:
    doc = Document()
    return update(sign(doc.data, signer), _rewrite_xobject(doc, "/X1", doc.fake))


def shadow_hide_and_replace_pages(signer) -> bytes:
    """Only the page-tree node is rewritten: page 1 now points at the prepared page."""
    doc = Document()

    def change(writer):
        pages = writer.root["/Pages"]
        kids = pages["/Kids"]
        kids[0] = _here(writer, doc.shadow_page)
        writer.update_container(pages)
    return update(sign(doc.data, signer), change)


def unused_stream_rewritten(signer, pages: int = 2, updates: int = 1) -> bytes:
    """Later updates rewrite an old stream no page draws: nothing shown changes."""
    doc = Document(pages=pages)
    data = sign(doc.data, signer)
    for n in range(updates):
        def change(writer, n=n):
            stream = _here(writer, doc.unused).get_object()
            stream._data = (b"%% rewritten %d\n" % n) * 40
            stream._encoded_data = None
            writer.update_container(stream)
        data = update(data, change)
    return data


def many_empty_updates(signer, count: int = 45) -> bytes:
    data = sign(Document().data, signer)
    for _ in range(count):
        data = update(data, lambda writer: writer.update_root())
    return data


def _resign(data: bytes, signer, byte_range: list[int] | None = None,
            signed_attrs_change: Callable | None = None) -> bytes:
    """Replace the signature's /ByteRange (same width) and put in a CMS made by ``signer``
    over exactly those bytes: a cryptographically correct signature of something else."""
    import asyncio

    match = re.search(rb"/ByteRange\s*\[([\d ]+)\]", data)
    old = [int(v) for v in match.group(1).split()]
    contents_start, contents_end = old[1], old[2]
    ranges = byte_range or old
    text = b"[" + b" ".join(str(v).encode() for v in ranges) + b"]"
    width = match.end() - match.start() - len(b"/ByteRange ")
    patched = data[:match.start()] + b"/ByteRange " + text.ljust(width) + data[match.end():]
    a, b, c, d = ranges
    digest = hashlib.sha256(patched[a:a + b] + patched[c:c + d]).digest()
    cms = asyncio.run(signer.async_sign(digest, "sha256"))
    hex_cms = cms.dump().hex().encode()
    room = contents_end - contents_start - 2
    return (patched[:contents_start + 1] + hex_cms.ljust(room, b"0")
            + patched[contents_end - 1:])


def coverage_partial(signer) -> bytes:
    """The signature covers 40 bytes of the file (a universal signature forgery)."""
    return _resign(sign(Document().data, signer), signer, [0, 10, 20, 30])


def xref_not_covered(signer) -> bytes:
    """The signed range stops before its revision's xref and trailer."""
    signed = sign(Document().data, signer)
    a, b, c, d = (int(v) for v in re.search(rb"/ByteRange\s*\[([\d ]+)\]",
                                            signed).group(1).split())
    tail = len(signed) - signed.rindex(b"xref", c)
    return _resign(signed, signer, [a, b, c, d - tail])


def signature_dictionary_rewritten(signer) -> bytes:
    signed = sign(Document().data, signer)

    def change(writer):
        reader = PdfFileReader(io.BytesIO(signed), strict=False)
        raw = reader.embedded_signatures[0].sig_field.raw_get("/V")
        sig = _here(writer, raw).get_object()
        sig["/Reason"] = generic.pdf_string("changed after signing")
        writer.update_container(sig)
    return update(signed, change)


def byte_range_past_eof(signer) -> bytes:
    signed = sign(Document().data, signer)
    match = re.search(rb"/ByteRange\s*\[([\d ]+)\]", signed)
    a, b, c, d = (int(v) for v in match.group(1).split())
    text = f"[{a} {b} {c} {d + 5000}]".encode()
    width = match.end() - match.start() - len(b"/ByteRange ")
    return signed[:match.start()] + b"/ByteRange " + text.ljust(width) + signed[match.end():]


def modified_and_unparseable(signer) -> bytes:
    """Bytes changed inside the signed range, so that no PDF reader can make sense of it."""
    signed = sign(Document().data, signer)
    broken = re.sub(rb"startxref\s+\d+", lambda m: b"startxref 9" + b"9" * (len(m.group(0)) - 11),
                    signed)
    return broken.replace(b"xref", b"xrof").replace(b"/Root", b"/Rooo")


def docmdp(level: MDPPerm, then: str) -> Callable:
    """Certified at ``level``, then a later update: ``fill`` (a prepared field, signed),
    ``fill_unsigned``, ``annotate`` (a note, then signed) or ``content`` (page content,
    then signed)."""
    def build(signer) -> bytes:
        from pyhanko.pdf_utils.form_tools import populate_static_text_field  # noqa: F401

        data = sign(Document(with_field=True).data, signer, certify=level)
        if then in ("fill", "fill_unsigned"):
            def change(writer):
                field = next(f.get_object() for f in writer.root["/AcroForm"]["/Fields"]
                             if f.get_object().get("/T") == "Amount")
                field["/V"] = generic.pdf_string("100 VND")
                writer.update_container(field)
                ap = _stream(writer, b"0 0 1 rg 0 0 228 30 re f\n", **{
                    "/Type": pdf_name("/XObject"), "/Subtype": pdf_name("/Form"),
                    "/BBox": generic.ArrayObject([generic.NumberObject(v)
                                                  for v in (0, 0, 228, 30)])})
                field["/AP"] = generic.DictionaryObject({pdf_name("/N"): ap})
        elif then == "annotate":
            def change(writer):
                page_ref = writer.find_page_for_modification(0)[0]
                note = writer.add_object(generic.DictionaryObject({
                    pdf_name("/Type"): pdf_name("/Annot"),
                    pdf_name("/Subtype"): pdf_name("/Square"),
                    pdf_name("/Rect"): generic.ArrayObject(
                        [generic.NumberObject(v) for v in (100, 100, 300, 300)]),
                    pdf_name("/C"): generic.ArrayObject(
                        [generic.FloatObject(v) for v in (1, 0, 0)]),
                    pdf_name("/P"): page_ref}))
                writer.register_annotation(page_ref, note)
        else:
            def change(writer):
                page_ref, _res = writer.find_page_for_modification(1)
                writer.add_stream_to_page(1, writer.add_object(generic.StreamObject(
                    stream_data=b"0 0 1 rg 72 300 300 100 re f\n")))
        data = update(data, change)
        if then != "fill_unsigned":
            data = sign(data, signer, field="Sig2")
        return data
    return build


def naive_signing_time(signer) -> bytes:
    """signingTime written as a GeneralizedTime without a zone, beside a real timestamp
    token (as some signing software does): the times cannot be compared as they are."""
    from unittest import mock

    from asn1crypto import cms, core
    from pyhanko.sign import attributes
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    async def naive(self, dry_run=False):
        return cms.Time({"generalized_time": core.GeneralizedTime.load(b"\x18\x0e20261201093000")})

    stamper = DummyTimeStamper(signer.signing_cert, signer.signing_key,
                               certs_to_embed=list(signer.cert_registry))
    writer = IncrementalPdfFileWriter(io.BytesIO(Document().data), strict=False)
    meta = signers.PdfSignatureMetadata(field_name="Sig1", md_algorithm="sha256")
    out = io.BytesIO()
    with mock.patch.object(attributes.SigningTimeProvider, "build_attr_value", naive):
        signers.PdfSigner(meta, signer=signer, timestamper=stamper).sign_pdf(writer, output=out)
    return out.getvalue()


def active_javascript(signer) -> bytes:
    doc = Document()

    def add_js(writer):
        action = writer.add_object(generic.DictionaryObject({
            pdf_name("/S"): pdf_name("/JavaScript"),
            pdf_name("/JS"): generic.pdf_string("app.alert('hi')")}))
        writer.root[pdf_name("/OpenAction")] = action
        writer.update_root()
    with_js = update(doc.data, add_js)
    return sign(with_js, signer)


def _signed_foreign(name: str) -> Callable:
    """A hostile scan's active content (tests/hostile_scans.py), signed as it stands."""
    def build(signer) -> bytes:
        from tests.hostile_scans import foreign_content

        return sign(foreign_content()[name][0], signer)
    return build


# --- second round (issue 27): shadow attacks through form fields, signatures that cannot
# be checked, and honest files an earlier verifier called tampered -------------------------

def _fill(name: str, appearance: bytes, box: tuple[int, int], doc: Document) -> Callable:
    """Fill the prepared text field ``name``: its value and an appearance drawing
    ``appearance`` in a ``box`` (width, height) with Helvetica as /F1."""
    def change(writer):
        field = next(f.get_object() for f in writer.root["/AcroForm"]["/Fields"]
                     if f.get_object().get("/T") == name)
        field["/V"] = generic.pdf_string("filled")
        ap = _stream(writer, appearance, **{
            "/Type": pdf_name("/XObject"), "/Subtype": pdf_name("/Form"),
            "/BBox": generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, *box)]),
            "/Resources": generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
                {pdf_name("/F1"): _here(writer, doc.font)})})})
        field["/AP"] = generic.DictionaryObject({pdf_name("/N"): ap})
        writer.update_container(field)
    return change


def hide_via_form(signer) -> bytes:
    """RUB-NDS "hide via form": the form XObject page 1 draws ("PAY 100 VND") becomes an
    empty dictionary in a later revision — nothing left that looks drawable."""
    doc = Document()

    def change(writer):
        writer.objects[(doc.original.generation, doc.original.idnum)] = \
            generic.DictionaryObject()
    return update(sign(doc.data, signer), change)


def replace_via_overlay(signer) -> bytes:
    """RUB-NDS "replace via overlay": a field prepared empty over the page's text is
    filled after signing with an opaque appearance that hides it and says other words."""
    doc = Document(overlay=True)
    return update(sign(doc.data, signer), _fill(
        "Overlay", b"1 1 1 rg 0 0 360 55 re f 0 0 0 rg BT /F1 20 Tf 6 18 Td (NOTHING) Tj ET\n",
        (360, 55), doc))


def replace_via_overwrite(signer) -> bytes:
    """RUB-NDS "replace via overwrite": the field shows "100 VND" when signed; afterwards
    its appearance is swapped for "9000000 VND" — a form fill by the letter, the signed
    value replaced in fact."""
    doc = Document(with_field=True)
    shown = _fill("Amount", b"0 0 0 rg BT /F1 14 Tf 4 8 Td (100 VND) Tj ET\n", (228, 30), doc)
    return update(sign(update(doc.data, shown), signer), _fill(
        "Amount", b"0 0 0 rg BT /F1 14 Tf 4 8 Td (9000000 VND) Tj ET\n", (228, 30), doc))


def hide_via_overlay_certified(signer) -> bytes:
    """The same under a certification that permits filling forms (DocMDP P=2), then
    signed by a second, unsuspecting signer: the permission does not make hiding honest."""
    doc = Document(overlay=True)
    data = update(sign(doc.data, signer, certify=MDPPerm.FILL_FORMS), _fill(
        "Overlay", b"1 1 1 rg 0 0 360 55 re f\n", (360, 55), doc))
    return sign(data, signer, field="Sig2")


def _parent_field(doc: Document, value: str | None, shows: str,
                  need_appearances: bool) -> Callable:
    """A text field whose widget is its kid (value on the field, appearance on the widget,
    as form designers make them), on page 1: its value ``value``, its widget showing
    ``shows``; the form asks readers to redraw fields from their values or not."""
    def change(writer):
        page_ref = writer.find_page_for_modification(0)[0]
        appearance = _stream(writer, f"/Tx BMC BT /F1 14 Tf 0 g 4 8 Td ({shows}) Tj ET EMC\n"
                             .encode(), **{
            "/Type": pdf_name("/XObject"), "/Subtype": pdf_name("/Form"),
            "/BBox": generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 228, 30)]),
            "/Resources": generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
                {pdf_name("/F1"): _here(writer, doc.font)})})})
        field = writer.add_object(generic.DictionaryObject({
            pdf_name("/FT"): pdf_name("/Tx"), pdf_name("/T"): generic.pdf_string("Amount"),
            pdf_name("/DA"): generic.pdf_string("/F1 14 Tf 0 g"),
            **({pdf_name("/V"): generic.pdf_string(value)} if value else {})}))
        widget = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/F"): generic.NumberObject(4), pdf_name("/Parent"): field,
            pdf_name("/P"): page_ref,
            pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v)
                                                   for v in (72, 200, 300, 230)),
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance})}))
        field.get_object()[pdf_name("/Kids")] = generic.ArrayObject([widget])
        writer.root[pdf_name("/AcroForm")] = generic.DictionaryObject({
            pdf_name("/Fields"): generic.ArrayObject([field]),
            pdf_name("/NeedAppearances"): generic.BooleanObject(need_appearances),
            pdf_name("/DR"): generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
                {pdf_name("/F1"): _here(writer, doc.font)})})})
        writer.update_root()
        writer.register_annotation(page_ref, widget)
    return change


def _set_value(value: str) -> Callable:
    """Change the value of the form's first field — nothing else."""
    def change(writer):
        field = writer.root["/AcroForm"]["/Fields"][0]
        field["/V"] = generic.pdf_string(value)
        writer.update_container(field)
    return change


def replace_via_value_redrawn(signer) -> bytes:
    """"Replace via overwrite" where no appearance is touched: the field's value "100 VND"
    becomes "9000000 VND" and the form asks readers to redraw fields from their values
    (Acrobat does; poppler draws the stored appearance, so no render shows it)."""
    doc = Document()
    prepared = update(doc.data, _parent_field(doc, "100 VND", "100 VND", True))
    return update(sign(prepared, signer), _set_value("9000000 VND"))


def appearances_redrawn_after_signing(signer) -> bytes:
    """The widget shows "100 VND" when signed while the field's value says "9000000 VND";
    afterwards the form asks readers to redraw every field from its value."""
    doc = Document()
    prepared = update(doc.data, _parent_field(doc, "9000000 VND", "100 VND", False))

    def redraw(writer):
        writer.root["/AcroForm"]["/NeedAppearances"] = generic.BooleanObject(True)
        writer.update_root()
    return update(sign(prepared, signer), redraw)


def docmdp_p2_fill_kid_widget(signer) -> bytes:
    """Honest: certified P=2, an empty field whose widget is its kid filled in afterwards
    (the field's value set, readers asked to redraw it), not signed again."""
    doc = Document()
    prepared = update(doc.data, _parent_field(doc, None, "", True))
    return update(sign(prepared, signer, certify=MDPPerm.FILL_FORMS), _set_value("100 VND"))


def _patched_cms(data: bytes, change: Callable, which: int = -1) -> bytes:
    """Rewrite the CMS of the ``which``-th signature in place (its /Contents, outside the
    signed bytes), padded to the same room."""
    from asn1crypto import cms

    matches = list(re.finditer(rb"/ByteRange\s*\[([\d ]+)\]", data))
    _a, b, c, _d = (int(v) for v in matches[which].group(1).split())
    hex_contents = data[b + 1:c - 1]
    info = cms.ContentInfo.load(bytes.fromhex(hex_contents.decode()))  # padding ignored
    change(info)
    new = info.dump(force=True).hex().encode()
    assert len(new) <= len(hex_contents)
    return data[:b + 1] + new.ljust(len(hex_contents), b"0") + data[c - 1:]


def _signer_info(info):
    return info["content"]["signer_infos"][0]


def signature_value_forged(signer) -> bytes:
    """The digest matches (intact) but the signature value does not verify."""
    def change(info):
        value = bytearray(_signer_info(info)["signature"].native)
        value[10] ^= 0xFF
        _signer_info(info)["signature"] = bytes(value)
    return _patched_cms(sign(Document().data, signer), change)


def signature_algorithm_unknown(signer) -> bytes:
    """Intact, but signed with an algorithm no verifier here knows (an unknown OID)."""
    from asn1crypto import algos

    def change(info):
        _signer_info(info)["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": "1.2.840.113549.1.1.99"})
    return _patched_cms(sign(Document().data, signer), change)


def docmdp_p2_fill_widget_without_page(signer) -> bytes:
    """Honest: certified P=2, a text field whose widget has no /P is filled later, then
    signed — a form fill, not page content."""
    doc = Document(with_field=True, widget_page=False)
    data = update(sign(doc.data, signer, certify=MDPPerm.FILL_FORMS), _fill(
        "Amount", b"0 0 0 rg BT /F1 14 Tf 4 8 Td (100 VND) Tj ET\n", (228, 30), doc))
    return sign(data, signer, field="Sig2")


def docmdp_p2_fill_unsigned(signer) -> bytes:
    """Honest: certified P=2 and a prepared field filled afterwards, as ISO 32000 lets
    anyone do without signing again."""
    doc = Document(with_field=True)
    return update(sign(doc.data, signer, certify=MDPPerm.FILL_FORMS), _fill(
        "Amount", b"0 0 0 rg BT /F1 14 Tf 4 8 Td (100 VND) Tj ET\n", (228, 30), doc))


def second_signature_empty_econtent(signer) -> bytes:
    """Honest (a CA product in use in Vietnam): the second signature's CMS carries an empty
    eContent instead of none; pyHanko cannot check it, its bytes are what was signed."""
    from asn1crypto import core

    doc = Document(with_field=True)
    data = sign(sign(doc.data, signer), signer, field="Sig2")

    def change(info):
        info["content"]["encap_content_info"]["content"] = core.OctetString(b"")
    return _patched_cms(data, change)


PLACEHOLDER_RANGE = b"9999999999"


def _with_signature_placeholder(data: bytes) -> bytes:
    """The document with a signature field whose value is a signature dictionary still
    to be filled in place (its /ByteRange and /Contents reserved), as a signing program
    that writes the whole file at once prepares it."""
    def change(writer):
        sig = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Sig"), pdf_name("/Filter"): pdf_name("/Adobe.PPKLite"),
            pdf_name("/SubFilter"): pdf_name("/adbe.pkcs7.detached"),
            pdf_name("/ByteRange"): generic.ArrayObject(
                [generic.NumberObject(0)] + [generic.NumberObject(int(PLACEHOLDER_RANGE))] * 3),
            pdf_name("/Contents"): generic.ByteStringObject(bytes(8192))}))
        fields.append_signature_field(writer, SigFieldSpec("Sig1", on_page=0,
                                                           box=(300, 140, 500, 180)))
        field = next(f.get_object() for f in writer.root["/AcroForm"]["/Fields"]
                     if f.get_object().get("/T") == "Sig1")
        field["/V"] = sig
    return update(data, change)


def _fill_placeholder(data: bytes, signer) -> bytes:
    """Sign the reserved signature in place: the byte range around /Contents, then a CMS
    over exactly those bytes."""
    import asyncio

    contents = re.search(rb"/Contents\s*<(0+)>", data)
    start, end = contents.start(1) - 1, contents.end(1) + 1  # the hex string, brackets too
    ranges = [0, start, end, len(data) - end]
    match = re.search(rb"/ByteRange\s*\[\s*0\s+9999999999\s+9999999999\s+9999999999\s*\]",
                      data)
    text = b"/ByteRange [" + b" ".join(str(v).encode() for v in ranges) + b"]"
    data = data[:match.start()] + text.ljust(match.end() - match.start()) + data[match.end():]
    digest = hashlib.sha256(data[:start] + data[end:]).digest()
    cms = asyncio.run(signer.async_sign(digest, "sha256")).dump().hex().encode()
    return data[:start + 1] + cms.ljust(end - start - 2, b"0") + data[end - 1:]


def linearized_signed_twice(signer) -> bytes:
    """Honest: saved linearized ("fast web view", qpdf) with its first signature inside —
    the first-page and main cross-reference sections end where the signature does —
    then signed again incrementally."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        plain, linear = Path(tmp) / "plain.pdf", Path(tmp) / "linear.pdf"
        plain.write_bytes(_with_signature_placeholder(Document().data))
        subprocess.run(["qpdf", "--linearize", "--object-streams=disable", str(plain),
                        str(linear)], check=True)
        first = _fill_placeholder(linear.read_bytes(), signer)
    return sign(first, signer, field="Sig2")


def hybrid_update(data: bytes, compressed: dict[int, bytes]) -> bytes:
    """Append a hybrid-reference update (as Word and other producers write them): a classic
    cross-reference table whose trailer's /XRefStm points to a cross-reference stream, and
    only that stream lists ``compressed`` (object number → body), kept in an object stream
    — a reader that ignores /XRefStm sees no change at all."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    size, root = int(reader.trailer["/Size"]), reader.trailer.raw_get("/Root").idnum
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    objstm = max(size, max(compressed) + 1)  # new objects may be among ``compressed``
    xrefstm, size = objstm + 1, objstm
    header, bodies = [], b""
    for number, body in compressed.items():
        header.append(b"%d %d" % (number, len(bodies)))
        bodies += body + b"\n"
    head = b" ".join(header) + b"\n"
    offsets = {objstm: len(out)}
    out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Length %d >>\nstream\n%s\n" \
        b"endstream\nendobj\n" % (objstm, len(compressed), len(head), len(head + bodies),
                                   head + bodies)
    rows = b"".join(bytes([2]) + objstm.to_bytes(4, "big") + i.to_bytes(2, "big")
                    for i in range(len(compressed)))
    offsets[xrefstm] = len(out)
    out += b"%d 0 obj\n<< /Type /XRef /W [1 4 2] /Index [%s] /Size %d /Length %d >>\n" \
        b"stream\n%s\nendstream\nendobj\n" % (
            xrefstm, b" ".join(b"%d 1" % n for n in compressed), size + 2, len(rows), rows)
    table = len(out)
    out += b"xref\n" + b"".join(b"%d 1\n%010d 00000 n \n" % (n, offsets[n]) for n in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d /XRefStm %d >>\nstartxref\n%d\n" \
        b"%%%%EOF\n" % (size + 2, root, prev, offsets[xrefstm], table)
    return bytes(out)


def hybrid_xref_swap(signer) -> bytes:
    """The shadow swap hidden in a hybrid update: page 1's resources, rewritten to draw the
    prepared "PAY 9000000 VND", are listed only by the /XRefStm."""
    doc = Document()
    resources = b"<< /Font << /F1 %d 0 R >> /XObject << /X1 %d 0 R /Cover %d 0 R >> >>" % (
        doc.font.idnum, doc.fake.idnum, doc.cover.idnum)
    return hybrid_update(sign(doc.data, signer), {doc.resources.idnum: resources})


def hybrid_xref_then_signed(signer) -> bytes:
    """Honest: signed, saved by a producer writing hybrid references (only the document
    information changes), then signed again."""
    data = sign(Document().data, signer)
    info = PdfFileReader(io.BytesIO(data), strict=False).trailer.raw_get("/Info").idnum
    return sign(hybrid_update(data, {info: b"<< /Producer (Word) >>"}), signer, field="Sig2")


#: Active content of every class the issue's probe found in delivered copies.
ACTIVE_CLASSES = ("outline_javascript", "outline_launch", "field_parent_aa", "associated_exe",
                  "annotation_3d", "gotor_unc", "uri_open_action", "named_action")

#: name → (builder, verdicts it may get)
CORPUS: dict[str, tuple[Callable, set[str]]] = {
    "untouched": (untouched, {"valid"}),
    "isa_page_content": (isa_page_content, {"tampered"}),
    "shadow_hide": (shadow_hide, {"tampered"}),
    "shadow_replace": (shadow_replace, {"tampered"}),
    "shadow_hide_and_replace_pages": (shadow_hide_and_replace_pages, {"tampered"}),
    "unused_stream_rewritten": (unused_stream_rewritten, {"valid"}),
    "coverage_partial": (coverage_partial, {"tampered"}),
    "xref_not_covered": (xref_not_covered, {"tampered"}),
    "signature_dictionary_rewritten": (signature_dictionary_rewritten, {"tampered"}),
    "byte_range_past_eof": (byte_range_past_eof, {"tampered"}),
    "modified_and_unparseable": (modified_and_unparseable, {"tampered"}),
    "docmdp_p1_then_fill": (docmdp(MDPPerm.NO_CHANGES, "fill_unsigned"), {"tampered"}),
    "docmdp_p2_then_fill_and_sign": (docmdp(MDPPerm.FILL_FORMS, "fill"),
                                     {"valid", "valid_with_later_changes"}),
    "docmdp_p2_then_annotation": (docmdp(MDPPerm.FILL_FORMS, "annotate"), {"tampered"}),
    "docmdp_p3_then_annotation": (docmdp(MDPPerm.ANNOTATE, "annotate"),
                                  {"valid_with_later_changes"}),
    "docmdp_p3_then_page_content": (docmdp(MDPPerm.ANNOTATE, "content"), {"tampered"}),
    "naive_signing_time": (naive_signing_time, {"valid", "untrusted", "indeterminate"}),
    "active_javascript": (active_javascript, {"untrusted"}),  # never plain valid
    "many_empty_updates": (many_empty_updates, {"indeterminate"}),
    **{f"signed_{name}": (_signed_foreign(name), {"untrusted"}) for name in ACTIVE_CLASSES},
    # second round: attacks that passed …
    "hide_via_form": (hide_via_form, {"tampered"}),
    "replace_via_overlay": (replace_via_overlay, {"tampered"}),
    "hide_via_overlay_certified": (hide_via_overlay_certified, {"tampered"}),
    "replace_via_overwrite": (replace_via_overwrite, {"tampered"}),
    "signature_value_forged": (signature_value_forged, {"tampered"}),
    "signature_algorithm_unknown": (signature_algorithm_unknown, {"indeterminate"}),
    # … and honest files called tampered
    "docmdp_p2_fill_widget_without_page": (docmdp_p2_fill_widget_without_page,
                                           {"valid", "valid_with_later_changes"}),
    "docmdp_p2_fill_unsigned": (docmdp_p2_fill_unsigned, {"valid_with_later_changes"}),
    "linearized_signed_twice": (linearized_signed_twice, {"valid", "valid_with_later_changes"}),
    "second_signature_empty_econtent": (second_signature_empty_econtent,
                                        {"indeterminate", "valid", "valid_with_later_changes"}),
    # third round: a value readers redraw …
    "replace_via_value_redrawn": (replace_via_value_redrawn, {"tampered"}),
    # (poppler redraws some such fields and not others: when it does, the render shows the
    # change and it is tampered; when it cannot, what readers will show is unknown)
    "appearances_redrawn_after_signing": (appearances_redrawn_after_signing,
                                          {"tampered", "indeterminate"}),
    "docmdp_p2_fill_kid_widget": (docmdp_p2_fill_kid_widget,
                                  {"valid", "valid_with_later_changes"}),
    # … and files whose revisions use hybrid references
    "hybrid_xref_swap": (hybrid_xref_swap, {"tampered"}),
    "hybrid_xref_then_signed": (hybrid_xref_then_signed, {"valid", "valid_with_later_changes"}),
}


def mislabelled_tsa(tsa, forged: bool = False):
    """A time-stamping authority (``tsa``: its signer) whose tokens label their TSTInfo as
    plain data (id-data), as some authorities' products do; ``forged`` stamps another
    digest than the one asked."""
    from asn1crypto import cms
    from asn1crypto import core as asn1_core
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign.general import simple_cms_attribute
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    class Stamper(DummyTimeStamper):
        async def async_timestamp(self, message_digest, md_algorithm):
            if forged:
                message_digest = hashlib.new(md_algorithm, b"another document").digest()
            token = await super().async_timestamp(message_digest, md_algorithm)
            signed_data = token["content"]
            content = signed_data["encap_content_info"]["content"].contents
            info = signed_data["signer_infos"][0]
            attributes = cms.CMSAttributes([
                simple_cms_attribute("content_type", "data")
                if a["type"].native == "content_type" else a for a in info["signed_attrs"]])
            key = serialization.load_der_private_key(self.tsa_key.dump(), None)
            # signed as a SET (tag 0x31), before it takes its [0] tag in the SignerInfo
            info["signature"] = key.sign(attributes.dump(), PKCS1v15(), hashes.SHA256())
            info["signed_attrs"] = attributes
            signed_data["encap_content_info"] = cms.EncapsulatedContentInfo({
                "content_type": "data", "content": asn1_core.ParsableOctetString(content)})
            return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    return Stamper(tsa.signing_cert, tsa.signing_key, certs_to_embed=list(tsa.cert_registry))


def stamped(data: bytes, signer, stamper, document: bool = False) -> bytes:
    """Signed with ``stamper``'s signature timestamp, or (``document``) signed and then
    given a document timestamp by it."""
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper

    if document:
        writer = IncrementalPdfFileWriter(io.BytesIO(sign(data, signer)), strict=False)
        out = io.BytesIO()
        PdfTimeStamper(stamper).timestamp_pdf(writer, "sha256", output=out)
        return out.getvalue()
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(field_name="Sig1", md_algorithm="sha256")
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer, timestamper=stamper).sign_pdf(writer, output=out)
    return out.getvalue()
