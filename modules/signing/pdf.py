"""The certified copy as PDF: attestation block, fields, leader signature, number + seal.

Every change is an incremental update, so the scanned upload stays a byte-exact
prefix of every later version.  The leader's revision adds the attestation (a new
last page by default, or a block on a page the leader chooses), the empty seal
signature field overlapping the left third of the leader's field (Decree 30/2020)
and read-only text fields for number and book; the leader then certifies with
"form filling and signing allowed" (DocMDP P=2).  The clerk's revision fills the
number and book fields and signs the existing seal field; both signatures stay
valid and the leader's reports form filling only.
"""
from __future__ import annotations

import datetime as dt
import io
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.stamp import StaticStampStyle, TextStampStyle
from reportlab.graphics.barcode import qrencoder
from reportlab.lib.colors import black, white
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph

from app.timeutil import date_in_words

FIELD_LEADER = "ChuKyLanhDao"
FIELD_SEAL = "DauCoQuan"
FIELD_NUMBER = "SoChungThuc"
FIELD_BOOK = "QuyenSo"

BLOCK_MIN_WIDTH, BLOCK_MIN_HEIGHT = 380, 300
EDGE_SLACK = 1.0  # points: the placement preview rounds to whole points
MARGIN_POINTS = 2  # what the block keeps free along its edges
RESERVED, RESERVED_WITH_TSA = 12 * 1024, 24 * 1024  # CMS sizes (hex doubles them)
DEFAULT_MARGIN = 50


class PlacementError(ValueError):
    """The chosen page or rectangle cannot hold the attestation."""


@dataclass(frozen=True)
class Attestation:
    """What the attestation (lời chứng) says; number and book are filled later."""

    office_name: str
    certifier_name: str
    certifier_title: str
    date: dt.date
    verify_url: str
    verify_code: str
    sentence: str = "Chứng thực bản sao đúng với bản chính."
    place: str = ""  # e.g. "Phường Sài Gòn" (before the date)
    access_code: str = ""  # printed for whoever holds the paper: it opens the e-copy
    signer_heading: str = "NGƯỜI THỰC HIỆN CHỨNG THỰC"
    signer_note: str = "(Ký, ghi rõ họ tên và đóng dấu)"
    authority_heading: str = ""  # "KT. CHỦ TỊCH", "TUQ. CHỦ TỊCH" above the title
    mandate: str = ""  # an authorised official's decision, under the name
    title: str = "Bản sao điện tử chứng thực từ bản chính"  # the file's title (/Info)


@dataclass(frozen=True)
class Placement:
    """Where the attestation block goes: ``page`` None → a new last A4 page."""

    page: int | None = None
    rect: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in points


def _nudged(edges, low: float, high: float) -> tuple[float, float]:
    a, b = edges
    shift = high - max(a, b) if 0 < max(a, b) - high <= EDGE_SLACK else \
        low - min(a, b) if 0 < low - min(a, b) <= EDGE_SLACK else 0.0
    return a + shift, b + shift


def ink_under(page_image, rect: tuple[float, float, float, float] | None, dpi: int,
              level: int) -> float | None:
    """The share of the area ``rect`` (points from the bottom left of the rendered page)
    that is darker than ``level``: 0.0 on blank paper.  None without an image."""
    if page_image is None or rect is None:
        return None
    scale, height = dpi / 72, page_image.height
    x1, y1, x2, y2 = rect
    box = (int(min(x1, x2) * scale), int(height - max(y1, y2) * scale),
           int(max(x1, x2) * scale), int(height - min(y1, y2) * scale))
    area = page_image.convert("L").crop(box)
    pixels = area.width * area.height
    return sum(area.histogram()[:level]) / pixels if pixels else None


@dataclass(frozen=True)
class FieldBoxes:
    leader: tuple[float, float, float, float]
    seal: tuple[float, float, float, float]
    number: tuple[float, float, float, float]
    book: tuple[float, float, float, float]

    def shifted(self, dx: float, dy: float) -> FieldBoxes:
        """Moved by (dx, dy), in whole points (pyHanko lays stamps out in whole units)."""
        move = lambda b: (round(b[0] + dx), round(b[1] + dy),  # noqa: E731
                          round(b[2] + dx), round(b[3] + dy))
        return FieldBoxes(move(self.leader), move(self.seal), move(self.number), move(self.book))


