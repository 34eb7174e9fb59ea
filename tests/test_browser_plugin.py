"""The leader's Ký số through the plugin on the leader's computer, in Debian's Chromium:
with a stand-in for the Government Cipher Committee's VGCA Sign Service (the real one is a
Windows program), and with SaoY's own signer — its confirmation page driven by the test,
a SoftHSM token holding the leader's key.  Then the clerk seals and delivers; pyHanko and
pdfsig validate the copy.  A page of another site gets nothing signed."""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.transactions import atomic
from tests.browser import click, requires_chromium, screenshot, sign_in, wait_for
from tests.conftest import user_named
from tests.pdfs import pdfsig
from tests.softhsm import softhsm_lib
from tests.test_copies import _submitted
from tests.vgca_standin import PORT, StandIn, serve

pytestmark = requires_chromium
ROOT = Path(__file__).resolve().parent.parent


def _by():
    from selenium.webdriver.common.by import By

    return By


@pytest.fixture()
def leader_b_token(app, hsm, db_session, monkeypatch):
    """leader.b's key on a SoftHSM token ("agent-token"): the certificate registered as
    leader.b's own token, approved by the administrator; the token's root trusted."""
    from modules.signing import keys
    from modules.signing.models import SigningKey
    from tests.keys import profile_of

    if softhsm_lib() is None:
        pytest.skip("SoftHSM2 is installed by `make test`")
    monkeypatch.setitem(app.config, "TRUST_DIR", hsm["root"])
    leader = user_named(db_session, "leader.b")
    profile = profile_of(db_session, leader.office_id, leader.id)
    saved = profile.key_id
    der = _cert_der(Path(hsm["agent_cert"]))
    with app.test_request_context(), atomic(db_session):
        key = keys.announce_agent_key(db_session, leader, der)
        keys.approve_key(db_session, user_named(db_session, "admin"), key.id)
    yield key
    with atomic(db_session):
        profile_of(db_session, leader.office_id, leader.id).key_id = saved
        db_session.get(SigningKey, key.id).active = False


def _cert_der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def _request_b(app, db_session) -> int:
    from app.offices.services import offered_document_types

    office_id = user_named(db_session, "officer.b").office_id
    return _submitted(app, db_session, offered_document_types(db_session, office_id)[0],
                      officer="officer.b")


def _status(driver) -> str:
    return driver.find_element(_by().ID, "signer-status").text


def _state(driver) -> str:
    return driver.find_element(_by().ID, "request-state").text


def _seal_and_deliver(browser, live, db_session, pk: int) -> None:
    from selenium.webdriver.support.ui import Select

    from modules.registers.models import Register, RegisterStatus

    office_id = user_named(db_session, "clerk.b").office_id
    register = db_session.scalars(select(Register).where(
        Register.office_id == office_id, Register.status == RegisterStatus.open)).first()
    sign_in(browser, live, "clerk.b")
    browser.get(f"{live}/copies/request/{pk}")
    Select(browser.find_element(_by().NAME, "register_id")).select_by_value(str(register.id))
    click(browser, "#do-seal")
    if browser.find_elements(_by().ID, "do-pay"):
        browser.find_element(_by().NAME, "receipt").send_keys("BL-PLUGIN")
        click(browser, "#do-pay")
    click(browser, "#do-deliver")
    assert _state(browser) == "Đã trả kết quả"


def _validates(app, db_session, tmp_path, pk: int) -> None:
    from modules.signing import services
    from tests.test_copies import state_of

    db_session.expire_all()
    doc = state_of(db_session, pk).document
    with app.app_context():
        data = services.read_current(doc)
        report = services.validate_bytes(data, doc)
    assert report.valid and {s.role for s in report.signatures} == {"leader", "seal"}
    leader = next(s for s in report.signatures if s.role == "leader")
    assert leader.signer == "Vũ Thị Giang"
    out = pdfsig(app, tmp_path, data, extra_roots=(app.config["TRUST_DIR"],))
    assert out.count("Signature is Valid.") == 2, out


