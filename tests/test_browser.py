"""The product tried as people use it, in Debian's Chromium: a citizen registers and
books; officer, leader and clerk take a walk-in copy to delivery; the citizen
downloads it and the file validates (pyHanko and pdfsig)."""
from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import pytest
from pypdf import PdfReader
from werkzeug.serving import make_server

from tests.browser import (
    CONTENT_SUBMIT,
    _stale,
    click,
    confirm_click,
    requires_chromium,
    screenshot,
    sign_in,
    timed_click,
    wait_for,
)
from tests.pdfs import pdfsig, sized_scan_pdf
from tests.servers import free_port

pytestmark = requires_chromium


def test_citizen_registers_and_books_and_officer_reschedules(browser, live, app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    identity = f"0792{int(time.time()) % 100:02d}{int(time.time() * 1000) % 1000000:06d}"
    browser.get(f"{live}/citizen/register")
    for field, value in (("full_name", "Võ Thị Thu"), ("identity_number", identity),
                         ("phone", "+84 903 123 456"), ("email", f"thu{identity}@example.vn"),
                         ("password", "mat-khau-123"), ("password_again", "mat-khau-123")):
        browser.find_element(By.ID, field).send_keys(value)
    click(browser, CONTENT_SUBMIT)
    assert "/login" in browser.current_url
    sign_in(browser, live, identity, "mat-khau-123")

    browser.get(f"{live}/appointments/book")
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.NAME, "q").send_keys("Sài Gòn\n")
    wait_for(browser, lambda d: _stale(old))
    browser.find_element(By.PARTIAL_LINK_TEXT, "UBND Phường Sài Gòn").click()
    assert browser.find_element(By.ID, "documents").get_attribute("value") == "1"
    click(browser, "#confirm [type=submit]")
    code = browser.find_element(By.ID, "appointment-code").text
    when = (browser.find_element(By.ID, "appointment-time").text,
            browser.find_element(By.ID, "appointment-date").text)
    assert len(code) == 9 and "Đặt lịch hẹn thành công" in browser.page_source

    sign_in(browser, live, "officer.b")
    browser.get(f"{live}/pendingappointments/list/")
    assert code not in browser.page_source
    sign_in(browser, live, "officer.a")
    browser.get(f"{live}/pendingappointments/list/?_flt_0_code={code}")
    assert code in browser.page_source
    link = browser.find_element(By.XPATH, f"//tr[contains(., '{code}')]//a[contains(@href, "
                                          "'/pendingappointments/show/')]").get_attribute("href")
    pk = link.rstrip("/").split("/")[-1]
    browser.get(f"{live}/pendingappointments/change/reschedule/{pk}")
    day = Select(browser.find_element(By.ID, "day"))
    day.select_by_index(1)  # a date, then one of its times
    new_date = day.first_selected_option.text.split(" ")[0]
    choice = next(o for o in Select(browser.find_element(By.ID, "start")).options
                  if o.is_enabled())
    new_time = choice.text.split(" ")[0]
    Select(browser.find_element(By.ID, "start")).select_by_value(choice.get_attribute("value"))
    browser.find_element(By.ID, "reason").send_keys("Cán bộ tiếp nhận đi tập huấn")
    click(browser, CONTENT_SUBMIT)
    assert "alert-success" in browser.page_source

    from app.notifications.dispatcher import dispatcher_for_app

    dispatcher_for_app(app).drain()  # every due message, as `make demo` does every few seconds
    sign_in(browser, live, identity, "mat-khau-123")
    browser.get(f"{live}/appointments/{pk}")
    shown = (browser.find_element(By.ID, "appointment-time").text,
             browser.find_element(By.ID, "appointment-date").text)
    assert shown == (new_time, new_date) and shown != when
    browser.get(f"{live}/inbox/")
    assert "Cán bộ tiếp nhận đi tập huấn" in browser.page_source


