"""Remote signing through the CSC API (#30): a real CSC server — certomancer-csc-dummy, the
one pyHanko's own tests run — on loopback, over a test PKI whose OCSP answers; a counting
proxy in front of it sees each call as the provider would (one authorisation for a
batch).  Leader B binds the credential that names her, the administrator approves it,
she signs one copy and a batch of 10; the copies validate (pyHanko, pdfsig) as hers."""
from __future__ import annotations

import base64
import collections
import http.server
import json
import re
import subprocess
import sys
import threading

import pytest
import requests
from sqlalchemy import select

from app.transactions import atomic
from modules.signing.served_pki import Holder, ServedPki, wait_listening
from tests import revocation_pki
from tests.browser import click, requires_chromium, sign_in, wait_for
from tests.conftest import user_named
from tests.keys import profile_of, signing_with
from tests.pdfs import pdfsig
from tests.servers import free_port
from tests.test_copies import state_of
from tests.test_leader_signing import _request

CREDENTIAL = "saoy/leader-remote"


@pytest.fixture(scope="module")
def remote_pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csc-pki")
    made = ServedPki.make(folder, f"http://127.0.0.1:{free_port()}", [
        Holder("leader-remote", "Vũ Thị Giang", "UBND Phường Tân Định"),
        Holder("leader-app", "Vũ Thị Giang", "UBND Phường Tân Định"),  # approved in an app
        Holder("stranger-app", "Vũ Thị Giang", "UBND Phường Tân Định"),
    ], revocation_pki.VALIDITY)
    pki = revocation_pki.TestPki(made.folder, made.url)
    pki.start()
    yield pki
    pki.stop()