def _wait_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def test_the_leader_signs_with_the_vgca_plugin(browser, live, app, db_session, hsm,
                                              leader_b_token, tmp_path):
    stop = serve(StandIn(softhsm_lib(), "agent-token", "sign-key"), tmp_path / "tls")
    try:
        pk = _request_b(app, db_session)
        sign_in(browser, live, "leader.b")
        browser.get(f"{live}/copies/request/{pk}")
        screenshot(browser, "leader-4-plugin")
        old = browser.find_element(_by().TAG_NAME, "html")
        browser.find_element(_by().ID, "do-request_signature").click()
        from tests.browser import _stale

        wait_for(browser, lambda d: _stale(old), 60)  # signed: the page reloads
        assert _state(browser) == "Đã ký"
        click(browser, "#do-forward")
        assert _state(browser) == "Chờ đóng dấu"
        _seal_and_deliver(browser, live, db_session, pk)
        _validates(app, db_session, tmp_path, pk)
    finally:
        stop()


def test_without_a_plugin_the_page_says_how_to_get_one(browser, live, app, db_session,
                                                       leader_b_token):
    pk = _request_b(app, db_session)
    sign_in(browser, live, "leader.b")
    browser.get(f"{live}/copies/request/{pk}")
    browser.find_element(_by().ID, "do-request_signature").click()
    wait_for(browser, lambda d: d.find_element(_by().ID, "signer-help").is_displayed(), 20)
    status = browser.find_element(_by().ID, "signer-status").text
    assert "công cụ ký số" in status.lower() or "plugin" in status.lower()
    assert browser.switch_to.active_element.get_attribute("id") == "signer-help"
    browser.find_element(_by().CSS_SELECTOR, "#signer-help a").click()
    wait_for(browser, lambda d: "/signing/plugin" in d.current_url)
    assert "VGCA" in browser.page_source and "saoy_signer.py" in browser.page_source
    assert browser.find_elements(_by().ID, "do-register-token")  # a leader registers here


def test_a_leader_registers_the_tokens_certificate_through_the_plugin(
        browser, live, app, db_session, hsm, tmp_path):
    """The token's certificate, read by the plugin (GetCertInfo), registered for the
    signed-in leader and waiting for the administrator; never the key."""
    from modules.signing.models import SigningKey

    fingerprint = hashlib.sha256(_cert_der(Path(hsm["agent_cert"]))).hexdigest()
    with own_signer(live, hsm, tmp_path):
        sign_in(browser, live, "leader.b")
        browser.get(f"{live}/signing/plugin")
        browser.find_element(_by().ID, "do-register-token").click()
        wait_for(browser, lambda d: d.find_element(_by().ID, "register-status").text, 30)
        said = browser.find_element(_by().ID, "register-status").text
    db_session.expire_all()
    key = db_session.scalars(select(SigningKey).where(
        SigningKey.fingerprint == fingerprint)).one()
    assert key.user_id == user_named(db_session, "leader.b").id
    assert said == ("Chứng thư này đã được duyệt cho bạn: bạn có thể ký." if key.active else
                    "Đã đăng ký: quản trị hệ thống duyệt trước khi bạn ký."), said


@contextlib.contextmanager
def own_signer(live: str, hsm, tmp_path):
    """SaoY's own signer, started as an office installs it (one file), on 8987."""
    env = {**os.environ, "SOFTHSM2_CONF": hsm["SOFTHSM2_CONF"]}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "signer" / "saoy_signer.py"), "--saoy", live,
         "--pkcs11-lib", softhsm_lib(), "--token-label", "agent-token", "--key-label",
         "sign-key", "--port", str(PORT), "--tls-dir", str(tmp_path / "signer-tls"),
         "--no-browser"], env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")),
                     daemon=True).start()
    try:
        _wait_port(PORT)
        yield lines
    finally:
        process.terminate()
        process.wait(10)


