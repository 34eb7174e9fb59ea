"""Explained verification of the real samples (tests/samples) and of the hostile signed
corpus (tests/hostile_signed.py): time per file.

SaoY: pyHanko's cryptographic checks without its difference analysis, plus its own
revision comparison (the objects each revision wrote, then poppler renders of the
touched pages only).  Baseline: pyHanko's default validation of every signature
(strict difference analysis), as `validate_pdf` did before.  Target: a 30-page
document (decree 50) under 5 s.  For the hostile corpus, the opinions of pyHanko (its
bottom line per signature, difference analysis included) and of poppler's pdfsig (the
signature's cryptography and whether it covers the whole file) are printed beside SaoY's
verdict and the verdicts the corpus expects.

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
    print(f"  {'hostile file':44s} {'size':>5s} {'saoy':>7s} {'base':>6s}  "
          f"{'saoy verdict':24s} {'expected':14s} {'pyhanko':18s} pdfsig")
    worst, wrong = (0.0, ""), []
    for name, build in cases.items():
        data = build(signer)
        saoy, verdict = timed(lambda d: explain(d, roots).verdict, data, 3)
        base, _ = timed(lambda d: "valid" if validate_pdf(d, roots).valid else "not", data, 1)
        worst = max(worst, (saoy, name))
        expected = CORPUS.get(name, (None, {"valid"}))[1]
        if verdict not in expected:
            wrong.append(name)
        print(f"  {name[:44]:44s} {len(data) // 1024:4d}K {saoy:6.2f}s {base:5.2f}s  "
              f"{verdict:24s} {'/'.join(sorted(expected))[:14]:14s} "
              f"{pyhanko_opinion(data, roots):18s} {pdfsig_opinion(data)}")
    print(f"  worst hostile case: {worst[1]} in {worst[0]:.2f} s; "
          f"verdicts outside the expected: {len(wrong)} {wrong}")


def pyhanko_opinion(data: bytes, roots) -> str:
    """pyHanko's own answer: per signature ok (intact, valid, trusted, no disallowed
    change), modified (its difference analysis refuses a later revision), broken
    (not intact or not valid), untrusted, or error."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
    except Exception:  # noqa: BLE001 - pyHanko cannot read it at all
        return "unreadable"
    said = []
    for sig in signatures:
        try:
            status = validate_pdf_signature(sig, ValidationContext(trust_roots=list(roots)))
        except Exception:  # noqa: BLE001
            said.append("error")
            continue
        if not (status.intact and status.valid):
            said.append("broken")
        elif status.docmdp_ok is False or getattr(status, "modification_level", None) \
                is not None and status.modification_level.name == "OTHER":
            said.append("modified")
        else:
            said.append("ok" if status.trusted else "untrusted")
    return ",".join(said) or "no signature"


def pdfsig_opinion(data: bytes) -> str:
    """poppler's pdfsig (no certificate check): per signature valid/invalid and whether
    it covers the whole file ('part' when not)."""
    import re
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(data)
        file.flush()
        out = subprocess.run(["pdfsig", "-nocert", file.name], capture_output=True,
                             text=True, timeout=60).stdout
    said = []
    for block in re.split(r"\nSignature #\d+:", out)[1:]:
        valid = "Signature is Valid" in block
        whole = "Total document signed" in block and "not total" not in block.lower()
        said.append(("valid" if valid else "invalid") + ("" if whole else "/part"))
    return ",".join(said) or ("unreadable" if "not" in out.lower() else "none")


if __name__ == "__main__":
    main()
