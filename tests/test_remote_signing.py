"""Remote signing through the CSC API (#30): a real CSC server — certomancer-csc-dummy, the
one pyHanko's own tests run — on loopback, over a test PKI whose OCSP answers; a counting
proxy in front of it sees each call as the provider would (one authorisation for a
batch).  Leader B binds the credential that names her, the administrator approves it,
she signs one copy and a batch of 10; the copies validate (pyHanko, pdfsig) as hers."""
from __future__ import annotations

import collections
import http.server
import json
import subprocess
import sys
import threading

import pytest
import requests
from sqlalchemy import select

from app.transactions import atomic
from modules.signing.served_pki import Holder, ServedPki, wait_listening
from tests import revocation_pki
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
    ], revocation_pki.VALIDITY)
    pki = revocation_pki.TestPki(made.folder, made.url)
    pki.start()
    yield pki
    pki.stop()


class _Counting(http.server.BaseHTTPRequestHandler):
    """Forwards every POST to the CSC server and counts it by path; with ``pin`` set it
    answers an authorisation without that PIN as a provider does (401) — the dummy
    server itself checks no PIN."""

    upstream = ""
    pin: str | None = None
    calls: collections.Counter = collections.Counter()
    bodies: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls[self.path] += 1
        asked = json.loads(body or b"{}")
        type(self).bodies.append((self.path, asked))
        if self.path.endswith("/authorize") and self.pin and asked.get("PIN") != self.pin:
            self.send_response(401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        r = requests.post(self.upstream + self.path, data=body, timeout=30,
                          headers={"Content-Type": "application/json"})
        self.send_response(r.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

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
    _Counting.pin = None
    yield csc_server
    _Counting.pin = None


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
    from app.storage import file_store
    from modules.copies.models import State
    from modules.signing.services import validate_bytes

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
        copy = state_of(db_session, pk)
        with app.app_context():
            data = file_store().read_bytes(copy.document.current_sha256)
            report = validate_bytes(data)
        leader_sig = [s for s in report.signatures if s.role == "leader"]
        assert leader_sig and leader_sig[0].valid and leader_sig[0].trusted, report.to_dict()
        assert leader_sig[0].fingerprint == remote_key.fingerprint
    out = pdfsig(app, tmp_path, data,
                 extra_roots=(str(provider_root(app)),))
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
