"""Certification as a leader and a clerk wait for it: the HTTP API of a running SaoY.

Two servers, as deployed: gunicorn (deploy/gunicorn.conf.py, 2 sync workers) on a fresh
PostgreSQL database with a jobs worker, and the demo (``make demo``: Flask's threaded
server on SQLite).  Both have the demo offices and PKCS#12 keys, no TSA.  For 1, 10 and
30 MB scans: ``POST /api/v1/copy/<id>/sign``, ``…/seal`` and ``…/deliver`` (median of
``runs`` warm requests), beside a bare pyHanko script making the same two visible
signatures on the same file in this process with its keys on a SoftHSM token, in the
same run.  Then a leader's batch of 100 copies of 1 MB in one ``sign-batch`` request
(one signer session), against signing them one request each as the bulk page did
before; and the server time (``Server-Timing``) of the staff pages around signing.

    python -m bench.http_certification [runs]
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import requests

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from app.timing import parse as parse_timing
from deploy.leader import one_time_code
from deploy.stack import BIN, Stack, expect, login, port

SIZES_MB = (1, 10, 30)
BATCH = 100


# --- the servers -------------------------------------------------------------------------

def production(stack: Stack) -> str:
    url, data = stack.database(), stack.work / "data"
    base = f"http://127.0.0.1:{stack.app_port}"
    env = {**stack.env(url, data), "SAOY_BASE_URL": base, "SAOY_PROXY_FIX": "0",
           "SAOY_SERVER_TIMING_PIECES": "1"}  # the split printed under each size
    stack.install(env)
    stack.serve(env)
    stack.wait(f"{base}/health/", 120)
    return base


def demo(stack: Stack) -> str:
    """What ``make demo`` runs: SQLite in the data folder, Flask's threaded server."""
    data, demo_port = stack.work / "demo-data", port()
    base = f"http://127.0.0.1:{demo_port}"
    env = {**os.environ, "SAOY_DATA_DIR": str(data), "SAOY_DEMO": "1", "PORT": str(demo_port),
           "SAOY_BASE_URL": base, "SAOY_LOGIN_RATE_LIMIT": "1000 per minute",
           "FLASK_APP": "run", "SAOY_SERVER_TIMING_PIECES": "1"}
    env.pop("SAOY_DATABASE_URL", None)
    data.mkdir()
    stack.saoy(env, "db", "upgrade")
    stack.saoy(env, "seed")
    stack.saoy(env, "demo-data")
    stack.start([str(BIN / "flask"), "--app", "run", "run", "--host", "127.0.0.1", "--port",
                 str(demo_port), "--no-reload", "--with-threads"],
                {**env, "SAOY_PROCESS": "web"}, "demo")
    stack.wait(f"{base}/health/", 120)
    return base


# --- the bare pyHanko flow -----------------------------------------------------------------

def bare_signers(work: Path):
    """The same two certificates as keys on a SoftHSM token, one session for the run."""
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

    from modules.signing.pki import DemoPki
    from tests.softhsm import add_key, make_token, softhsm_lib

    pki = DemoPki(work / "bare-pki")
    leader = pki.issue("leader", "Trần Thị Bình", "UBND Phường Sài Gòn")
    seal = pki.issue("seal", "UBND Phường Sài Gòn", "UBND Phường Sài Gòn")
    env = make_token(work / "hsm", "bench", leader.key_pem_path, leader.cert_pem_path, "leader")
    os.environ.update(env)
    add_key({**os.environ}, "bench", seal.key_pem_path, seal.cert_pem_path, "seal", "02")
    session = open_pkcs11_session(softhsm_lib(), token_criteria=TokenCriteria(label="bench"),
                                  user_pin="123456")
    return (PKCS11Signer(session, key_label="leader", cert_label="leader"),
            PKCS11Signer(session, key_label="seal", cert_label="seal"))


def bare_fonts(work: Path):
    """The fonts of each bare flow: Debian's Noto Serif files as a script takes them (the
    issue's baseline), and SaoY's Vietnamese subset of them (a stricter floor)."""
    from modules.signing import pdf
    from modules.signing.fonts import subset_font

    folder = "/usr/share/fonts/truetype/noto"
    names = ("NotoSerif-Regular", "NotoSerif-Bold", "NotoSerif-Italic")
    return (pdf.Fonts(*(f"{folder}/{name}.ttf" for name in names)),
            pdf.Fonts(*(subset_font(f"{folder}/{name}.ttf", str(work / "fonts"))
                        for name in names)))


# --- driving the API ---------------------------------------------------------------------

