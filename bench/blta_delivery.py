"""Intake → delivered copy as deployed (issue 31): gunicorn (2 sync workers) on PostgreSQL
with a jobs worker and the demo PKI served on loopback (its OCSP responder, CRLs and
time-stamping service), so signing checks revocation and delivery makes the PAdES B-LTA
copy (/DSS and a document timestamp).  Over HTTP, for 1, 10 and 30 MB scans, median of
``runs`` warm copies: intake (upload and submit), sign, seal, deliver (paying, a click
at the counter, is not counted).

Beside it, in the same run: the floor — a bare pyHanko script making the same two visible
signatures with SaoY's font subset and keys on a SoftHSM token — and the round trips the
archive needs, timed against the same responders: one OCSP answer, one CRL, one
timestamp.  The goal: intake → delivered ≤ 2 × floor + those round trips.

    python -m bench.blta_delivery [runs]
"""
from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from bench.http_certification import Office, bare_fonts, bare_signers
from bench.signing import bare_flow, timed
from deploy.stack import BIN, Stack, port

SIZES_MB = (1, 10, 30)


def serve(stack: Stack) -> tuple[str, Path, str]:
    """The deployed stack with the demo PKI served; its base URL, data folder and the
    PKI's address."""
    url, data = stack.database(), stack.work / "data"
    base, pki_port = f"http://127.0.0.1:{stack.app_port}", port()
    env = {**stack.env(url, data), "SAOY_BASE_URL": base, "SAOY_PROXY_FIX": "0",
           "SAOY_DEMO_PKI_URL": f"http://127.0.0.1:{pki_port}",
           "SAOY_SERVER_TIMING_PIECES": "1"}  # the split printed under each size
    stack.install(env)
    stack.start([str(BIN / "saoy"), "saoy", "demo-pki"], env, "demo-pki")
    stack.serve(env)
    stack.wait(f"{base}/health/", 120)
    return base, data, env["SAOY_DEMO_PKI_URL"]


def round_trips(data: Path, pki_url: str, runs: int) -> dict[str, float]:
    """One OCSP answer, one CRL and one timestamp from the served PKI (median seconds),
    asked as the archive asks: about the demo leader's certificate."""
    from asn1crypto import algos, core, ocsp, pem, tsp, x509

    from modules.signing.served_pki import tsa_url

    folder = data / "pki" / "served"
    leaf = x509.Certificate.load(pem.unarmor((folder / "leader-leader.a.pem").read_bytes())[2])
    issuer = next(x509.Certificate.load(der) for _type, _headers, der in pem.unarmor(
        (data / "pki" / "demo-root.pem").read_bytes(), multiple=True)
        if x509.Certificate.load(der).subject == leaf.issuer)
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": {
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha1"}),
        "issuer_name_hash": core.OctetString(leaf.issuer.sha1),
        "issuer_key_hash": core.OctetString(issuer.public_key.sha1),
        "serial_number": leaf.serial_number}}]}}).dump()
    stamp = tsp.TimeStampReq({"version": 1, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"},
        "hashed_message": hashlib.sha256(b"SaoY").digest()}, "cert_req": True}).dump()
    session = requests.Session()
    session.trust_env = False
    asks = {
        "OCSP": lambda: session.post(leaf.ocsp_urls[0], data=request, timeout=10, headers={
            "Content-Type": "application/ocsp-request"}),
        "CRL": lambda: session.get(leaf.crl_distribution_points[0].url, timeout=10),
        "timestamp": lambda: session.post(tsa_url(pki_url), data=stamp, timeout=10, headers={
            "Content-Type": "application/timestamp-query"}),
    }
    found = {}
    for name, ask in asks.items():
        assert ask().status_code == 200, name
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            ask()
            times.append(time.perf_counter() - started)
        found[name] = statistics.median(times)
    return found


def main() -> None:
    from tests.pdfs import sized_scan_pdf

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="saoy-bench-blta-"))
    scans = {mb: sized_scan_pdf(int(mb * 2**20) if mb < 30 else int(29.5 * 2**20))
             for mb in SIZES_MB}
    leader, seal = bare_signers(work)
    subset = bare_fonts(work)[1]
    stack = Stack(prefix="saoy-bench-blta-")
    try:
        base, data, pki_url = serve(stack)
        office = Office(base)
        trips = round_trips(data, pki_url, 5)
        extra = sum(trips.values())
        print(f"intake → delivered B-LTA over HTTP, median of {runs} warm copies — "
              f"{machine()}")
        print("  round trips (loopback): " + ", ".join(f"{k} {v * 1000:.1f} ms"
                                                      for k, v in trips.items()))
        print(f"  {'scan':>7} {'intake':>7} {'sign':>7} {'seal':>7} {'deliver':>8} "
              f"{'total':>7} {'floor':>7} {'2×floor+trips':>14} {'ratio':>6}")
        for scan in scans.values():
            bare_flow(scan, leader, seal, subset)  # warm
            office.certify(office.submitted(scan))  # warm
            office.split.clear()
            rows = []
            for _ in range(runs):
                started = time.perf_counter()
                pk = office.submitted(scan)
                intake = time.perf_counter() - started
                rows.append({"intake": intake, **office.certify(pk)})
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            total = sum(med.values())
            floor = timed(lambda s=scan: bare_flow(s, leader, seal, subset), runs)
            goal = 2 * floor + extra
            print(f"  {len(scan) / 2**20:5.1f}MB {med['intake']:6.3f}s {med['sign']:6.3f}s "
                  f"{med['seal']:6.3f}s {med['deliver']:7.3f}s {total:6.3f}s {floor:6.3f}s "
                  f"{goal:13.3f}s {total / goal:5.2f}×", flush=True)
            office.print_split(("intake", "submit", "sign", "seal", "deliver"))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
