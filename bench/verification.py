"""Explained verification of the real samples (tests/samples): time per file.

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
    from modules.signing.explain import explain
    from modules.signing.validation import trust_roots, validate_pdf

    roots = trust_roots(str(ROOT / "trust"))
    print(f"explained verification of the samples — {machine()}")
    print(f"  {'file':58s} {'pages':>5s} {'saoy':>8s} {'baseline':>9s}  verdict")
    for path in sorted(SAMPLES.glob("*.pdf")):
        data = Path(path).read_bytes()
        saoy, verdict = timed(lambda d: explain(d, roots).verdict, data, 3)
        pages = explain(data, roots).pages
        base, _ = timed(lambda d: "valid" if validate_pdf(d, roots).valid else "not", data, 1)
        print(f"  {path.name:58s} {pages or '-':>5} {saoy:7.2f}s {base:8.2f}s  {verdict}")


if __name__ == "__main__":
    main()