#: The pieces a request's Server-Timing names (``app.timing``), in the order printed;
#: ``db`` overlaps the others (a commit's statements are in both).
PIECES = ("scan_checks", "second_factor", "key", "revocation", "attestation", "signature",
          "validation", "archive", "archive_expiry", "acceptance", "read", "store", "commit")


class Office:
    """The demo office A's officer, leader and clerk, logged in through the API; the
    server's own split of each request it made is kept by event (``split``)."""

    def __init__(self, base: str):
        self.base = base
        self.split: dict[str, list[dict[str, float]]] = defaultdict(list)
        self.officer, self.leader, self.clerk = (login(base, u) for u in
                                                 ("officer.a", "leader.a", "clerk.a"))
        types = expect(self.officer.get(f"{base}/api/v1/document_type/", timeout=30), 200,
                       "document types")
        self.type_id = types.json()["result"][0]["id"]
        registers = expect(self.clerk.get(f"{base}/api/v1/register/", timeout=30), 200,
                           "registers").json()["result"]
        self.register_id = next(r["id"] for r in registers if r["status"] == "open")

    def _record(self, event: str, response: requests.Response, seconds: float) -> None:
        spans = parse_timing(response.headers.get("Server-Timing", ""))
        self.split[event].append({**spans, "client": seconds * 1000})

    def submitted(self, scan: bytes) -> int:
        start = time.perf_counter()
        r = expect(self.officer.post(f"{self.base}/api/v1/copy/",
                                     files={"scan": ("scan.pdf", scan)},
                                     data={"document_type_id": self.type_id,
                                           "identity_number": "079203001234"}, timeout=300),
                   201, "intake")
        self._record("intake", r, time.perf_counter() - start)
        pk = r.json()["id"]
        self.event(self.officer, pk, "submit")
        return pk

    def event(self, who: requests.Session, pk: int, event: str, body: dict | None = None
              ) -> float:
        start = time.perf_counter()
        r = expect(who.post(f"{self.base}/api/v1/copy/{pk}/{event}", json=body or {},
                            timeout=300), 200, event)
        seconds = time.perf_counter() - start
        self._record(event, r, seconds)
        return seconds

    def print_split(self, events: tuple[str, ...]) -> None:
        """Median milliseconds of each piece the server named, by event: ``client`` as
        the benchmark waited, ``app`` the server's whole (the difference is HTTP and the
        WSGI server), ``other`` what no piece names (the request's own code, the
        statements outside a commit, the audit event, the workflow's claim)."""
        for event in events:
            rows = self.split.get(event) or []
            if not rows:
                continue
            med = {name: statistics.median(r.get(name, 0.0) for r in rows)
                   for name in ("client", "app", *PIECES, "db")}
            named = sum(med[p] for p in PIECES)
            shown = [f"{p} {med[p]:.0f}" for p in PIECES if med[p] >= 0.5]
            print(f"    {event:<8} client {med['client']:.0f} = app {med['app']:.0f} "
                  f"+ http {med['client'] - med['app']:.0f}; app: {', '.join(shown)}, "
                  f"other {med['app'] - named:.0f} (db statements {med['db']:.0f})",
                  flush=True)

    def certify(self, pk: int) -> dict[str, float]:
        sign = self.event(self.leader, pk, "sign", {"otp": one_time_code()})
        self.event(self.leader, pk, "forward")
        seal = self.event(self.clerk, pk, "seal", {"register_id": self.register_id})
        self.event(self.clerk, pk, "pay", {"receipt_number": f"BL-{pk}"})
        deliver = self.event(self.clerk, pk, "deliver")
        return {"sign": sign, "seal": seal, "deliver": deliver}

    def sign_batch(self, ids: list[int]) -> tuple[float, int]:
        start = time.perf_counter()
        r = self.leader.post(f"{self.base}/api/v1/copy/sign-batch", stream=True, timeout=600,
                             json={"ids": ids, "otp": one_time_code()})
        expect(r, 200, "sign-batch")
        lines = [json.loads(line) for line in r.iter_lines() if line]
        signed = sum(1 for line in lines if line.get("ok"))
        return time.perf_counter() - start, signed


def server_ms(session: requests.Session, url: str) -> float:
    """The server's own time for a page (Server-Timing), median of 5 warm loads."""
    session.get(url, timeout=60)
    times = []
    for _ in range(5):
        r = session.get(url, timeout=60)
        assert r.status_code == 200, (url, r.status_code)
        app = r.headers["Server-Timing"].split("dur=")[1].split(",")[0]
        times.append(float(app))
    return statistics.median(times)