@dataclass(frozen=True)
class Fonts:
    regular: str  # path of the Vietnamese subset (1000 units per em)
    bold: str
    italic: str

    def register_for_reportlab(self) -> None:
        for name, path in (("SaoY-Serif", self.regular), ("SaoY-Serif-Bold", self.bold),
                           ("SaoY-Serif-Italic", self.italic)):
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, path))


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


#: reportlab's font registry and TrueType faces are process-wide and not made for threads
#: (a face registered twice at once, subset state per document); a block renders in
#: milliseconds, so threaded servers render one at a time.
_REPORTLAB = threading.Lock()


def render_block(
    att: Attestation, fonts: Fonts, width: float, height: float
) -> tuple[bytes, FieldBoxes]:
    """One PDF page of ``width``×``height`` with the attestation; field boxes relative to it."""
    if width < BLOCK_MIN_WIDTH or height < BLOCK_MIN_HEIGHT:
        raise PlacementError(f"block too small: {width:.0f}×{height:.0f}")
    with _REPORTLAB:
        fonts.register_for_reportlab()
        return _render_block(att, fonts, width, height)


def _render_block(  # noqa: PLR0915 - one drawing, top to bottom, its coordinates together
        att: Attestation, fonts: Fonts, width: float, height: float) -> tuple[bytes, FieldBoxes]:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(width, height), pageCompression=1)
    c.setTitle("Lời chứng")
    c.setFillColor(white)
    c.rect(0, 0, width, height, stroke=0, fill=1)  # readable over scanned content
    c.setFillColor(black)

    def para(text, font, size, align=TA_CENTER, x=0.0, w=width, top=0.0):
        style = ParagraphStyle("p", fontName=font, fontSize=size, leading=size * 1.3,
                               alignment=align)
        p = Paragraph(escape(nfc(text)), style)  # names are text, never ReportLab markup
        _, h = p.wrap(w, height)
        p.drawOn(c, x, top - h)
        return top - h

    pad = 12
    y = height - pad
    y = para(att.office_name.upper(), "SaoY-Serif-Bold", 12, x=pad, w=width - 2 * pad, top=y)
    y -= 8
    y = para(att.sentence, "SaoY-Serif-Bold", 13, x=pad, w=width - 2 * pad, top=y)
    y -= 10
    # "Số chứng thực: [field]   Quyển số: [field]"
    line_h = 18
    c.setFont("SaoY-Serif", 11.5)
    label_num, label_book = "Số chứng thực:", "Quyển số:"
    num_w, book_w = 70, 150
    total = (pdfmetrics.stringWidth(label_num, "SaoY-Serif", 11.5) + 4 + num_w + 16
             + pdfmetrics.stringWidth(label_book, "SaoY-Serif", 11.5) + 4 + book_w)
    x = max(pad, (width - total) / 2)
    base = y - line_h + 5
    c.drawString(x, base, label_num)
    x += pdfmetrics.stringWidth(label_num, "SaoY-Serif", 11.5) + 4
    # The filled value's baseline on the label's (pyHanko sets text a little below the
    # top of the field): the field box starts a little above the line.
    number_box = (x, base - 1, x + num_w, base + 15)
    x += num_w + 16
    c.drawString(x, base, label_book)
    x += pdfmetrics.stringWidth(label_book, "SaoY-Serif", 11.5) + 4
    book_box = (x, base - 1, x + book_w, base + 15)
    y -= line_h + 6
    date_text = date_in_words(att.date)
    date_line = f"{att.place}, {date_text}" if att.place else date_text[0].upper() + date_text[1:]
    right_x = width * 0.42
    right_w = width - right_x - pad
    y = para(date_line, "SaoY-Serif-Italic", 11, x=right_x, w=right_w, top=y)
    y -= 4
    y = para(att.signer_heading, "SaoY-Serif-Bold", 11, x=right_x, w=right_w, top=y)
    y = para(att.signer_note, "SaoY-Serif-Italic", 9.5, x=right_x, w=right_w, top=y)
    # Signature box: the seal overlaps its left third.
    sig_h = 82
    sig_w = min(200, right_w - 20)
    sig_x0 = right_x + (right_w - sig_w) / 2 + 18
    sig_y0 = y - 6 - sig_h
    leader_box = (sig_x0, sig_y0, sig_x0 + sig_w, sig_y0 + sig_h)
    seal_size = 92
    seal_x0 = sig_x0 + sig_w / 6 - seal_size / 2
    seal_y0 = sig_y0 + sig_h / 2 - seal_size / 2
    seal_box = (seal_x0, seal_y0, seal_x0 + seal_size, seal_y0 + seal_size)
    y = sig_y0 - 4
    if att.authority_heading:
        y = para(att.authority_heading, "SaoY-Serif-Bold", 10, x=right_x, w=right_w, top=y)
    y = para(att.certifier_title, "SaoY-Serif", 10.5, x=right_x, w=right_w, top=y)
    lowest = para(att.certifier_name, "SaoY-Serif-Bold", 11.5, x=right_x, w=right_w, top=y)
    if att.mandate:
        lowest = para(att.mandate, "SaoY-Serif-Italic", 8, x=right_x, w=right_w, top=lowest)
    # QR code with the public verification URL (an opaque code, not the number).
    qr_size = min(96.0, right_x - 2 * pad)
    qr_y = max(pad + 26, sig_y0 - 10)
    draw_qr(c, att.verify_url, pad, qr_y, qr_size)
    caption = ParagraphStyle("q", fontName="SaoY-Serif", fontSize=7.5, leading=9,
                             alignment=TA_LEFT)
    lines = f"Kiểm tra bản sao tại:<br/>{escape(att.verify_url)}"
    if att.access_code:
        lines += f"<br/>Mã truy cập: {escape(att.access_code)}"
    p = Paragraph(nfc(lines), caption)
    _, ph = p.wrap(right_x - pad, 40)
    p.drawOn(c, pad, qr_y - ph - 2)
    if min(lowest, qr_y - ph - 2) < MARGIN_POINTS:  # the name or the link would fall off
        raise PlacementError(f"block too small for its content: {width:.0f}×{height:.0f}")
    c.showPage()
    c.save()
    return out.getvalue(), FieldBoxes(leader_box, seal_box, number_box, book_box).shifted(0, 0)