def _confirm_url(lines: list[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in lines:
            found = re.search(r"(https://127\.0\.0\.1:\d+/confirm/\S+)", line)
            if found:
                return found.group(1)
        time.sleep(0.2)
    raise TimeoutError(f"the signer showed no confirmation: {lines[-5:]}")


def test_the_leader_signs_with_saoys_own_signer_after_seeing_the_pages(
        browser, live, app, db_session, hsm, leader_b_token, tmp_path):
    from tests.browser import _stale
    from tests.test_copies import state_of

    pk = _request_b(app, db_session)
    with own_signer(live, hsm, tmp_path) as lines:
        sign_in(browser, live, "leader.b")
        browser.get(f"{live}/copies/request/{pk}")
        saoy_tab = browser.current_window_handle
        old = browser.find_element(_by().TAG_NAME, "html")
        browser.find_element(_by().ID, "do-request_signature").click()
        url = _confirm_url(lines)
        browser.switch_to.new_window("tab")
        browser.get(url)
        page = browser.page_source
        assert f"Hồ sơ #{pk}" in page
        db_session.expire_all()
        pages = browser.find_elements(_by().CSS_SELECTOR, ".pages img")
        assert len(pages) == state_of(db_session, pk).pages + 1  # the attestation page too
        sha = browser.find_element(_by().CSS_SELECTOR, "code.sha").text
        assert re.fullmatch(r"[0-9a-f]{64}", sha)
        screenshot(browser, "leader-5-own-signer")
        browser.find_element(_by().ID, "pin").send_keys("123456")
        browser.find_element(_by().ID, "apply").click()
        wait_for(browser, lambda d: d.find_elements(_by().ID, "result"), 60)
        assert "Đã ký 1" in browser.find_element(_by().ID, "result").text
        browser.close()
        browser.switch_to.window(saoy_tab)
        wait_for(browser, lambda d: _stale(old) or "#" in _status(d), 60)
        assert _stale(old), _status(browser)
        assert _state(browser) == "Đã ký"
    job_sha = _prepared_sha(db_session, pk)
    assert sha == job_sha  # what was shown is what was signed


def _prepared_sha(db_session, pk: int) -> str:
    from modules.signing.models import ExternalSigningJob
    from tests.test_copies import state_of

    return db_session.scalars(select(ExternalSigningJob.prepared_sha256).where(
        ExternalSigningJob.document_id == state_of(db_session, pk).document_id,
        ExternalSigningJob.state == "done")).one()


ATTACK = """<!doctype html><html lang="en"><title>waiting</title><script>
var ws = new WebSocket("wss://127.0.0.1:%(port)s/SignApproved");
ws.onopen = function () { ws.send(JSON.stringify({FileUploadHandler: "%(upload)s",
  FileName: "%(download)s", SessionId: "", DocNumber: "x"})); };
ws.onmessage = function (e) { document.title = "answered " + e.data; };
ws.onerror = function () { document.title = "refused"; };
ws.onclose = function () { if (document.title === "waiting") document.title = "closed"; };
</script></html>"""


def test_a_page_of_another_site_gets_nothing_signed(browser, live, app, api, db_session, hsm,
                                                   leader_b_token, tmp_path):
    """The classic plugin hole: any web page the leader visits talks to the local signer.
    SaoY's signer answers only SaoY's own pages: nothing is fetched, shown or signed."""
    from tests.test_copies import state_of

    client, headers = api("leader.b")
    pk = _request_b(app, db_session)
    job = client.post(f"/api/v1/copy/{pk}/request_signature", headers=headers,
                      json={}).get_json()["signing"]
    page = (ATTACK % {"port": PORT, "upload": job["upload_url"],
                      "download": job["download_url"]}).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with own_signer(live, hsm, tmp_path) as lines:
            browser.get(f"http://127.0.0.1:{evil.server_port}/")
            wait_for(browser, lambda d: d.title != "waiting", 20)
            assert browser.title in ("refused", "closed"), browser.title
            time.sleep(1)
            assert not any("/confirm/" in line for line in lines)
    finally:
        evil.shutdown()
    anonymous = app.test_client()  # the link was never used: the signer fetched nothing
    assert anonymous.get("/" + job["download_url"].split("/", 3)[3]).status_code == 200
    assert state_of(db_session, pk).state.value == "awaiting_signature"
