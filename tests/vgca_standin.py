"""A stand-in for the Government Cipher Committee's plugin (VGCA Sign Service) on
127.0.0.1:8987 — the real one is a Windows program and cannot run here.

It speaks the contract as public code shows it (docs/plugin-protocol.md): a WebSocket per
call to ``wss://127.0.0.1:8987/<Function>``, a JSON request naming the file to download
and the handler to upload to; it downloads the file, signs it with a PKCS#11 token
(SoftHSM) through pyHanko the way VGCA's plugin does — an approval signature in a field
of its own where the leader dragged it — uploads it, and answers with SaoY's answer.
Like the real plugin, it does not check who asks (it has its own window for that); a
test may make it misbehave (``mode``) to act as a compromised or buggy plugin would.
"""
from __future__ import annotations

import asyncio
import io
import json
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

PORT = 8987


@dataclass
class StandIn:
    pkcs11_lib: str
    token_label: str
    key_label: str
    pin: str = "123456"
    #: "honest", or how to misbehave: "extra_page", "seal_field", "annotation"
    mode: str = "honest"
    calls: int = 0

    def sign(self, data: bytes) -> bytes:
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers
        from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

        session = open_pkcs11_session(self.pkcs11_lib, user_pin=self.pin,
                                      token_criteria=TokenCriteria(label=self.token_label))
        try:
            signer = PKCS11Signer(session, cert_label=self.key_label, key_label=self.key_label)
            writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
            last = int(writer.root["/Pages"]["/Count"]) - 1
            field = "Signature1"
            if self.mode == "seal_field":
                field = "DauCoQuan"  # signs the office's seal field instead of its own
            else:  # VGCA: a new field where the leader dragged the signature
                fields.append_signature_field(writer, SigFieldSpec(
                    field, on_page=last, box=(320, 60, 520, 140)))
            if self.mode == "extra_page":
                from pyhanko.pdf_utils import generic

                writer.insert_page(generic.DictionaryObject({
                    generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                    generic.pdf_name("/MediaBox"): generic.ArrayObject(
                        [generic.NumberObject(v) for v in (0, 0, 595, 842)])}))
            meta = signers.PdfSignatureMetadata(field_name=field,
                                                subfilter=SigSeedSubFilter.PADES,
                                                md_algorithm="sha256")
            out = io.BytesIO()
            signers.PdfSigner(meta, signer=signer).sign_pdf(writer, output=out,
                                                            existing_fields_only=field ==
                                                            "DauCoQuan")
            return out.getvalue()
        finally:
            session.close()

    async def sign_approved(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            asked = json.loads(message.data)
            self.calls += 1
            async with aiohttp.ClientSession() as http:
                async with http.get(asked["FileName"]) as r:
                    if r.status != 200:
                        await ws.send_str(json.dumps({"Status": 2, "Message": "download"}))
                        break
                    data = await r.read()
                signed = await asyncio.to_thread(self.sign, data)
                form = aiohttp.FormData()
                form.add_field("uploadfile", signed, filename="signed.pdf",
                               content_type="application/pdf")
                async with http.post(asked["FileUploadHandler"], data=form) as r:
                    answer = await r.text()
            await ws.send_str(answer)
            break
        await ws.close()
        return ws


def serve(stand_in: StandIn, tls_dir: Path) -> callable:
    """Run the stand-in on 127.0.0.1:8987 (TLS with a self-signed certificate) in a thread;
    returns a function that stops it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "signer"))
    from saoy_signer import Config, tls_context

    context = tls_context(Config(saoy="https://x", pkcs11_lib="", token_label="",
                                 key_label="", tls_dir=tls_dir))
    loop = asyncio.new_event_loop()
    app = web.Application(client_max_size=64 * 2**20)
    app.add_routes([web.get("/SignApproved", stand_in.sign_approved)])
    runner = web.AppRunner(app)
    started = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", PORT,
                                            ssl_context=context).start())
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)

    def stop():
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    return stop


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