def _json_answer(handler: http.server.BaseHTTPRequestHandler, status: int, body) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _Counting(http.server.BaseHTTPRequestHandler):
    """Forwards every POST to the CSC server and counts it by path; with ``pin`` set it
    answers an authorisation without that PIN as a provider does (401) — the dummy
    server itself checks no PIN."""

    upstream = ""
    pin: str | None = None
    expired_sad = False  # every SAD has expired (the dummy server never expires one)
    calls: collections.Counter = collections.Counter()
    bodies: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls[self.path] += 1
        asked = json.loads(body or b"{}")
        type(self).bodies.append((self.path, asked))
        path = self.path
        if path.startswith("/csc/v2/"):  # a v2 provider: v2's words only, then the dummy
            if {"hash", "hashAlgo"} & set(asked):
                return self._refuse(400, {"error": "invalid_request"})
            renamed = {"hashes": "hash", "hashAlgorithmOID": "hashAlgo"}
            body = json.dumps({renamed.get(k, k): v for k, v in asked.items()}).encode()
            path = path.replace("/csc/v2/", "/csc/v1/")
        if path.endswith("/authorize") and self.pin and asked.get("PIN") != self.pin:
            return self._refuse(401, {})
        if path.endswith("/signHash") and self.expired_sad:
            return self._refuse(400, {"error": "invalid_request",
                                      "error_description": "The SAD has expired"})
        r = requests.post(self.upstream + path, data=body, timeout=30,
                          headers={"Content-Type": "application/json"})
        self.send_response(r.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    def _refuse(self, status: int, said: dict):
        _json_answer(self, status, said)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def csc_server(remote_pki):
    """certomancer-csc-dummy on the test PKI (SCAL 1: a SAD for several signatures)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "csc_dummy", str(remote_pki.folder / "certomancer.yml"),
         str(port), "1"], cwd=remote_pki.folder, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    _Counting.upstream = f"http://localhost:{port}"
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Counting)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    process.terminate()
    process.wait(10)


@pytest.fixture()
def provider(app, csc_server, remote_pki, monkeypatch):
    monkeypatch.setitem(app.config, "CSC_PROVIDERS", f"thu-nghiem={csc_server}")
    monkeypatch.setitem(app.config, "TRUST_DIR", str(remote_pki.roots_folder()))
    _Counting.calls.clear()
    _Counting.bodies.clear()
    _Counting.pin, _Counting.expired_sad = None, False
    yield csc_server
    _Counting.pin, _Counting.expired_sad = None, False


def _bind(web, credential=CREDENTIAL, **extra):
    return web.post("/signing/remote/", data={"provider": "thu-nghiem",
                                              "credential": credential, **extra},
                    follow_redirects=True).get_data(as_text=True)


def _remote_key(db_session, fingerprint):
    from modules.signing.models import SigningKey

    db_session.expire_all()
    return db_session.scalars(select(SigningKey).where(
        SigningKey.fingerprint == fingerprint)).first()


@pytest.fixture()
def remote_key(app, login, db_session, provider, remote_pki):
    """Leader B's remote credential, bound by her and approved by the administrator."""
    import hashlib

    from modules.signing import keys

    fingerprint = hashlib.sha256(remote_pki.cert_der("leader-remote")).hexdigest()
    key = _remote_key(db_session, fingerprint)
    if key is None:
        page = _bind(login("leader.b"))
        assert "quản trị hệ thống phê duyệt trước khi bạn ký" in page, page[-3000:]
        key = _remote_key(db_session, fingerprint)
        assert key is not None and not key.active  # waits for the administrator
        assert _Counting.calls["/csc/v1/signatures/signHash"] == 1  # the challenge
        leader = user_named(db_session, "leader.b")
        office = leader.office_id
        saved = profile_of(db_session, office, leader.id).key_id
        with app.test_request_context(), atomic(db_session):
            keys.approve_key(db_session, user_named(db_session, "admin"), key.id)
        with atomic(db_session):  # approving bound it: the test chooses it below
            profile_of(db_session, office, leader.id).key_id = saved
    return _remote_key(db_session, fingerprint)


def test_a_leader_binds_only_a_credential_that_names_her(app, login, db_session, provider,
                                                         remote_pki, remote_key):
    from modules.signing.models import KeyKind

    assert remote_key.kind is KeyKind.remote and remote_key.user.username == "leader.b"
    assert remote_key.remote_provider == "thu-nghiem"
    assert remote_key.remote_credential == CREDENTIAL
    page = _bind(login("leader.a"))  # another leader's credential
    assert "Vũ Thị Giang" in page and "Trần Thị Bình" in page  # refused, said why
    assert _remote_key(db_session, remote_key.fingerprint).user_id == remote_key.user_id
    page = _bind(login("leader.b"), credential="saoy/no-such-credential")
    assert "không biết định danh này" in page
    mine = login("leader.b").get("/signing/remote/").get_data(as_text=True)
    assert remote_key.subject in mine and "thu-nghiem" in mine and "Đã phê duyệt" in mine


def test_one_copy_and_a_batch_of_ten_signed_remotely_with_one_approval_each(
        app, api, login, db_session, provider, remote_key, tmp_path):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    office = leader.office_id
    with signing_with(db_session, office, leader.id, remote_key.id):
        web = login("leader.b")
        single = _request(app, db_session, "b")
        page = web.get(f"/copies/request/{single}").get_data(as_text=True)
        assert 'id="remote-help"' in page and "thu-nghiem" in page
        _Counting.calls.clear()
        assert web.post(f"/copies/request/{single}/do/sign",
                        data={"pin": "", "otp": ""}).status_code == 302
        assert state_of(db_session, single).state is State.signed
        assert _Counting.calls["/csc/v1/credentials/authorize"] == 1
        assert _Counting.calls["/csc/v1/signatures/signHash"] == 1

        batch = [_request(app, db_session, "b") for _ in range(10)]
        _Counting.calls.clear()
        _Counting.bodies.clear()
        rest, headers = api("leader.b")
        r = rest.post("/api/v1/copy/sign-batch", headers=headers, json={"ids": batch})
        lines = [json.loads(x) for x in r.get_data(as_text=True).splitlines()]
        assert [x["ok"] for x in lines] == [True] * 10, lines
        assert _Counting.calls["/csc/v1/credentials/authorize"] == 1  # one approval
        granted = [b for p, b in _Counting.bodies if p.endswith("authorize")]
        assert granted[0]["numSignatures"] == 10
        assert _Counting.calls["/csc/v1/signatures/signHash"] == 10
    for pk in (single, batch[0], batch[-1]):
        _signed_by(app, state_of(db_session, pk), remote_key, tmp_path)


def _signed_by(app, copy, key, tmp_path) -> None:
    """The copy's leader signature validates (pyHanko, pdfsig) and is made with ``key``."""
    from app.storage import file_store
    from modules.signing.services import validate_bytes

    with app.app_context():
        data = file_store().read_bytes(copy.document.current_sha256)
        report = validate_bytes(data)
    leader_sig = [s for s in report.signatures if s.role == "leader"]
    assert leader_sig and leader_sig[0].valid and leader_sig[0].trusted, report.to_dict()
    assert leader_sig[0].fingerprint == key.fingerprint
    out = pdfsig(app, tmp_path, data, extra_roots=(str(provider_root(app)),))
    assert "Signature is Valid." in out and "Vũ Thị Giang" in out


def provider_root(app):
    from pathlib import Path

    return Path(app.config["TRUST_DIR"]) / "root.pem"


def test_the_provider_down_or_refusing_leaves_the_request_waiting(
        app, login, db_session, provider, remote_key, monkeypatch):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, remote_key.id):
        pk = _request(app, db_session, "b")
        before = state_of(db_session, pk).document.current_sha256
        monkeypatch.setitem(app.config, "CSC_PROVIDERS", "thu-nghiem=http://127.0.0.1:9")
        web = login("leader.b")
        r = web.post(f"/copies/request/{pk}/do/sign", data={})
        page = web.get(r.headers["Location"]).get_data(as_text=True)
        assert "thu-nghiem" in page and "không trả lời" in page
        copy = state_of(db_session, pk)
        assert copy.state is State.awaiting_signature
        assert copy.document.current_sha256 == before