def browser_session(base: str, username: str) -> requests.Session:
    import re

    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{base}/login/", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page)
    r = session.post(f"{base}/login/", data={"username": username, "password": "saoy-demo",
                                             "csrf_token": token.group(1)}, timeout=30)
    assert r.status_code == 200 and "logout-form" in r.text, "browser login failed"
    return session


def pages(base: str, office: Office, scan: bytes) -> list[tuple[str, float]]:
    """Server time of the leader's and the clerk's pages around signing."""
    pk = office.submitted(scan)
    leader, clerk = browser_session(base, "leader.a"), browser_session(base, "clerk.a")
    result = [("leader: queue (Bản sao chờ ký)", server_ms(leader, f"{base}/copies-to-sign/list/")),
              ("leader: request page", server_ms(leader, f"{base}/copies/request/{pk}")),
              ("leader: page preview", server_ms(leader, f"{base}/copies/request/{pk}/page/1.png"))]
    office.event(office.leader, pk, "sign", {"otp": one_time_code()})
    office.event(office.leader, pk, "forward")
    result += [("clerk: queue (Bản sao chờ đóng dấu)",
                server_ms(clerk, f"{base}/copies-to-seal/list/")),
               ("clerk: request page with the seal form",
                server_ms(clerk, f"{base}/copies/request/{pk}")),
               ("clerk: signed page preview",
                server_ms(clerk, f"{base}/copies/request/{pk}/page/1.png"))]
    return result


def run_server(name: str, base: str, scans: dict[int, bytes], runs: int, bare) -> None:
    from bench.signing import bare_flow, timed

    office = Office(base)
    print(f"\n{name} — sign / seal / deliver over HTTP, median of {runs} warm requests")
    print(f"  {'scan':>7} {'sign':>7} {'seal':>7} {'deliver':>8} {'sign+seal':>10} "
          f"{'bare script':>12} {'ratio':>6} {'bare subset':>12} {'ratio':>6}")
    leader, seal, (script_fonts, subset_fonts) = bare
    for scan in scans.values():
        ids = [office.submitted(scan) for _ in range(runs + 1)]
        office.certify(ids[0])  # warm
        office.split.clear()
        times = [office.certify(pk) for pk in ids[1:]]
        med = {k: statistics.median(t[k] for t in times) for k in ("sign", "seal", "deliver")}
        t_script = timed(lambda s=scan: bare_flow(s, leader, seal, script_fonts), runs)
        t_subset = timed(lambda s=scan: bare_flow(s, leader, seal, subset_fonts), runs)
        both = med["sign"] + med["seal"]
        print(f"  {len(scan) / 2**20:5.1f}MB {med['sign']:6.3f}s {med['seal']:6.3f}s "
              f"{med['deliver']:7.3f}s {both:9.3f}s {t_script:11.3f}s {both / t_script:5.2f}× "
              f"{t_subset:11.3f}s {both / t_subset:5.2f}×", flush=True)
        office.print_split(("sign", "seal", "deliver"))

    one_mb = scans[SIZES_MB[0]]
    ids = [office.submitted(one_mb) for _ in range(BATCH)]
    elapsed, signed = office.sign_batch(ids)
    loop_ids = [office.submitted(one_mb) for _ in range(20)]
    start = time.perf_counter()
    for pk in loop_ids:
        office.event(office.leader, pk, "sign", {"otp": one_time_code()})
    loop = time.perf_counter() - start
    print(f"  batch: {signed}/{BATCH} copies of 1 MB signed in {elapsed:.1f} s = "
          f"{signed / elapsed:.1f} copies/s (one request each, as before: "
          f"{len(loop_ids) / loop:.1f} copies/s)", flush=True)
    for label, ms in pages(base, office, one_mb):
        print(f"  {label:<42} {ms:6.1f} ms")


def main() -> None:
    from bench.signing import bare_flow
    from tests.pdfs import sized_scan_pdf

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="saoy-bench-http-"))
    scans = {mb: sized_scan_pdf(int(mb * 2**20) if mb < 30 else int(29.5 * 2**20))
             for mb in SIZES_MB}
    leader, seal = bare_signers(work)
    fonts = bare_fonts(work)
    for scan in scans.values():
        for font_set in fonts:
            bare_flow(scan, leader, seal, font_set)  # warm
    print(f"certification over HTTP — {machine()}")
    for name, start in (("gunicorn (2 sync workers) + PostgreSQL", production),
                        ("demo (flask run --with-threads) + SQLite", demo)):
        stack = Stack(prefix="saoy-bench-http-")
        try:
            base = start(stack)
            run_server(name, base, scans, runs, (leader, seal, fonts))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