def test_walk_in_copy_signed_sealed_delivered_and_downloaded(browser, live, app, tmp_path,
                                                             capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from modules.signing.services import validate_bytes

    scan = tmp_path / "giay-khai-sinh.pdf"
    scan.write_bytes(sized_scan_pdf(2**20))  # a 1 MB colour scan
    pages = len(PdfReader(str(scan)).pages)
    fee = 2000 * min(pages, 2) + 1000 * max(pages - 2, 0)
    sign_in(browser, live, "officer.a")
    browser.get(f"{live}/copies/intake")
    browser.find_element(By.ID, "identity_number").send_keys("079203001234")
    browser.find_element(By.ID, "scan").send_keys(str(scan))
    click(browser, "#submit-for-signature")
    assert "/copies/request/" in browser.current_url, browser.page_source[:3000]
    pk = browser.current_url.rstrip("/").split("/")[-1]
    assert f"{fee:,} đ".replace(",", ".") in browser.page_source
    browser.find_element(By.NAME, "receipt").send_keys("BL-2026-0001")
    click(browser, "form[action$='/do/pay'] button")

    sign_in(browser, live, "leader.a")
    browser.get(f"{live}/copies-to-sign/list/")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/copies/request/{pk}']").click()
    signing = timed_click(browser, "#do-sign", confirm=True)
    assert browser.find_element(By.ID, "request-state").text == "Đã ký"
    click(browser, "#do-forward")
    assert browser.find_element(By.ID, "request-state").text == "Chờ đóng dấu"

    sign_in(browser, live, "clerk.a")
    browser.get(f"{live}/copies-to-seal/list/")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/copies/request/{pk}']").click()
    Select(browser.find_element(By.NAME, "register_id")).select_by_index(0)
    sealing = timed_click(browser, "#do-seal")
    number = browser.find_element(By.ID, "request-number").text.split(" ")[0]
    with capsys.disabled():  # measured and shown; the goal is asserted by bench/ only
        print(f"\n  browser, {scan.stat().st_size / 2**20:.1f} MB scan: “Ký số” answered in "
              f"{signing:.2f} s, “Cấp số và đóng dấu” in {sealing:.2f} s")
    click(browser, "#do-deliver")
    assert browser.find_element(By.ID, "request-state").text == "Đã trả kết quả"

    sign_in(browser, live, "citizen")
    browser.get(f"{live}/mycopies/")
    assert number in browser.find_element(By.ID, "my-documents").text
    browser.find_element(By.XPATH, f"//a[@href='/mycopies/{pk}']").click()
    browser.find_element(By.ID, "download").click()  # a download: the page stays
    deadline = time.time() + 20
    files: list[Path] = []
    while time.time() < deadline and not files:
        files = [p for p in browser.downloads.glob("*.pdf")]
        time.sleep(0.2)
    assert files, "the PDF was not downloaded"
    data = files[0].read_bytes()
    with app.app_context():
        report = validate_bytes(data)
    assert report.valid and {s.role for s in report.signatures} == {"leader", "seal"}
    out = pdfsig(app, tmp_path, data)
    assert out.count("Signature is Valid.") == 2 and out.count("Certificate is Trusted.") == 2


def test_leader_signs_several_requests_at_once_with_progress(browser, live, app, db_session):
    """Select rows in the queue, one confirmation, each signed separately, progress shown."""
    from selenium.webdriver.common.by import By

    from app.offices.services import offered_document_types
    from modules.copies.models import CopyRequest, State
    from tests.test_copies import _submitted

    doc_type = offered_document_types(db_session, _office_a(db_session))[0]
    ids = [_submitted(app, db_session, doc_type) for _ in range(3)]
    sign_in(browser, live, "leader.a")
    browser.get(f"{live}/copies-to-sign/list/?psize_AwaitingSignatureView=100")
    for pk in ids:
        browser.find_element(By.CSS_SELECTOR, f"input.action_check[value='{pk}']").click()
    browser.find_element(By.XPATH, "//*[contains(@class,'dropdown-toggle')][contains(., "
                                   "'Thao tác')]").click()
    browser.find_element(By.CSS_SELECTOR, "a.sign_menu_item").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "modal-confirm-ok").is_displayed())
    click(browser, "#modal-confirm-ok")
    assert "/copies/bulk-sign" in browser.current_url
    browser.find_element(By.ID, "bulk-start").click()  # asked once, in the list
    wait_for(browser, lambda d: d.find_element(By.ID, "bulk-progress").text == "3 / 3", 60)
    statuses = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#bulk-items .status")]
    assert statuses == ["đã ký"] * 3, statuses
    db_session.expire_all()
    assert all(db_session.get(CopyRequest, pk).state is State.signed for pk in ids)


def _office_a(session) -> int:
    from sqlalchemy import select

    from app.demo import OFFICE_A
    from app.offices.models import Office

    return session.scalars(select(Office.id).where(Office.code == OFFICE_A)).one()