QR_QUIET_ZONE = 4  # modules of white around the code (ISO/IEC 18004)


def draw_qr(c: canvas.Canvas, text: str, x: float, y: float, size: float) -> None:
    """A QR code (error correction M) of ``size`` points, quiet zone included, at (x, y):
    the matrix made once and each row's dark runs drawn as one path.  ReportLab's widget
    made the matrix twice and drew 600 validated shapes: two thirds of the attestation's
    time, which every copy waits for."""
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(text)
    code.make()
    count = code.getModuleCount()
    module = size / (count + 2 * QR_QUIET_ZONE)
    path = c.beginPath()
    for row in range(count):
        top = y + size - (row + QR_QUIET_ZONE + 1) * module
        column = 0
        while column < count:
            if not code.isDark(row, column):
                column += 1
                continue
            start = column
            while column < count and code.isDark(row, column):
                column += 1
            path.rect(x + (start + QR_QUIET_ZONE) * module, top, (column - start) * module,
                      module)
    c.saveState()
    c.setFillColor(black)
    c.drawPath(path, stroke=0, fill=1)
    c.restoreState()


def _text_field(writer: IncrementalPdfFileWriter, name: str, page_ref, box) -> None:
    """A read-only text widget, empty until the clerk's revision fills it."""
    field = generic.DictionaryObject({
        pdf_name("/FT"): pdf_name("/Tx"),
        pdf_name("/T"): pdf_string(name),
        pdf_name("/Type"): pdf_name("/Annot"),
        pdf_name("/Subtype"): pdf_name("/Widget"),
        pdf_name("/F"): generic.NumberObject(4),
        pdf_name("/Ff"): generic.NumberObject(1),
        pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in box),
        pdf_name("/P"): page_ref,
        pdf_name("/DA"): pdf_string("/Helv 0 Tf 0 g"),
    })
    ref = writer.add_object(field)
    acroform = writer.root["/AcroForm"]
    acroform["/Fields"].append(ref)
    writer.update_container(acroform["/Fields"])
    writer.register_annotation(page_ref, ref)


