"""Delivery cost: today's delivery check (validation) against the B-LTA delivery (the same
check, then /DSS with OCSP and CRL answers for every chain and a document timestamp), on
a test PKI whose OCSP, CRL and TSA answer on loopback (certomancer).  Cold (answers
fetched) and warm (answers reused, as in a batch of deliveries), per copy.

    python -m bench.archive [runs]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    from asn1crypto import x509
    from flask import Flask

    from bench.signing import setup as fonts_setup
    from modules.signing import archive, revocation
    from modules.signing.signers import load_pkcs12
    from modules.signing.tsa import AllowedTimeStamper, timestamper_for
    from modules.signing.validation import validate_pdf
    from tests.pdfs import sized_scan_pdf
    from tests.revocation_pki import make_pki
    from tests.servers import free_port

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    pki = make_pki(Path(tempfile.mkdtemp(prefix="saoy-bench-pki-")), free_port(),
                   "UBND Phường Sài Gòn", "Trần Thị Bình", "UBND Phường Sài Gòn")
    pki.start()
    try:
        roots = tuple(x509.Certificate.load(pki.cert_der(c)) for c in ("root", "interm"))
        leader = load_pkcs12(pki.p12("leader-good"), b"test")
        seal = load_pkcs12(pki.p12("seal-good"), b"test")
        _signers, _bare, fonts = fonts_setup()
        from bench.signing import saoy_flow
        from modules.signing import pdf

        look = pdf.SignatureLook(None, "Ký bởi: %(signer)s")
        app = Flask("bench")
        app.config.update(REVOCATION_HOSTS="", REVOCATION_REWRITE="", REVOCATION_SECONDS=5,
                          REVOCATION_CACHE_SECONDS=300)
        timestamper = timestamper_for(pki.tsa_url(), 10)  # kept, as the app keeps it
        print(f"delivery per copy, median of {runs} runs, loopback OCSP/CRL/TSA — {machine()}")
        print(f"  {'scan':>6} {'today (check)':>14} {'B-LTA cold':>11} {'B-LTA warm':>11} "
              f"{'added (warm)':>13}")
        with app.app_context():
            for mb in (1, 10):
                sealed = saoy_flow(sized_scan_pdf(mb * 2**20), leader, seal, fonts, look, look)
                today = _median(lambda s=sealed: validate_pdf(s, roots), runs)

                def cold(s=sealed):  # nothing kept: answers and the TSA's certificate
                    revocation.forget_answers()
                    return validate_pdf(s, roots), archive.make_lta(
                        s, roots, AllowedTimeStamper(pki.tsa_url(), timeout=10))

                def warm(s=sealed):
                    return validate_pdf(s, roots), archive.make_lta(s, roots, timestamper)

                t_cold = _median(cold, runs)
                warm()
                t_warm = _median(warm, runs)
                print(f"  {mb:4d}MB {today:13.3f}s {t_cold:10.3f}s {t_warm:10.3f}s "
                      f"{t_warm - today:+12.3f}s")
    finally:
        pki.stop()


if __name__ == "__main__":
    main()