def test_leader_drags_and_resizes_the_attestation_inside_the_page(browser, live, app,
                                                                  db_session, tmp_path):
    """Page 1 chosen: the block appears inside the page; dragged far past the left edge it
    stops at the edge, and resized it keeps at least its minimum size; the signed copy has
    the block there (no page added) with the leader's name under the title."""
    import subprocess

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from app.offices.services import offered_document_types
    from modules.copies.models import CopyRequest, State
    from modules.signing.pdf import BLOCK_MIN_HEIGHT, BLOCK_MIN_WIDTH
    from modules.signing.services import read_current
    from tests.test_copies import _submitted

    doc_type = offered_document_types(db_session, _office_a(db_session))[0]
    pk = _submitted(app, db_session, doc_type)
    sign_in(browser, live, "leader.a")
    browser.get(f"{live}/copies/request/{pk}")
    summary = browser.find_element(By.CSS_SELECTOR, "#placement summary")
    assert summary.find_elements(By.CSS_SELECTOR, "i.fa-caret-right")  # looks openable
    summary.click()
    field = browser.find_element(By.ID, "place-page")
    field.send_keys("1")
    field.send_keys("\t")  # change event: the page preview loads
    mark = browser.find_element(By.ID, "place-mark")
    wait_for(browser, lambda d: mark.is_displayed())
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", mark)

    def rect():
        return [float(v) for v in browser.find_element(By.ID, "place-rect")
                .get_attribute("value").split(",")]

    x1, y1, x2, y2 = rect()
    assert (x2 - x1, y2 - y1) == (BLOCK_MIN_WIDTH, BLOCK_MIN_HEIGHT) and x1 > 100 and y1 < 100
    centre = browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return r.left + r.width / 2;", mark)
    # to the window's left edge, past the page's: the block stops at the page's edge
    ActionChains(browser).drag_and_drop_by_offset(mark, 2 - int(centre), -150).perform()
    x1, y1, x2, y2 = rect()
    assert x1 == 0 and y1 > 100  # stopped at the left edge, moved up
    handle = browser.find_element(By.ID, "place-handle")
    top = browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return r.top + r.height / 2;", handle)
    # up to the window's top: far more than the block's height, which stays the minimum
    ActionChains(browser).drag_and_drop_by_offset(handle, 40, 2 - int(top)).perform()
    x1, y1, x2, y2 = rect()
    assert x2 - x1 > BLOCK_MIN_WIDTH and y2 - y1 == BLOCK_MIN_HEIGHT  # never below the minimum
    assert 0 <= x1 and x2 <= 596 and 0 <= y1 and y2 <= 842  # inside the A4 page
    screenshot(browser, "leader-place-attestation")
    confirm_click(browser, "#do-sign")
    db_session.expire_all()
    copy = db_session.get(CopyRequest, pk)
    assert copy.state is State.signed
    with app.app_context():
        signed = read_current(copy.document)
    reader = PdfReader(io.BytesIO(signed))
    assert len(reader.pages) == copy.pages  # on page 1, not a new page
    widgets = [a.get_object() for a in reader.pages[0].get("/Annots", [])]
    rects = [[float(v) for v in w["/Rect"]] for w in widgets if w.get("/FT") == "/Sig"
             or w.get("/Parent", {}).get("/FT") == "/Sig"]
    assert rects and all(y1 - 1 <= r[1] and r[3] <= y2 + 1 for r in rects)
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(path), "-"],
                          capture_output=True, text=True).stdout
    assert "Phó Chủ tịch" in text and "Trần Thị Bình" in text.split("Phó Chủ tịch", 1)[1]


# --- sign-in through a national identity provider (OpenID Connect, real provider) -------

@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory):
    """panva's oidc-provider (npm, OpenID Certified) on loopback, installed by `make test`."""
    import json
    import os
    import subprocess
    import urllib.request

    node_dir = Path(os.environ.get("SAOY_TEST_OIDC_DIR")
                    or Path(__file__).resolve().parent.parent / ".cache" / "oidc")
    if not (node_dir / "node_modules" / "oidc-provider").is_dir() or not shutil.which("node"):
        pytest.skip("oidc-provider is installed by `make test` (npm)")
    script = node_dir / "provider.mjs"  # beside its node_modules, so the import resolves
    script.write_text((Path(__file__).parent / "oidc" / "provider.mjs").read_text())
    port, app_port = free_port(), free_port()
    accounts = {"hoa": {"name": "Đỗ Thị Hoa", "identity_number": "079196004321",
                        "phone_number": "0903111222"}}
    env = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENT_ID": "saoy-test",
           "OIDC_CLIENT_SECRET": "saoy-test-secret", "OIDC_ACCOUNTS": json.dumps(accounts),
           "OIDC_REDIRECT_URI": f"http://127.0.0.1:{app_port}/login/provider/callback"}
    process = subprocess.Popen(["node", str(script)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2)
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"oidc-provider did not start: {process.stdout.read()!r}")
            time.sleep(0.2)
    yield {"issuer": issuer, "app_port": app_port, "identity": "079196004321"}
    process.terminate()
    process.wait(timeout=10)


