"""Certification cost: attestation page + leader signature + number + seal, no TSA.

Warm and in-process, for 1, 10 and 30 MB colour scans, side by side with a bare
pyHanko script doing the same two signatures (new visible leader field, then a
seal field) on the same file.  Also the peak memory a certification allocates
(tracemalloc), against the file size.

    python -m bench.signing [runs]
"""
from __future__ import annotations

import datetime as dt
import io
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))


def setup():
    from pyhanko.sign import signers

    from modules.signing import pdf
    from modules.signing.fonts import subset_font
    from modules.signing.pki import DemoPki
    from modules.signing.signers import load_pkcs12

    work = Path(tempfile.mkdtemp(prefix="saoy-bench-sign-"))
    pki = DemoPki(work / "pki")
    leader_p12 = pki.issue("leader", "Trần Thị Bình", "UBND Phường Sài Gòn").p12_path.read_bytes()
    seal_p12 = pki.issue("seal", "UBND Phường Sài Gòn", "UBND Phường Sài Gòn").p12_path.read_bytes()
    saoy = (load_pkcs12(leader_p12, pki.passphrase), load_pkcs12(seal_p12, pki.passphrase))
    bare = (signers.SimpleSigner.load_pkcs12_data(leader_p12, [], pki.passphrase),
            signers.SimpleSigner.load_pkcs12_data(seal_p12, [], pki.passphrase))
    font_dir = "/usr/share/fonts/truetype/noto"
    fonts = pdf.Fonts(*(subset_font(f"{font_dir}/{name}.ttf", str(work / "fonts"))
                        for name in ("NotoSerif-Regular", "NotoSerif-Bold", "NotoSerif-Italic")))
    return saoy, bare, fonts


def saoy_flow(scan: bytes, leader, seal, fonts, look_leader, look_seal) -> bytes:
    from modules.signing import pdf

    att = pdf.Attestation("UBND Phường Sài Gòn", "Trần Thị Bình", "Phó Chủ tịch",
                          dt.date(2026, 11, 27), "http://127.0.0.1:5000/verify/AbCdEfGh23456789",
                          "AbCdEfGh23456789", place="Phường Sài Gòn")
    prepared = pdf.prepare_for_signature(scan, att, fonts)
    signed = pdf.sign_as_leader(prepared, att, fonts, leader, look_leader)
    return pdf.seal_with_number(signed, "15", "01/2026-SCTĐT/BS", fonts, seal,
                                look_seal).getvalue()


def bare_flow(scan: bytes, leader, seal, fonts) -> bytes:
    """What a plain pyHanko script does: two visible signatures, the same font."""
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    style = TextStampStyle(stamp_text="Ký bởi: %(signer)s\n%(ts)s",
                           text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(fonts.regular)))
    w = IncrementalPdfFileWriter(io.BytesIO(scan), strict=False)
    fields.append_signature_field(w, fields.SigFieldSpec("Seal", on_page=0,
                                                         box=(300, 100, 390, 190)))
    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(
        field_name="Leader", certify=True, subfilter=fields.SigSeedSubFilter.PADES),
        signer=leader, stamp_style=style,
        new_field_spec=fields.SigFieldSpec("Leader", on_page=0, box=(330, 100, 530, 180)),
    ).sign_pdf(w, output=out)
    w = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()), strict=False)
    out2 = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(
        field_name="Seal", subfilter=fields.SigSeedSubFilter.PADES), signer=seal,
        stamp_style=style).sign_pdf(w, existing_fields_only=True, output=out2)
    return out2.getvalue()


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from modules.signing import pdf
    from modules.signing.demo import seal_png, signature_png
    from tests.pdfs import sized_scan_pdf

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    (leader, seal), (bare_leader, bare_seal), fonts = setup()
    from flask import Flask

    with Flask("bench").app_context() as _ctx:
        from flask import current_app

        current_app.config["FONT_DIR"] = "/usr/share/fonts/truetype/noto"
        look_leader = pdf.SignatureLook(pdf.stamp_image(signature_png("Trần Thị Bình")),
                                        "Ký bởi: %(signer)s\n%(ts)s")
        look_seal = pdf.SignatureLook(pdf.stamp_image(seal_png("UBND Phường Sài Gòn")), "")
    print(f"certification (page + leader + number + seal, no TSA), median of {runs} warm runs"
          f" — {machine()}")
    print(f"  {'scan':>8} {'SaoY':>8} {'bare':>8} {'ratio':>6} {'peak alloc':>11} {'× size':>7}")
    for mb in (1, 10, 30):
        scan = sized_scan_pdf(mb * 1024 * 1024)
        saoy_flow(scan, leader, seal, fonts, look_leader, look_seal)  # warm
        bare_flow(scan, bare_leader, bare_seal, fonts)
        t_saoy = timed(lambda s=scan: saoy_flow(s, leader, seal, fonts, look_leader, look_seal),
                       runs)
        t_bare = timed(lambda s=scan: bare_flow(s, bare_leader, bare_seal, fonts), runs)
        tracemalloc.start()
        saoy_flow(scan, leader, seal, fonts, look_leader, look_seal)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = len(scan)
        print(f"  {size / 2**20:6.1f}MB {t_saoy:7.3f}s {t_bare:7.3f}s {t_saoy / t_bare:6.2f} "
              f"{peak / 2**20:9.1f}MB {peak / size:7.2f}")


if __name__ == "__main__":
    main()