def test_a_wrong_pin_signs_nothing_and_stops_the_batch(app, api, login, db_session, provider,
                                                      remote_key):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    _Counting.pin = "246810"
    with signing_with(db_session, leader.office_id, leader.id, remote_key.id):
        pk = _request(app, db_session, "b")
        web = login("leader.b")
        r = web.post(f"/copies/request/{pk}/do/sign", data={"pin": "000000"})
        page = web.get(r.headers["Location"]).get_data(as_text=True)
        assert "sai mã PIN" in page
        assert state_of(db_session, pk).state is State.awaiting_signature
        batch = [_request(app, db_session, "b") for _ in range(3)]
        _Counting.calls.clear()
        rest, headers = api("leader.b")
        lines = [json.loads(x) for x in rest.post(
            "/api/v1/copy/sign-batch", headers=headers,
            json={"ids": batch, "pin": "000000"}).get_data(as_text=True).splitlines()]
        assert len(lines) == 1 and not lines[0]["ok"]  # stopped at the first refusal
        assert _Counting.calls["/csc/v1/credentials/authorize"] == 1  # not tried 3 times
        assert all(state_of(db_session, b).state is State.awaiting_signature for b in batch)
        assert web.post(f"/copies/request/{pk}/do/sign",
                        data={"pin": "246810"}).status_code == 302
        assert state_of(db_session, pk).state is State.signed


def test_a_csc_v2_provider_is_spoken_to_in_v2s_words(app, login, db_session, provider,
                                                     remote_key, monkeypatch):
    from modules.copies.models import State

    monkeypatch.setitem(app.config, "CSC_PROVIDERS", f"thu-nghiem=csc2+{provider}")
    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, remote_key.id):
        pk = _request(app, db_session, "b")
        _Counting.calls.clear()
        _Counting.bodies.clear()
        r = login("leader.b").post(f"/copies/request/{pk}/do/sign", data={})
        assert r.status_code == 302 and state_of(db_session, pk).state is State.signed
    assert _Counting.calls["/csc/v2/credentials/authorize"] == 1
    assert _Counting.calls["/csc/v2/signatures/signHash"] == 1
    assert not [p for p in _Counting.calls if p.startswith("/csc/v1/")]
    sent = [b for p, b in _Counting.bodies if p.endswith("signHash")][0]
    assert "hashes" in sent and "hashAlgorithmOID" in sent and "hash" not in sent


def test_an_authorisation_that_expired_signs_nothing_and_stops_the_batch(
        app, api, login, db_session, provider, remote_key):
    from modules.copies.models import State

    _Counting.expired_sad = True
    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, remote_key.id):
        pk = _request(app, db_session, "b")
        before = state_of(db_session, pk).document.current_sha256
        web = login("leader.b")
        page = web.get(web.post(f"/copies/request/{pk}/do/sign", data={"pin": "1"})
                       .headers["Location"]).get_data(as_text=True)
        assert "đã hết hạn trước khi ký" in page
        copy = state_of(db_session, pk)
        assert copy.state is State.awaiting_signature
        assert copy.document.current_sha256 == before
        batch = [_request(app, db_session, "b") for _ in range(3)]
        rest, headers = api("leader.b")
        lines = [json.loads(x) for x in rest.post(
            "/api/v1/copy/sign-batch", headers=headers,
            json={"ids": batch}).get_data(as_text=True).splitlines()]
        assert len(lines) == 1 and not lines[0]["ok"]
        assert all(state_of(db_session, b).state is State.awaiting_signature for b in batch)