def test_citizen_signs_in_with_the_identity_provider_and_is_verified(
        browser, identity_provider, tmp_path_factory):
    """Authorisation code + PKCE against the real provider: the identity-number claim
    maps to the account (here one an impostor registered first), which becomes verified;
    the impostor's password no longer opens it."""
    from selenium.webdriver.common.by import By
    from sqlalchemy import select

    from app.citizens.models import Citizen
    from app.citizens.services import Registration, register_citizen
    from app.extensions import db
    from app.security import CITIZEN_ROLE
    from app.transactions import atomic
    from tests.conftest import build_app, migrate_and_seed

    data = tmp_path_factory.mktemp("oidc-app")
    app = build_app(f"sqlite:///{data / 'oidc.db'}", data,
                    OIDC_ISSUER=identity_provider["issuer"], OIDC_CLIENT_ID="saoy-test",
                    OIDC_CLIENT_SECRET="saoy-test-secret", OIDC_NAME="VNeID")
    migrate_and_seed(app)
    identity = identity_provider["identity"]
    with app.app_context(), atomic(db.session):
        register_citizen(db.session, Registration("Kẻ Mạo Danh", identity, "0912999888",
                                                  "gia@example.vn", "mat-khau-gia"),
                         app.appbuilder.sm.find_role(CITIZEN_ROLE))
    port = identity_provider["app_port"]
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = f"http://127.0.0.1:{port}"
    try:
        browser.get(f"{live}/login/")
        assert "VNeID" in browser.find_element(By.ID, "login-provider").text
        browser.find_element(By.ID, "login-provider").click()
        wait_for(browser, lambda d: d.find_elements(By.NAME, "login"))
        assert browser.current_url.startswith(identity_provider["issuer"])
        browser.find_element(By.NAME, "login").send_keys("hoa")
        browser.find_element(By.NAME, "password").send_keys("any")
        click(browser, CONTENT_SUBMIT)
        if not browser.current_url.startswith(live):  # the provider's consent page
            click(browser, CONTENT_SUBMIT)
        wait_for(browser, lambda d: d.current_url.startswith(live))
        assert "/login" not in browser.current_url
        browser.get(f"{live}/users/userinfo/")
        assert "Đỗ Thị Hoa" in browser.page_source
        with app.app_context():
            citizen = db.session.scalars(select(Citizen).where(
                Citizen.identity_number == identity)).one()
            assert citizen.verified and citizen.verified_via == "oidc"
            assert citizen.full_name == "Đỗ Thị Hoa" and citizen.phone == "84903111222"
        old = app.test_client().post("/login/", data={"username": identity,
                                                      "password": "mat-khau-gia"})
        assert "/login" in old.headers.get("Location", "/login")  # refused
    finally:
        server.shutdown()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- supervision: the dashboard's charts draw in Chromium ---------------------------------

def test_dashboard_draws_its_charts_for_the_supervisor(browser, live, world):
    from selenium.webdriver.common.by import By

    sign_in(browser, live, "supervisor")
    browser.get(f"{live}/dashboard/?from=2021-03-01&to=2021-03-31")
    wait_for(browser, lambda d: d.execute_script("return window.saoyChartsDrawn") == 5)
    painted = browser.execute_script("""
        return Array.from(document.querySelectorAll('canvas[data-kind]')).map(function (c) {
          var data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;
          for (var i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
          return n; });""")
    assert len(painted) == 5 and all(n > 500 for n in painted), painted
    # the long reasons of refusal go on several lines instead of being cut off
    reasons = browser.execute_script(
        "return document.getElementById('chart-returns').chart.data.labels")
    assert any(isinstance(label, list) for label in reasons), reasons
    assert all(len(line) <= 48 for label in reasons for line in
               (label if isinstance(label, list) else [label])), reasons
    assert "Bảng điều khiển" in browser.find_element(By.TAG_NAME, "h2").text
    assert screenshot(browser, "dashboard").stat().st_size > 20_000
