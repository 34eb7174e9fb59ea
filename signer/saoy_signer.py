"""SaoY's own local signer: the leader's token (PKCS#11) on the leader's own computer,
speaking the local-websocket contract of the Government Cipher Committee's plugin
("VGCA Sign Service"), so that SaoY's pages have one code path for both.

    saoy-signer --saoy https://saoy.example.vn \\
                --pkcs11-lib /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so \\
                --token-label "VGCA" --key-label "Signature"

What it promises the leader (and what its tests check):
* it answers only pages of the configured SaoY address (the websocket's ``Origin``), and
  fetches and uploads files only there — a web page elsewhere gets nothing signed;
* before signing it shows, on a page of its own (https://127.0.0.1:8987/confirm/…), what
  will be signed: each file's request, its SHA-256 and its pages (the attestation page
  included) — and it signs exactly the bytes it showed;
* it asks the token PIN for each batch and never stores it.

The protocol is written down in SaoY's docs/plugin-protocol.md.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import datetime as dt
import functools
import hashlib
import html
import io
import json
import logging
import secrets
import shutil
import ssl
import subprocess
import tempfile
import webbrowser
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

log = logging.getLogger("saoy_signer")

OK, CANCELLED, DOWNLOAD_FAILED, SIGNING_FAILED, UPLOAD_REFUSED, FOREIGN_ORIGIN, BAD_REQUEST = \
    0, 1, 2, 3, 4, 5, 6
MAX_FILE = 60 * 2**20
MAX_BATCH = 200
WAIT_SECONDS = 600
FONT_CANDIDATES = ("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
                   "C:/Windows/Fonts/NotoSerif-Regular.ttf")
#: What a stamp can need to show (the signer's name from the certificate, the date): the
#: same Vietnamese ranges as the server's fonts (``modules/signing/fonts.py``; a test keeps
#: the two equal — this module is installed alone on the leader's computer).
VIETNAMESE_RANGES = [
    (0x0020, 0x007E), (0x00A0, 0x00A0), (0x00B0, 0x00B0), (0x00D7, 0x00D7),
    (0x0300, 0x0303), (0x0309, 0x0309), (0x0323, 0x0323), (0x1EA0, 0x1EF9),
    (0x2013, 0x2014), (0x2018, 0x201D), (0x2026, 0x2026), (0x20AB, 0x20AB),
]
VIETNAMESE_LETTERS = "ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯư"


@dataclass
class Config:
    saoy: str  # https://saoy.example.vn: the only origin served, the only host fetched
    pkcs11_lib: str
    token_label: str
    key_label: str
    cert_label: str | None = None
    port: int = 8987
    tls: bool = True
    tls_dir: Path = Path.home() / ".saoy-signer"
    open_browser: bool = True
    font: str | None = None

    @property
    def origin(self) -> str:
        return origin_of(self.saoy)

    @property
    def own_origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


def origin_of(url: str | None) -> str:
    parts = urlsplit(url or "")
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class Document:
    """One file to sign, as asked by the page and as shown to the leader."""

    request: dict[str, Any]
    data: bytes = b""
    sha256: str = ""
    pages: list[bytes] = field(default_factory=list)
    answer: asyncio.Future | None = None

    @property
    def meta(self) -> dict[str, str]:
        return {str(m.get("Key")): str(m.get("Value")) for m in self.request.get("MetaData") or []
                if isinstance(m, dict)}

    @property
    def title(self) -> str:
        return str(self.request.get("DocNumber") or self.meta.get("request") or "")


@dataclass
class Confirmation:
    """What the leader sees and approves at once: one file, or the files of a batch."""

    id: str
    nonce: str
    documents: list[Document]
    expected: int = 1
    done: bool = False


class Signer:
    def __init__(self, config: Config, *, http: aiohttp.ClientSession | None = None):
        self.config = config
        self.http = http
        self.confirmations: dict[str, Confirmation] = {}
        self.batches: dict[str, Confirmation] = {}

    # --- the websocket door (the page of SaoY) ----------------------------------------

    async def sign_approved(self, request: web.Request) -> web.StreamResponse:
        if origin_of(request.headers.get("Origin")) != self.config.origin:
            log.warning("refused a signing request from %s", request.headers.get("Origin"))
            raise web.HTTPForbidden(text="this signer answers only SaoY's own pages")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            answer = await self._one(message.data)
            await ws.send_str(json.dumps(answer, ensure_ascii=False))
            break
        await ws.close()
        return ws

    async def cert_info(self, request: web.Request) -> web.StreamResponse:
        if origin_of(request.headers.get("Origin")) != self.config.origin:
            raise web.HTTPForbidden(text="this signer answers only SaoY's own pages")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            der = await asyncio.to_thread(self._certificate)
            await ws.send_str(json.dumps({"Status": OK,
                                          "CertBase64": base64.b64encode(der).decode()}))
        except Exception as exc:  # noqa: BLE001 - any token failure is told to the page
            await ws.send_str(json.dumps({"Status": SIGNING_FAILED, "Message": str(exc)}))
        await ws.close()
        return ws

    async def _one(self, text: str) -> dict[str, Any]:
        try:
            asked = json.loads(text)
            document = Document(asked)
            for key in ("FileName", "FileUploadHandler"):
                if origin_of(asked.get(key)) != self.config.origin:
                    return _answer(BAD_REQUEST, f"{key} is not an address of {self.config.saoy}")
        except (ValueError, AttributeError):
            return _answer(BAD_REQUEST, "the request is not a JSON object")
        try:
            await self._fetch(document)
        except Exception as exc:  # noqa: BLE001 - told to the page, nothing signed
            log.info("download failed: %r", exc)
            return _answer(DOWNLOAD_FAILED, "the file could not be downloaded from SaoY")
        document.answer = asyncio.get_running_loop().create_future()
        confirmation = self._queue(document)
        if len(confirmation.documents) == confirmation.expected:
            self._show(confirmation)
        try:
            return await asyncio.wait_for(document.answer, WAIT_SECONDS)
        except TimeoutError:
            return _answer(CANCELLED, "nobody approved the signature in time")

    async def _fetch(self, document: Document) -> None:
        async with self.http.get(document.request["FileName"], allow_redirects=False) as r:
            if r.status != HTTPStatus.OK:
                raise OSError(f"HTTP {r.status}")
            data = bytearray()  # read() gives what has arrived so far, not the whole body
            async for chunk in r.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MAX_FILE:
                    break
            data = bytes(data)
        if len(data) > MAX_FILE or not data.startswith(b"%PDF-"):
            raise OSError("not a PDF of a sane size")
        document.data, document.sha256 = data, hashlib.sha256(data).hexdigest()
        expected = document.meta.get("sha256")
        if expected and expected != document.sha256:
            raise OSError("the file is not the one the page announced")
        document.pages = await asyncio.to_thread(render_pages, data)

    def _queue(self, document: Document) -> Confirmation:
        """A batch (MetaData ``batch`` and ``batch_size``) is shown and approved once."""
        batch, size = document.meta.get("batch"), document.meta.get("batch_size", "1")
        expected = int(size) if size.isdigit() and 0 < int(size) <= MAX_BATCH else 1
        if batch and batch in self.batches and not self.batches[batch].done:
            confirmation = self.batches[batch]
            confirmation.documents.append(document)
            return confirmation
        confirmation = Confirmation(secrets.token_urlsafe(16), secrets.token_urlsafe(24),
                                    [document], expected if batch else 1)
        self.confirmations[confirmation.id] = confirmation
        if batch:
            self.batches[batch] = confirmation
        return confirmation

    def _show(self, confirmation: Confirmation) -> None:
        url = f"{self.config.own_origin}/confirm/{confirmation.id}"
        log.warning("confirm the signature at %s", url)
        if self.config.open_browser:
            webbrowser.open(url)

    # --- the confirmation page (the signer's own origin) ------------------------------

    def _confirmation(self, request: web.Request) -> Confirmation:
        found = self.confirmations.get(request.match_info["id"])
        if found is None or found.done:
            raise web.HTTPNotFound(text="no such signature waits for approval")
        return found

    async def confirm_page(self, request: web.Request) -> web.Response:
        c = self._confirmation(request)
        rows = []
        for i, d in enumerate(c.documents):
            pages = "".join(f'<img alt="Trang {n + 1}" src="/confirm/{c.id}/page/{i}/{n}.png">'
                            for n in range(len(d.pages)))
            rows.append(f'<section class="doc"><h2>{html.escape(d.title)}</h2>'
                        f'<p>SHA-256: <code class="sha">{d.sha256}</code> · '
                        f'{len(d.pages)} trang</p><div class="pages">{pages}</div></section>')
        body = CONFIRM_PAGE.format(count=len(c.documents), rows="".join(rows), id=c.id,
                                   nonce=c.nonce)
        return web.Response(text=body, content_type="text/html", headers=_PAGE_HEADERS)

    async def confirm_image(self, request: web.Request) -> web.Response:
        c = self._confirmation(request)
        try:
            image = c.documents[int(request.match_info["doc"])].pages[int(request.match_info["n"])]
        except (IndexError, ValueError):
            raise web.HTTPNotFound() from None
        return web.Response(body=image, content_type="image/png", headers=_PAGE_HEADERS)

    async def confirm_post(self, request: web.Request) -> web.Response:
        if origin_of(request.headers.get("Origin")) != self.config.own_origin:
            raise web.HTTPForbidden(text="the approval must come from this signer's own page")
        c = self._confirmation(request)
        form = await request.post()
        if not secrets.compare_digest(str(form.get("nonce", "")), c.nonce):
            raise web.HTTPForbidden(text="this approval is not for this signature")
        c.done = True
        self.confirmations.pop(c.id, None)
        if form.get("action") != "apply":
            for d in c.documents:
                _settle(d, _answer(CANCELLED, "the leader did not sign"))
            return web.Response(text=DONE_PAGE.format(text="Đã hủy: không ký văn bản nào."),
                                content_type="text/html", headers=_PAGE_HEADERS)
        pin = str(form.get("pin", ""))
        try:
            signed = await asyncio.to_thread(self._sign_all, c.documents, pin)
        except Exception as exc:  # noqa: BLE001 - a wrong PIN, a pulled token: told, not signed
            log.info("signing failed: %r", exc)
            for d in c.documents:
                _settle(d, _answer(SIGNING_FAILED, "the token refused: check the PIN and the "
                                                   "token, then click Ký số again"))
            return web.Response(text=DONE_PAGE.format(text="Không ký được: kiểm tra mã PIN và "
                                                           "thiết bị ký, rồi bấm Ký số lại."),
                                content_type="text/html", headers=_PAGE_HEADERS)
        finally:
            pin = ""
        for document, data in zip(c.documents, signed, strict=True):
            _settle(document, await self._upload(document, data))
        return web.Response(text=DONE_PAGE.format(text=f"Đã ký {len(signed)} văn bản."),
                            content_type="text/html", headers=_PAGE_HEADERS)

    async def _upload(self, document: Document, data: bytes) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="signed.pdf", content_type="application/pdf")
        try:
            async with self.http.post(document.request["FileUploadHandler"], data=form,
                                      allow_redirects=False) as r:
                answer = await r.json(content_type=None)
        except Exception as exc:  # noqa: BLE001 - told to the page
            log.info("upload failed: %r", exc)
            return _answer(UPLOAD_REFUSED, "SaoY could not be reached to take the signed file")
        if not isinstance(answer, dict):
            return _answer(UPLOAD_REFUSED, "SaoY answered oddly")
        return answer

    # --- the token ----------------------------------------------------------------------

    def _session(self, pin: str | None):
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import open_pkcs11_session

        return open_pkcs11_session(self.config.pkcs11_lib, user_pin=pin,
                                   token_criteria=TokenCriteria(label=self.config.token_label))

    def _certificate(self) -> bytes:
        from pkcs11 import Attribute, ObjectClass

        session = self._session(None)
        try:
            label = self.config.cert_label or self.config.key_label
            cert = next(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                             Attribute.LABEL: label}))
            return bytes(cert[Attribute.VALUE])
        finally:
            session.close()

    def _sign_all(self, documents: list[Document], pin: str) -> list[bytes]:
        """Open the token once for the batch; sign exactly the bytes shown."""
        from pyhanko.sign.pkcs11 import PKCS11Signer

        session = self._session(pin)
        try:
            signer = PKCS11Signer(session, cert_label=self.config.cert_label or
                                  self.config.key_label, key_label=self.config.key_label)
            return [sign_pdf(d.data, d.meta.get("field"), signer, self.config.font)
                    for d in documents]
        finally:
            session.close()


def _settle(document: Document, answer: dict[str, Any]) -> None:
    if document.answer is not None and not document.answer.done():
        document.answer.set_result(answer)


def _answer(status: int, message: str) -> dict[str, Any]:
    return {"Status": status, "Message": message, "FileName": "", "FileServer": ""}


def render_pages(data: bytes, dpi: int = 50, max_pages: int = 60) -> list[bytes]:
    """The pages as PNG images, to be seen before signing (poppler's pdftoppm)."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        return []
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(data)
        subprocess.run([tool, "-r", str(dpi), "-png", "-l", str(max_pages), str(source),
                        str(Path(folder) / "p")], check=True, timeout=120,
                       capture_output=True)
        return [p.read_bytes() for p in sorted(Path(folder).glob("p*.png"))]


def sign_pdf(data: bytes, field_name: str | None, signer, font: str | None) -> bytes:
    """One incremental update: the leader's signature in the prepared field (a
    certification allowing form filling and signing: the seal signs later)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
    from pyhanko.stamp import TextStampStyle

    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name or "ChuKyLanhDao", certify=True,
        docmdp_permissions=MDPPerm.FILL_FORMS, subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256")
    style = None
    font_path = font or next((f for f in FONT_CANDIDATES if Path(f).exists()), None)
    if font_path:
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
        from pyhanko.pdf_utils.text import TextBoxStyle

        style = TextStampStyle(stamp_text="Ký bởi: %(signer)s\nNgày ký: %(ts)s",
                               text_box_style=TextBoxStyle(
                                   font=GlyphAccumulatorFactory(stamp_font(font_path)),
                                   font_size=7),
                               border_width=0, timestamp_format="%d/%m/%Y %H:%M")
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer, stamp_style=style).sign_pdf(
        writer, existing_fields_only=field_name is not None, output=out)
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def stamp_font(source: str) -> str:
    """The Vietnamese cut of ``source``, made once per process. pyHanko subsets the font
    it is given again for every signature: with the whole Noto Serif (its layout tables
    and 3,000 glyphs) a signature took 0.32 s, with this cut 0.10 s (2-core machine).
    The cut lives in a folder of this process only (mode 0700, removed at exit): a font
    under a name another local user could write first would draw the leader's stamp."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    folder = Path(tempfile.mkdtemp(prefix="saoy-signer-fonts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    font = TTFont(source)
    options = subset.Options()
    options.layout_features = []  # precomposed Vietnamese needs no shaping
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.glyph_names = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={cp for lo, hi in VIETNAMESE_RANGES for cp in range(lo, hi + 1)}
                       | {ord(c) for c in VIETNAMESE_LETTERS})
    subsetter.subset(font)
    target = folder / f"{Path(source).stem}-vi.ttf"
    font.save(str(target))
    return str(target)


