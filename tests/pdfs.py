"""Scanned-looking PDFs for tests and benchmarks: colour JPEG pages at a given dpi."""
from __future__ import annotations

import io
import random
import subprocess

from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas


def scan_pdf(pages: int = 1, dpi: int = 200, noise: int = 0, seed: int = 1,
             title: str = "GIAY KHAI SINH") -> bytes:
    """A4 pages of a colour JPEG 'scan'; ``noise`` (0–255) makes the JPEG bigger."""
    rnd = random.Random(seed)
    width_px, height_px = int(8.27 * dpi), int(11.69 * dpi)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    for page in range(pages):
        img = Image.new("RGB", (width_px, height_px), (250, 246, 235))
        draw = ImageDraw.Draw(img)
        draw.rectangle([dpi // 2, dpi // 2, width_px - dpi // 2, dpi * 2], outline=(30, 30, 120),
                       width=6)
        draw.text((dpi, dpi), f"{title} — {page + 1}", fill=(10, 10, 10))
        if noise:
            pixels = img.load()
            for _ in range(width_px * height_px // 6):
                x, y = rnd.randrange(width_px), rnd.randrange(height_px)
                pixels[x, y] = (rnd.randrange(noise), rnd.randrange(noise), rnd.randrange(noise))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90, dpi=(dpi, dpi))
        buf.seek(0)
        c.drawImage(ImageReader(buf), 0, 0, *A4)
        c.showPage()
    c.save()
    return out.getvalue()


def text_page_pdf() -> bytes:
    """An A4 page written from the top down to about y = 430 pt (lines of a birth
    certificate's text), blank below: where an attestation may and may not go."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    c.setFont("Helvetica-Bold", 14)
    c.drawCentredString(A4[0] / 2, 800, "CONG HOA XA HOI CHU NGHIA VIET NAM")
    c.setFont("Helvetica", 11)
    for line in range(26):
        c.drawString(50, 770 - line * 13, f"{line + 1:02d}. Ho va ten: NGUYEN VAN AN - "
                     "sinh ngay 01/01/2000 tai Phuong Sai Gon, TP Ho Chi Minh - ghi chu")
    c.showPage()
    c.save()
    return out.getvalue()


def sized_scan_pdf(target_bytes: int, dpi: int = 200) -> bytes:
    """A colour scan of about ``target_bytes`` (never more): A4 pages whose lower part is
    noisy (noise does not compress, like a dense colour scan), as many pages as needed."""
    goal = target_bytes
    for _ in range(4):  # the PDF wrapping adds a share: aim lower until it fits
        data = _noisy_scan(goal, dpi)
        if len(data) <= target_bytes:
            return data
        goal = int(goal * target_bytes / len(data) * 0.99)
    return data


def _noisy_scan(target_bytes: int, dpi: int) -> bytes:
    import os

    width_px, height_px = int(8.27 * dpi), int(11.69 * dpi)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    written, page = 0, 0
    while written < target_bytes * 0.97:
        need = target_bytes * 0.985 - written - 4096  # room for the page's PDF objects
        rows = min(height_px, max(40, int(need / (width_px * 3 * 0.72))))
        for _ in range(8):  # shrink the noisy band until the page fits what is left
            img = Image.new("RGB", (width_px, height_px), (250, 246, 235))
            noise = Image.frombytes("RGB", (width_px, rows), os.urandom(width_px * rows * 3))
            img.paste(noise, (0, height_px - rows))
            ImageDraw.Draw(img).text((dpi, dpi), f"TRANG {page + 1}", fill=(0, 0, 0))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85, dpi=(dpi, dpi))
            if buf.tell() <= max(need, 0) or rows <= 40:
                break
            rows = max(40, int(rows * need / buf.tell() * 0.97))
        written += buf.tell()
        buf.seek(0)
        c.drawImage(ImageReader(buf), 0, 0, *A4)
        c.showPage()
        page += 1
        if rows <= 40 and buf.tell() > need:
            break
    c.save()
    return out.getvalue()


def pdfsig(app, tmp_path, pdf: bytes, extra_roots: tuple[str, ...] = ()) -> str:
    """poppler's pdfsig on ``pdf`` with an NSS database that trusts the demo root (and
    ``extra_roots``, PEM files)."""
    import subprocess
    import tempfile
    from pathlib import Path

    # A new database each call: certutil -N on an existing one prompts for ever.
    nss = Path(tempfile.mkdtemp(prefix="nss-", dir=tmp_path))
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    roots = [Path(app.config["DATA_DIR"]) / "pki" / "demo-root.pem", *map(Path, extra_roots)]
    for number, root in enumerate(roots):
        subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", f"saoy-root-{number}", "-t",
                        "C,C,C", "-i", str(root)], check=True, capture_output=True)
    path = nss / "copy.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(path)], capture_output=True,
                          text=True).stdout


def pdf_text(pdf: bytes) -> str:
    """The text poppler reads from every page (what a reader of the copy sees)."""
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