# --- asynchronous approval: a contract double of the SmartCA shape -------------------------

APP_CREDENTIAL = "079190000001"  # the leader's account at the provider
WEBHOOK_SECRET = "webhook-secret-of-the-test"


class _SmartCa(http.server.BaseHTTPRequestHandler):
    """The provider as SaoY sees it on the network: it checks SaoY's client id and secret,
    keeps each transaction pending until the test says what the leader did in the app,
    then signs the hashes with the credential's key (``signing_key``: the one the
    certificate names, unless the test makes it lie)."""

    pki = None
    transactions: dict = {}
    signing_key = "leader-app"

    def do_POST(self):
        asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if (asked.get("sp_id"), asked.get("sp_password")) != ("saoy-test", "sp-secret"):
            return self._answer(401, {"status_code": 401, "message": "UNAUTHORIZED"})
        if self.path == "/credentials/get_certificate":
            if asked.get("user_id") != APP_CREDENTIAL:
                return self._answer(404, {"status_code": 404, "message": "USER_NOT_FOUND"})
            b64 = lambda label: base64.b64encode(self.pki.cert_der(label)).decode()  # noqa: E731
            return self._answer(200, {"status_code": 200, "data": {"user_certificates": [{
                "cert_id": "1", "cert_data": b64("leader-app"),
                "chain_data": {"ca_cert": b64("interm"), "root_cert": b64("root")}}]}})
        if self.path == "/signatures/sign":
            tran = f"tran-{len(self.transactions) + 1}"
            self.transactions[tran] = {"state": "WAITING_FOR_SIGNER_CONFIRM", "files": [
                bytes.fromhex(f["data_to_be_signed"]) for f in asked["sign_files"]]}
            return self._answer(200, {"status_code": 200, "data": {
                "transaction_id": tran, "expired_in": 300}})
        tran = self.path.split("/")[-2]
        held = self.transactions.get(tran)
        if held is None:
            return self._answer(404, {"status_code": 404, "message": "NOT_FOUND"})
        data = {"transaction_id": tran, "status": held["state"]}
        if held["state"] == "SIGNED":
            data["signatures"] = [{"doc_id": str(i), "signature_value": self._sign(d)}
                                  for i, d in enumerate(held["files"])]
        return self._answer(200, {"status_code": 200, "data": data})

    def _sign(self, digest: bytes) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        key = serialization.load_pem_private_key(
            (self.pki.folder / f"{self.signing_key}.key.pem").read_bytes(), None)
        return base64.b64encode(key.sign(digest, padding.PKCS1v15(),
                                         utils.Prehashed(hashes.SHA256()))).decode()

    def _answer(self, status, body):
        _json_answer(self, status, body)

    def log_message(self, *args):
        pass

    @classmethod
    def leader_does(cls, what: str, tran: str | None = None) -> str:
        """The leader approves (SIGNED), declines (REJECTED) or lets it run out (EXPIRED)."""
        tran = tran or sorted(cls.transactions, key=lambda t: int(t.split("-")[1]))[-1]
        cls.transactions[tran]["state"] = what
        return tran


@pytest.fixture(scope="module")
def smartca(remote_pki):
    _SmartCa.pki = remote_pki
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _SmartCa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def app_provider(app, provider, smartca, monkeypatch, tmp_path):
    """Two providers declared: the CSC one and "dien-thoai", approved in an app; SaoY's
    client secret and the webhook's secret in files, as a deployment keeps them."""
    monkeypatch.setitem(app.config, "CSC_PROVIDERS",
                        f"thu-nghiem={provider};dien-thoai=smartca+{smartca}")
    (tmp_path / "sp").write_text("sp-secret\n")
    (tmp_path / "hook").write_text(WEBHOOK_SECRET)
    monkeypatch.setenv("SAOY_REMOTE_DIEN_THOAI_CLIENT_ID", "saoy-test")
    monkeypatch.setenv("SAOY_REMOTE_DIEN_THOAI_CLIENT_SECRET_FILE", str(tmp_path / "sp"))
    monkeypatch.setenv("SAOY_REMOTE_DIEN_THOAI_WEBHOOK_SECRET_FILE", str(tmp_path / "hook"))
    _SmartCa.signing_key = "leader-app"
    yield smartca
    _SmartCa.signing_key = "leader-app"