_PAGE_HEADERS = {"X-Frame-Options": "DENY", "Cache-Control": "no-store",
                 "Content-Security-Policy": "default-src 'self'; style-src 'self' "
                                            "'unsafe-inline'; frame-ancestors 'none'"}

CONFIRM_PAGE = """<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ký số — xác nhận</title><style>
body{{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#1b1b1b}}
.pages img{{border:1px solid #555;margin:4px;max-width:45%}} code{{word-break:break-all}}
button{{font-size:1.1rem;padding:.6rem 1.2rem;margin-right:1rem}}
label{{display:block;margin:1rem 0 .3rem;font-weight:bold}}</style></head><body>
<h1>Ký số {count} văn bản</h1>
<p>Kiểm tra từng văn bản dưới đây (cả trang lời chứng). Chỉ đúng các tệp này được ký.</p>
{rows}
<form method="post" action="/confirm/{id}">
<input type="hidden" name="nonce" value="{nonce}">
<label for="pin">Mã PIN của thiết bị ký (không được lưu lại)</label>
<input id="pin" name="pin" type="password" autocomplete="off" required>
<p><button id="apply" name="action" value="apply" type="submit">Áp dụng</button>
<button id="cancel" name="action" value="cancel" type="submit" formnovalidate>Hủy</button></p>
</form></body></html>"""

