"""Explained verification of the real samples (tests/samples) and of the hostile signed
corpus (tests/hostile_signed.py): time per file.

SaoY: pyHanko's cryptographic checks without its difference analysis, plus its own
revision comparison (the objects each revision wrote, then poppler renders of the
touched pages only).  Baseline: pyHanko's default validation of every signature
(strict difference analysis), as `validate_pdf` did before.  Target: a 30-page
document (decree 50) under 5 s.

    python -m bench.verification
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.common import ROOT, machine

SAMPLES = ROOT / "tests" / "samples"


def timed(func, data: bytes, runs: int) -> tuple[float, str]:
    times, verdict = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        verdict = func(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times), verdict


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # pyHanko logs every untrusted path at length
    from modules.signing.validation import trust_roots, validate_pdf
    from modules.signing.verification import explain

    roots = trust_roots(str(ROOT / "trust"))
    print(f"explained verification of the samples — {machine()}")
    print(f"  {'file':58s} {'pages':>5s} {'saoy':>8s} {'baseline':>9s}  verdict")
    for path in sorted(SAMPLES.glob("*.pdf")):
        data = Path(path).read_bytes()
        saoy, verdict = timed(lambda d: explain(d, roots).verdict, data, 3)
        pages = explain(data, roots).pages
        base, _ = timed(lambda d: "valid" if validate_pdf(d, roots).valid else "not", data, 1)
        print(f"  {path.name:58s} {pages or '-':>5} {saoy:7.2f}s {base:8.2f}s  {verdict}")
    hostile(timed, validate_pdf)


def hostile(timed, validate_pdf) -> None:
    """The attacks, signed by a throwaway PKI whose root is trusted for the run."""
    import tempfile

    from modules.signing.pki import DemoPki
    from modules.signing.signers import load_pkcs12
    from modules.signing.validation import trust_roots
    from modules.signing.verification import explain
    from tests.hostile_signed import CORPUS, unused_stream_rewritten

    pki = DemoPki(tempfile.mkdtemp(prefix="saoy-bench-pki-"))
    issued = pki.issue("bench-signer", "Người Ký Thử", "Công ty Thử")
    signer = load_pkcs12(issued.p12_path.read_bytes(), pki.passphrase)
    roots = trust_roots(str(ROOT / "trust"), str(pki.root_pem))
    cases = {name: build for name, (build, _) in CORPUS.items()}
    cases["unused_stream_rewritten, 200 pages, 3 updates"] = \
        lambda s: unused_stream_rewritten(s, pages=200, updates=3)
    print(f"  {'hostile file':58s} {'size':>5s} {'saoy':>8s} {'baseline':>9s}  verdict")
    worst = (0.0, "")
    for name, build in cases.items():
        data = build(signer)
        saoy, verdict = timed(lambda d: explain(d, roots).verdict, data, 3)
        base, _ = timed(lambda d: "valid" if validate_pdf(d, roots).valid else "not", data, 1)
        worst = max(worst, (saoy, name))
        print(f"  {name:58s} {len(data) // 1024:4d}K {saoy:7.2f}s {base:8.2f}s  {verdict}")
    print(f"  worst hostile case: {worst[1]} in {worst[0]:.2f} s")


if __name__ == "__main__":
    main()