@pytest.fixture()
def app_key(app, login, db_session, app_provider, remote_pki):
    """Leader B binds her SmartCA-shaped credential (approving the challenge on her phone)
    and the administrator approves it."""
    import hashlib

    from modules.signing import keys

    fingerprint = hashlib.sha256(remote_pki.cert_der("leader-app")).hexdigest()
    key = _remote_key(db_session, fingerprint)
    if key is None:
        web = login("leader.b")
        page = web.post("/signing/remote/", data={"provider": "dien-thoai",
                                                  "credential": APP_CREDENTIAL},
                        follow_redirects=True).get_data(as_text=True)
        assert 'id="remote-waiting"' in page and "điện thoại" in page, page[-3000:]
        assert web.get("/signing/remote/binding").get_json()["state"] == "pending"
        assert _remote_key(db_session, fingerprint) is None  # nothing before the proof
        _SmartCa.leader_does("SIGNED")
        assert web.get("/signing/remote/binding").get_json()["state"] == "done"
        key = _remote_key(db_session, fingerprint)
        assert key is not None and not key.active and key.remote_provider == "dien-thoai"
        leader = user_named(db_session, "leader.b")
        saved = profile_of(db_session, leader.office_id, leader.id).key_id
        with app.test_request_context(), atomic(db_session):
            keys.approve_key(db_session, user_named(db_session, "admin"), key.id)
        with atomic(db_session):
            profile_of(db_session, leader.office_id, leader.id).key_id = saved
    return _remote_key(db_session, fingerprint)


def _job_of(db_session, pk):
    from modules.signing.models import ExternalSigningJob

    db_session.expire_all()
    return db_session.scalars(select(ExternalSigningJob).where(
        ExternalSigningJob.document_id == state_of(db_session, pk).document_id)
        .order_by(ExternalSigningJob.id.desc())).first()


def _ask_for_approval(web, db_session, pk):
    assert web.post(f"/copies/request/{pk}/do/request_signature",
                    data={}).status_code == 302
    page = web.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="remote-waiting"' in page and "Thời gian còn lại để phê duyệt" in page, \
        page[-4000:]
    return _job_of(db_session, pk)


def _events(db_session, job_id):
    from app.audit import AuditEvent

    return [e.event for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "ExternalSigningJob", AuditEvent.object_id == job_id))]


def test_a_copy_signed_after_the_leader_approves_on_her_phone(
        app, login, db_session, app_key, tmp_path):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, app_key.id):
        web = login("leader.b")
        pk = _request(app, db_session, "b")
        page = web.get(f"/copies/request/{pk}").get_data(as_text=True)
        assert "dien-thoai" in page and 'name="pin"' not in page  # nothing to type here
        page = web.get(f"/copies/bulk-sign?ids={pk}").get_data(as_text=True)
        assert "phê duyệt trên điện thoại" in page and f"/copies/request/{pk}" in page
        job = _ask_for_approval(web, db_session, pk)
        assert job.remote_transaction.startswith("dien-thoai:")
        assert state_of(db_session, pk).state is State.awaiting_signature
        waiting = web.get(f"/signing/remote/job/{job.id}").get_json()
        assert waiting["state"] == "pending" and 250 < waiting["seconds_left"] <= 300
        assert state_of(db_session, pk).state is State.awaiting_signature
        _SmartCa.leader_does("SIGNED")
        assert web.get(f"/signing/remote/job/{job.id}").get_json()["state"] == "done"
        copy = state_of(db_session, pk)
        assert copy.state is State.signed and copy.signed_by.username == "leader.b"
    _signed_by(app, copy, app_key, tmp_path)
    assert "remote_signature_requested" in _events(db_session, job.id)


@pytest.mark.parametrize("what, said", [("REJECTED", "Bạn đã từ chối"),
                                        ("EXPIRED", "Đã hết thời gian phê duyệt")])