DONE_PAGE = """<!doctype html><html lang="vi"><head><meta charset="utf-8">
<title>Ký số</title></head><body><p id="result">{text}</p>
<p>Có thể đóng trang này và quay lại SaoY.</p></body></html>"""


def tls_context(config: Config) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, made once (browsers are told to trust it,
    as they are for the VGCA plugin's)."""
    folder = config.tls_dir
    cert, key = folder / "localhost.pem", folder / "localhost-key.pem"
    if not cert.exists():
        _make_certificate(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _make_certificate(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SaoY signer (127.0.0.1)")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_app(signer: Signer) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)

    async def start_http(_app):
        if signer.http is None:
            signer.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def stop_http(_app):
        if signer.http is not None:
            await signer.http.close()

    app.on_startup.append(start_http)
    app.on_cleanup.append(stop_http)
    app.add_routes([
        web.get("/SignApproved", signer.sign_approved),
        web.get("/SignPDF", signer.sign_approved),
        web.get("/GetCertInfo", signer.cert_info),
        web.get("/confirm/{id}", signer.confirm_page),
        web.get("/confirm/{id}/page/{doc}/{n}.png", signer.confirm_image),
        web.post("/confirm/{id}", signer.confirm_post),
    ])
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saoy", required=True, help="SaoY's address (the only one served)")
    parser.add_argument("--pkcs11-lib", required=True)
    parser.add_argument("--token-label", required=True)
    parser.add_argument("--key-label", required=True)
    parser.add_argument("--cert-label")
    parser.add_argument("--port", type=int, default=8987)
    parser.add_argument("--tls-dir", type=Path, default=Config.tls_dir)
    parser.add_argument("--no-tls", action="store_true", help="ws:// (tests only)")
    parser.add_argument("--no-browser", action="store_true", help="print the approval page")
    parser.add_argument("--font", help="a TrueType font with Vietnamese (Noto Serif)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = Config(saoy=args.saoy, pkcs11_lib=args.pkcs11_lib, token_label=args.token_label,
                    key_label=args.key_label, cert_label=args.cert_label, port=args.port,
                    tls=not args.no_tls, tls_dir=args.tls_dir,
                    open_browser=not args.no_browser, font=args.font)
    context = tls_context(config) if config.tls else None
    web.run_app(make_app(Signer(config)), host="127.0.0.1", port=config.port,
                ssl_context=context, print=lambda text: log.info("%s", text))


if __name__ == "__main__":
    main()
