"""Profiles of the slowest paths people wait for (issue 31), written beside the figures in
``bench/profiles/`` (pyinstrument's text tree, the app's own frames and the libraries
they call):

* ``sign_and_seal.txt`` — a leader's ``POST /api/v1/copy/<id>/sign`` and a clerk's
  ``…/seal`` on a 10 MB scan, in-process through the API (demo data, PKCS#12 keys);
* ``deliver_blta.txt`` — ``…/deliver`` of that copy with the demo PKI's OCSP, CRL and TSA
  answering on loopback (the B-LTA delivery);
* ``verify_by_code.txt`` — the public verifier answering for that copy by its QR code;
* ``verify_decree.txt`` — the public verifier's analysis of the 30-page decree sample.

    python -m bench.profiles
"""
from __future__ import annotations

import io
import os
import sys
import tempfile

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "profiles"
DECREE = ROOT / "tests" / "samples" / "vn-decree-50-2026-leader-then-seal.pdf"


def _write(name: str, profiler, title: str) -> None:
    from pyinstrument.renderers import ConsoleRenderer

    OUT.mkdir(exist_ok=True)
    text = profiler.output(ConsoleRenderer(unicode=True, color=False, show_all=False,
                                           short_mode=False))
    (OUT / name).write_text(f"# {title} — {machine()}\n{text}")
    print(f"  {name}: {profiler.last_session.duration:.3f} s", flush=True)


class Api:
    """The demo office A's staff through the API of an app in this process."""

    def __init__(self, app):
        # a client each: a test client's cookies would mix the three people
        self.clients = {user: app.test_client() for user in ("officer.a", "leader.a",
                                                             "clerk.a")}
        self.headers = {user: self._login(user) for user in self.clients}
        types = self.get("officer.a", "/api/v1/document_type/")["result"]
        self.type_id = types[0]["id"]
        registers = self.get("clerk.a", "/api/v1/register/")["result"]
        self.register_id = next(r["id"] for r in registers if r["status"] == "open")

    def _login(self, user: str) -> dict[str, str]:
        r = self.clients[user].post("/api/v1/security/login", json={
            "username": user, "password": "saoy-demo", "provider": "db"})
        return {"Authorization": f"Bearer {r.get_json()['access_token']}"}

    def get(self, user: str, path: str) -> dict:
        r = self.clients[user].get(path, headers=self.headers[user])
        assert r.status_code == 200, (path, r.status_code)
        return r.get_json()

    def post(self, user: str, path: str, body: dict | None = None) -> dict:
        r = self.clients[user].post(path, json=body or {}, headers=self.headers[user])
        assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])
        return r.get_json()

    def submitted(self, scan: bytes) -> int:
        r = self.clients["officer.a"].post("/api/v1/copy/", headers=self.headers["officer.a"],
                             content_type="multipart/form-data", data={
                                 "scan": (io.BytesIO(scan), "scan.pdf"),
                                 "document_type_id": str(self.type_id),
                                 "identity_number": "079203001234"})
        assert r.status_code == 201, r.get_data(as_text=True)[:300]
        pk = r.get_json()["id"]
        self.post("officer.a", f"/api/v1/copy/{pk}/submit")
        return pk

    def sign(self, pk: int) -> None:
        from deploy.leader import one_time_code

        self.post("leader.a", f"/api/v1/copy/{pk}/sign", {"otp": one_time_code()})
        self.post("leader.a", f"/api/v1/copy/{pk}/forward")

    def seal(self, pk: int) -> None:
        self.post("clerk.a", f"/api/v1/copy/{pk}/seal", {"register_id": self.register_id})
        self.post("clerk.a", f"/api/v1/copy/{pk}/pay", {"receipt_number": f"BL-{pk}"})

    def deliver(self, pk: int) -> None:
        self.post("clerk.a", f"/api/v1/copy/{pk}/deliver")


def demo_app(pki_url: str):
    """An app on its own SQLite database with the demo data, its PKI served at pki_url."""
    from bench.common import bench_app

    os.environ.update(SAOY_DEMO="1", SAOY_DEMO_PKI_URL=pki_url)
    app = bench_app(tempfile.mkdtemp(prefix="saoy-bench-profile-"))
    runner = app.test_cli_runner()
    for command in (["db", "upgrade"], ["saoy", "seed"], ["saoy", "demo-data"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 0, (command, result.output, result.exception)
    return app


def main() -> None:
    import logging
    import subprocess

    from pyinstrument import Profiler

    from deploy.stack import BIN
    from modules.signing.served_pki import wait_listening
    from tests.pdfs import sized_scan_pdf
    from tests.servers import free_port

    logging.disable(logging.WARNING)
    print(f"profiles — {machine()}")
    pki_port = free_port()
    app = demo_app(f"http://127.0.0.1:{pki_port}")
    pki = subprocess.Popen([str(BIN / "saoy"), "saoy", "demo-pki"], env={
        **os.environ, "SAOY_DATA_DIR": app.config["DATA_DIR"]}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(pki_port, pki, 60)
        # (no app context around the requests: each request has its own session)
        api = Api(app)
        scan = sized_scan_pdf(10 * 2**20)
        warm, pk = api.submitted(scan), api.submitted(scan)
        api.sign(warm)
        api.seal(warm)
        api.deliver(warm)
        profiler = Profiler(interval=0.0005)
        with profiler:
            api.sign(pk)
            api.seal(pk)
        _write("sign_and_seal.txt", profiler, "sign + forward + seal + pay, 10 MB scan, "
               "in-process API (SQLite, PKCS#12 keys, OCSP on loopback)")
        profiler = Profiler(interval=0.0005)
        with profiler:
            api.deliver(pk)
        _write("deliver_blta.txt", profiler, "deliver (B-LTA: /DSS + document timestamp)"
               ", 10 MB scan, TSA/OCSP/CRL on loopback")
        code = api.get("clerk.a", f"/api/v1/copy/{pk}")["verify_code"]
        public = app.test_client()
        profiler = Profiler(interval=0.0005)
        with profiler:
            r = public.get(f"/api/v1/verify/{code}")
        assert r.status_code == 200, r.status_code
        _write("verify_by_code.txt", profiler, "GET /api/v1/verify/<code> of that delivered "
               "copy, the first time (nothing kept)")
        verify_decree(Profiler)
    finally:
        os.killpg(pki.pid, 15)


def verify_decree(profiler_class) -> None:
    from modules.signing.validation import trust_roots
    from modules.signing.verification import explain

    roots = trust_roots(str(ROOT / "trust"))
    data = DECREE.read_bytes()
    explain(data, roots)  # warm
    profiler = profiler_class(interval=0.001)
    with profiler:
        explain(data, roots)
    _write("verify_decree.txt", profiler, "explain() of the 30-page decree 50/2026 sample")


if __name__ == "__main__":
    main()