def test_declined_or_run_out_on_the_phone_leaves_the_request_waiting(
        app, login, db_session, app_key, what, said):
    from modules.copies.models import State
    from modules.signing.models import JobState

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, app_key.id):
        web = login("leader.b")
        pk = _request(app, db_session, "b")
        before = state_of(db_session, pk).document.current_sha256
        job = _ask_for_approval(web, db_session, pk)
        _SmartCa.leader_does(what)
        answer = web.get(f"/signing/remote/job/{job.id}").get_json()
        assert answer["state"] == "failed" and said in answer["message"], answer
        copy = state_of(db_session, pk)
        assert copy.state is State.awaiting_signature
        assert copy.document.current_sha256 == before
        assert _job_of(db_session, pk).state is JobState.failed
        reason = "refused" if what == "REJECTED" else "expired"
        assert f"remote_signature_{reason}" in _events(db_session, job.id)
        page = web.get(f"/copies/request/{pk}").get_data(as_text=True)
        assert 'id="remote-waiting"' not in page and 'id="do-request_signature"' in page


def _webhook(client, body: dict, secret: str = WEBHOOK_SECRET):
    import hashlib
    import hmac

    data = json.dumps(body).encode()
    mac = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    return client.post("/signing/remote/webhook/dien-thoai", data=data,
                       content_type="application/json", headers={"X-SaoY-Signature": mac})


def test_the_providers_webhook_is_authenticated_and_harmless_when_repeated(
        app, login, db_session, app_key):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, app_key.id):
        pk = _request(app, db_session, "b")
        job = _ask_for_approval(login("leader.b"), db_session, pk)
        tran = job.remote_transaction.split(":", 1)[1]
        _SmartCa.leader_does("SIGNED", tran)
        anyone = app.test_client()
        assert _webhook(anyone, {"transaction_id": tran}, secret="guessed").status_code == 403
        r = anyone.post("/signing/remote/webhook/dien-thoai", json={"transaction_id": tran})
        assert r.status_code == 403
        assert state_of(db_session, pk).state is State.awaiting_signature  # not taken
        assert _webhook(anyone, {"transaction_id": tran}).status_code == 200
        copy = state_of(db_session, pk)
        assert copy.state is State.signed
        signed, events = copy.document.current_sha256, _events(db_session, job.id)
        assert _webhook(anyone, {"transaction_id": tran}).status_code == 200  # told again
        assert state_of(db_session, pk).document.current_sha256 == signed
        assert _events(db_session, job.id) == events
        assert _webhook(anyone, {"transaction_id": "tran-999"}).status_code == 404


def test_a_signature_by_another_key_is_refused_and_another_leader_sees_nothing(
        app, login, db_session, app_key):
    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, app_key.id):
        web = login("leader.b")
        pk = _request(app, db_session, "b")
        before = state_of(db_session, pk).document.current_sha256
        job = _ask_for_approval(web, db_session, pk)
        assert login("leader.a").get(f"/signing/remote/job/{job.id}").status_code == 404
        assert login("officer.b").get(f"/signing/remote/job/{job.id}").status_code != 200
        _SmartCa.signing_key = "stranger-app"  # the provider answers with a wrong signature
        _SmartCa.leader_does("SIGNED")
        answer = web.get(f"/signing/remote/job/{job.id}").get_json()
        assert answer["state"] == "failed" and "không khớp" in answer["message"], answer
        copy = state_of(db_session, pk)
        assert copy.state is State.awaiting_signature
        assert copy.document.current_sha256 == before


@requires_chromium
def test_the_leaders_page_waits_for_her_phone_then_moves_on(browser, live, app, db_session,
                                                           app_key):
    from selenium.webdriver.common.by import By

    from modules.copies.models import State

    leader = user_named(db_session, "leader.b")
    with signing_with(db_session, leader.office_id, leader.id, app_key.id):
        pk = _request(app, db_session, "b")
        sign_in(browser, live, "leader.b")
        browser.get(f"{live}/copies/request/{pk}")
        click(browser, "#do-request_signature")
        panel = browser.find_element(By.ID, "remote-waiting")
        assert "Phê duyệt trên điện thoại" in panel.text
        assert re.search(r"Thời gian còn lại để phê duyệt: [45]:\d\d", panel.text), panel.text
        assert state_of(db_session, pk).state is State.awaiting_signature
        _SmartCa.leader_does("SIGNED")
        wait_for(browser, lambda d: not d.find_elements(By.ID, "remote-waiting"), 30)
        assert state_of(db_session, pk).state is State.signed
        assert "Đã ký" in browser.find_element(By.TAG_NAME, "main").text