def _ensure_acroform(writer: IncrementalPdfFileWriter) -> None:
    root = writer.root
    if "/AcroForm" not in root:
        root[pdf_name("/AcroForm")] = writer.add_object(
            generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()}))
        writer.update_root()
    form = root["/AcroForm"]
    if "/Fields" not in form:
        form[pdf_name("/Fields")] = generic.ArrayObject()
        writer.update_container(form)


def _visible_box(writer: IncrementalPdfFileWriter, index: int) -> tuple[float, ...]:
    """The page's CropBox (else MediaBox), inherited from the page tree when needed."""
    page_ref, _resources = writer.find_page_for_modification(index)
    node = page_ref.get_object()
    found = {}
    while node is not None and len(found) < len(("/CropBox", "/MediaBox")):
        for key in ("/CropBox", "/MediaBox"):
            if key in node and key not in found:
                found[key] = [float(v) for v in node[key]]
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
    box = found.get("/CropBox") or found.get("/MediaBox") or [0, 0, *A4]
    return min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])


def add_attestation(writer: IncrementalPdfFileWriter, att: Attestation, fonts: Fonts,
                    placement: Placement) -> int:
    """Draw the attestation and create the four fields; returns the page index used."""
    pages = int(writer.root["/Pages"]["/Count"])
    if placement.page is None:
        width, height = A4
        block_w = width - 2 * DEFAULT_MARGIN
        block_h = 330
        block, boxes = render_block(att, fonts, block_w, block_h)
        origin = (DEFAULT_MARGIN, height - DEFAULT_MARGIN - block_h)
        xobj = writer.import_page_as_xobject(PdfFileReader(io.BytesIO(block)))
        content = (f"q 1 0 0 1 {origin[0]:.2f} {origin[1]:.2f} cm /Att Do Q").encode()
        page = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Page"),
            pdf_name("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(0), generic.NumberObject(0),
                 generic.FloatObject(width), generic.FloatObject(height)]),
            pdf_name("/Resources"): generic.DictionaryObject({
                pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/Att"): xobj})}),
            pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=content)),
        })
        page_ref = writer.insert_page(page)
        page_index = pages
    else:
        if not 0 <= placement.page < pages or placement.rect is None:
            raise PlacementError("page out of range")
        bx0, by0, bx1, by1 = _visible_box(writer, placement.page)
        # The preview measures whole points: a block a rounding past the edge moves in.
        x1, x2 = _nudged(placement.rect[0::2], bx0, bx1)
        y1, y2 = _nudged(placement.rect[1::2], by0, by1)
        if min(x1, x2) < bx0 or min(y1, y2) < by0 or max(x1, x2) > bx1 or max(y1, y2) > by1:
            raise PlacementError("the block runs past the page's edge")
        block, boxes = render_block(att, fonts, abs(x2 - x1), abs(y2 - y1))
        origin = (min(x1, x2), min(y1, y2))
        xobj = writer.import_page_as_xobject(PdfFileReader(io.BytesIO(block)))
        page_ref, resources = writer.find_page_for_modification(placement.page)
        writer.add_stream_to_page(
            placement.page,
            writer.add_object(generic.StreamObject(
                stream_data=f"q 1 0 0 1 {origin[0]:.2f} {origin[1]:.2f} cm /SaoYAtt Do Q"
                .encode())),
            resources=generic.DictionaryObject({
                pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/SaoYAtt"): xobj})}),
        )
        page_index = placement.page
    boxes = boxes.shifted(*origin)
    _ensure_acroform(writer)
    fields.append_signature_field(writer, SigFieldSpec(FIELD_LEADER, on_page=page_index,
                                                       box=boxes.leader))
    fields.append_signature_field(writer, SigFieldSpec(FIELD_SEAL, on_page=page_index,
                                                       box=boxes.seal))
    page_ref = writer.find_page_for_modification(page_index)[0]
    _text_field(writer, FIELD_NUMBER, page_ref, boxes.number)
    _text_field(writer, FIELD_BOOK, page_ref, boxes.book)
    # Signatures exist, append only (what signing sets): the leader's revision then
    # changes nothing of the form's flags, as a difference analysis expects.
    form = writer.root["/AcroForm"]
    form[pdf_name("/SigFlags")] = generic.NumberObject(3)
    writer.update_container(form)
    return page_index


@dataclass
class SignatureLook:
    """A visible signature: an image (blue signature, red seal) and optional text."""

    image: Any  # a PIL image prepared once by ``stamp_image`` (or None)
    text: str = ""


def stamp_image(png: bytes, max_side: int = 400):
    """Decode and shrink a signature/seal PNG once (fields are ~200 pt: 2× is plenty)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    return image


def _stamp_style(fonts: Fonts, look: SignatureLook):
    background = PdfImage(look.image) if look.image is not None else None
    layout_rule = SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MID,
                                      y_align=AxisAlignment.ALIGN_MID,
                                      inner_content_scaling=InnerScaling.SHRINK_TO_FIT)
    if not look.text:  # the seal: the image alone (no text, no font to embed)
        return StaticStampStyle(background=background, background_opacity=1.0,
                                border_width=0, background_layout=layout_rule)
    # The leader's field: the signature image above, "Ký bởi / Ngày ký" below on the right
    # — the seal overlaps the field's left third and must not cover the text.
    return TextStampStyle(
        stamp_text=look.text,
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(fonts.regular), font_size=7),
        background=background,
        background_opacity=1.0,
        border_width=0,
        timestamp_format="%d/%m/%Y %H:%M",
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MAX,
            margins=Margins(bottom=20), inner_content_scaling=InnerScaling.SHRINK_TO_FIT),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MAX, y_align=AxisAlignment.ALIGN_MIN,
            margins=Margins(right=2, bottom=1), inner_content_scaling=InnerScaling.NO_SCALING),
    )


def _stream(pdf_data: bytes | io.BytesIO) -> io.BytesIO:
    """Bytes or a stream we produced: no copy either way (BytesIO shares bytes)."""
    if isinstance(pdf_data, io.BytesIO):
        pdf_data.seek(0)
        return pdf_data
    return io.BytesIO(pdf_data)


def prepare_for_signature(scan: bytes | io.BytesIO, att: Attestation, fonts: Fonts,
                          placement: Placement = Placement()) -> io.BytesIO:
    """What the leader is asked to sign, whoever holds the key: the scan, byte for byte,
    then one incremental update with the attestation and the four empty fields (the
    leader's signature, the seal, the number and the book).  Returns it as a stream."""
    writer = IncrementalPdfFileWriter(_stream(scan), strict=False)
    add_attestation(writer, att, fonts, placement)
    # What a viewer's title bar, a file manager and a screen reader say (not "untitled"):
    # in the leader's revision, so the later ones keep it under the signatures.
    meta = writer.document_meta
    meta.title, meta.author = nfc(att.title), nfc(att.office_name)
    meta.subject = nfc(att.sentence)
    writer.root[pdf_name("/Lang")] = pdf_string("vi")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    out.seek(0)
    return out


def sign_as_leader(prepared: bytes | io.BytesIO, att: Attestation, fonts: Fonts,
                   signer: signers.Signer, look: SignatureLook,
                   timestamper=None) -> io.BytesIO:
    """The leader's certification signature (DocMDP P=2) in the prepared leader field,
    one incremental update after the preparation.  Returns the new version as a stream
    (no extra copy of a 30 MB file)."""
    writer = IncrementalPdfFileWriter(_stream(prepared), strict=False)
    return _sign_existing_field(writer, _leader_meta(att), signer, fonts, look, timestamper)


def _leader_meta(att: Attestation) -> signers.PdfSignatureMetadata:
    """Certification signature allowing form filling and signing (DocMDP P=2)."""
    return signers.PdfSignatureMetadata(
        field_name=FIELD_LEADER, certify=True, docmdp_permissions=MDPPerm.FILL_FORMS,
        subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256",
        reason="Chứng thực bản sao đúng với bản chính", name=att.certifier_name,
    )


def _sign_existing_field(writer, meta, signer, fonts: Fonts, look: SignatureLook,
                         timestamper) -> io.BytesIO:
    pdf_signer = signers.PdfSigner(meta, signer=signer, stamp_style=_stamp_style(fonts, look),
                                   timestamper=timestamper)
    out = io.BytesIO()
    # A fixed reservation spares pyHanko a trial signature to size the container.
    pdf_signer.sign_pdf(writer, existing_fields_only=True, output=out,
                        bytes_reserved=RESERVED_WITH_TSA if timestamper else RESERVED)
    out.seek(0)
    return out


def seal_with_number(signed: bytes | io.BytesIO, number: str, book: str, fonts: Fonts,
                     signer: signers.Signer, look: SignatureLook,
                     timestamper=None) -> io.BytesIO:
    """Fill number and book, then sign the existing seal field, one incremental update."""
    from pyhanko.pdf_utils.form_tools import populate_static_text_field

    writer = IncrementalPdfFileWriter(_stream(signed), strict=False)
    style = TextBoxStyle(font=GlyphAccumulatorFactory(fonts.bold), font_size=11)
    populate_static_text_field(writer, FIELD_NUMBER, style, nfc(number))
    populate_static_text_field(writer, FIELD_BOOK, style, nfc(book))
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_SEAL, subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256",
        reason=f"Số chứng thực {number}, quyển số {book}",
    )
    return _sign_existing_field(writer, meta, signer, fonts, look, timestamper)


# --- External signing (the leader's token is on their own computer) ----------------

@dataclass(frozen=True)
class PreparedExternal:
    """What survives between preparing and finishing: everything is plain data."""

    pdf: io.BytesIO  # the document with the signature space reserved
    document_digest: bytes
    reserved_start: int
    reserved_end: int
    signed_attrs: bytes  # DER of the CMS signed attributes: what the token signs


def _external_signer(cert_der: bytes, signature: bytes | None = None):
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert = asn1_x509.Certificate.load(cert_der)
    return signers.ExternalSigner(cert, SimpleCertificateStore.from_certs([cert]),
                                  signature_value=signature or 256)


def prepare_external(prepared: bytes | io.BytesIO, att: Attestation, fonts: Fonts,
                     cert_der: bytes, look: SignatureLook) -> PreparedExternal:
    """The revision ``sign_as_leader`` makes, stopped before the signature value (a
    remote signing service signs the signed attributes)."""
    import asyncio

    writer = IncrementalPdfFileWriter(_stream(prepared), strict=False)
    ext = _external_signer(cert_der)
    pdf_signer = signers.PdfSigner(_leader_meta(att), signer=ext,
                                   stamp_style=_stamp_style(fonts, look))

    async def run():
        digest, _tbs, output = await pdf_signer.async_digest_doc_for_signing(
            writer, existing_fields_only=True, bytes_reserved=RESERVED)
        attrs = await ext.signed_attrs(digest.document_digest, "sha256", use_pades=True)
        return digest, output, attrs

    digest, output, attrs = asyncio.run(run())
    output.seek(0)
    return PreparedExternal(output, digest.document_digest, digest.reserved_region_start,
                            digest.reserved_region_end, attrs.dump())


def finish_external(prepared_pdf: bytes, document_digest: bytes, reserved_start: int,
                    reserved_end: int, signed_attrs: bytes, cert_der: bytes,
                    signature: bytes) -> io.BytesIO:
    """Embed the signature the agent made over ``signed_attrs``."""
    import asyncio

    from asn1crypto import cms
    from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
    from pyhanko.sign.signers.pdf_signer import PdfTBSDocument

    ext = _external_signer(cert_der, signature)
    out = io.BytesIO(prepared_pdf)
    digest = PreparedByteRangeDigest(document_digest, reserved_start, reserved_end)

    async def run():
        sig_cms = await ext.async_sign_prescribed_attributes(
            "sha256", signed_attrs=cms.CMSAttributes.load(signed_attrs))
        await PdfTBSDocument.async_finish_signing(out, prepared_digest=digest,
                                                  signature_cms=sig_cms)

    asyncio.run(run())
    out.seek(0)
    return out
