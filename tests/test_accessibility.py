"""The shared layout, for everyone (issue 29's first part): every page says it is in
Vietnamese, has a valid header, a skip link to its main landmark, a named menu button (the
only way into the menu on a phone), named icon links, and an icon (no 404 per page)."""
from __future__ import annotations

import datetime as dt
import os
import re

import pytest

from tests.browser import requires_chromium, sign_in, wait_for

PAGES = {
    None: ["/login/", "/verify/", "/citizen/register"],
    "citizen": ["/mycopies/", "/appointments/mine", "/appointments/book"],
    "officer.a": ["/copies/list/", "/copies/intake"],
    "leader.a": ["/copies-to-sign/list/"],
    "clerk.a": ["/copies-to-seal/list/"],
}


def _pages(client_for):
    for user, paths in PAGES.items():
        client = client_for(user)
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (user, path, r.status_code)
            yield user, path, r.get_data(as_text=True)


@pytest.fixture()
def client_for(app, login):
    return lambda user: login(user) if user else app.test_client()


def test_every_page_has_the_shared_layout_for_everyone(client_for):
    for user, path, html in _pages(client_for):
        where = (user, path)
        assert re.search(r'<html lang="vi">', html), where
        assert 'role="header"' not in html, where  # not an ARIA role: screen readers choke
        assert 'href="#main"' in html and 'id="main"' in html, where
        toggle = re.search(r'<button[^>]*class="navbar-toggle"[^>]*>', html).group(0)
        assert 'aria-label="' in toggle, where
        assert 'rel="icon"' in html and '<meta name="description" content=""' not in html
        if user:  # the bell and the language flag are links with a name
            assert re.search(r'aria-label="(Thông báo|Notifications)[^"]*"', html), where
        assert 'tabindex="-1" href=' not in html, where  # every menu entry reachable


def test_the_icon_and_the_contrast_sheet_are_served(client):
    r = client.get("/static/saoy/favicon.svg")
    assert r.status_code == 200 and b"<svg" in r.data
    page = client.get("/login/").get_data(as_text=True)
    assert "saoy/saoy.css" in page and client.get("/static/saoy/saoy.css").status_code == 200


def test_the_controls_the_issue_found_unlabelled_have_labels(app, login, client, office,
                                                            db_session, doc_type):
    """The booking date, the verify page's file input, the leader's return ground: each
    control has a <label for=…>; the date no longer reloads the page on an arrow key (a
    button shows its times)."""
    from tests.test_copies import _submitted

    def labelled(html: str, control_id: str) -> bool:
        return f'for="{control_id}"' in html and f'id="{control_id}"' in html

    assert labelled(client.get("/verify/").get_data(as_text=True), "verify-file")
    book = login("citizen").get(f"/appointments/book?office_id={office('A').id}")
    html = book.get_data(as_text=True)
    assert labelled(html, "date") and "this.form.submit()" not in html
    pk = _submitted(app, db_session, doc_type)
    detail = login("leader.a").get(f"/copies/request/{pk}").get_data(as_text=True)
    assert labelled(detail, f"ground-{pk}") and labelled(detail, f"return-reason-{pk}")


# --- axe-core in Chromium, desktop and phone ------------------------------------------------

AXE = os.environ.get("SAOY_TEST_AXE", "")
AXE_PAGES = {None: ["/login/", "/verify/", "/citizen/register", "/accessibility/"],
             "citizen": ["/mycopies/", "/appointments/mine", "/appointments/book"],
             "officer.a": ["/copies/list/", "/copies/intake"],
             "leader.a": ["/copies-to-sign/list/"]}
AXE_RUN = ("const done = arguments[arguments.length - 1];"
           "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})"
           ".then(r => done(r.violations.filter(v => ['critical', 'serious']"
           ".includes(v.impact)).map(v => [v.id, v.nodes.map(n => n.target.join(' '))])))")


@requires_chromium
@pytest.mark.skipif(not os.path.exists(AXE), reason="axe-core is installed by `make test`")
def test_axe_finds_no_serious_violation_at_desktop_and_phone_width(browser, live, office):
    """axe-core 4.10 (WCAG 2.0/2.1 A and AA) on the pages of every role, at 1280 px and at
    360 px: no critical or serious violation, and no page wider than the phone."""
    script = open(AXE, encoding="utf-8").read()
    found = []
    for width in (1280, 360):
        browser.set_window_size(width, 900)
        for user, paths in AXE_PAGES.items():
            if user:
                sign_in(browser, live, user)
            else:
                browser.delete_all_cookies()
            for path in paths:
                if path == "/appointments/book":
                    path += f"?office_id={office('A').id}"
                browser.get(live + path)
                browser.execute_script(script)
                violations = browser.execute_async_script(AXE_RUN)
                wide = browser.execute_script("return document.documentElement.scrollWidth")
                if violations or (width == 360 and wide > 360):
                    found.append((width, user, path, wide, violations))
    assert not found, found


# --- the statement, the error summary, the phone's cards, the keyboard ----------------------

def test_the_accessibility_statement_is_public_and_linked_from_every_page(client, app):
    page = client.get("/accessibility/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Tuyên bố về khả năng tiếp cận" in html and "(WCAG) 2.1, mức AA" in html
    assert app.config["ACCESSIBILITY_CONTACT"] in html and "26/2020/TT-BTTTT" in html
    for path in ("/login/", "/verify/"):
        assert 'href="/accessibility/"' in client.get(path).get_data(as_text=True)


def test_a_form_with_errors_says_what_is_wrong_first_and_ties_each_error_to_its_field(
        login):
    """GOV.UK's error summary: a box at the top (an alert, focused when the page opens)
    whose items link to their fields; each field described by its error and invalid."""
    html = login("clerk.a").post("/registerview/add", data={
        "name": "", "book_number": "01", "type_symbol": "SCTĐT/BS", "year": "",
        "start_number": "1", "opening_date": "31/02/2026"}).get_data(as_text=True)
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert 'role="alert"' in html.split('id="error-summary"', 1)[0][-200:] + summary
    assert 'href="#name"' in summary and 'href="#opening_date"' in summary
    field = re.search(r'<input[^>]*id="name"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and "name-error" in field
    assert 'id="name-error"' in html


def test_the_citizens_registration_form_has_the_same_error_summary(client):
    html = client.post("/citizen/register", data={
        "full_name": "Lê Thị Hồng", "identity_number": "12345", "phone": "0912345678",
        "password": "mat-khau-123", "password_again": "mat-khau-123"}).get_data(as_text=True)
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert "Có lỗi cần sửa" in summary and 'href="#identity_number"' in summary
    assert 'href="#full_name"' not in summary
    field = re.search(r'<input[^>]*id="identity_number"[^>]*>', html, re.S).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="identity_number-error"' in field


@requires_chromium
def test_a_citizens_lists_are_cards_on_a_phone_with_big_enough_buttons(browser, live, app,
                                                                        login, db_session,
                                                                        doc_type,
                                                                        register_of):
    from tests.test_prints_and_queues import _deliver

    _deliver(login, db_session, doc_type, register_of("A"))
    sign_in(browser, live, "citizen")
    browser.set_window_size(360, 800)
    browser.get(f"{live}/mycopies/")
    sizes = browser.execute_script("""
        return Array.from(document.querySelectorAll('#my-documents .btn')).map(function (b) {
          var r = b.getBoundingClientRect();
          return [r.width, r.height, r.right <= window.innerWidth]; });""")
    assert sizes and all(w >= 44 and h >= 44 and inside for w, h, inside in sizes), sizes
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shown = browser.execute_script(
        "return getComputedStyle(document.querySelector('#my-documents thead')).position")
    assert shown == "absolute"  # the headings ride along each value instead


def _tab_to(browser, test: str, limit: int = 120):
    """Press Tab until ``test`` (JS, about ``el``: the focused element) holds."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(limit):
        if browser.execute_script(f"var el = document.activeElement; return !!({test});"):
            return
        ActionChains(browser).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {test}")


def _keys(browser, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(browser)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


@requires_chromium
def test_booking_with_the_keyboard_alone(browser, live, db_session, office):
    from selenium.webdriver.common.keys import Keys

    from app.timeutil import to_local
    from modules.appointments.models import Appointment
    from tests.conftest import user_named

    sign_in(browser, live, "citizen")
    browser.get(f"{live}/appointments/book")
    _tab_to(browser, "el.matches('a.list-group-item') && el.textContent.includes('Sài Gòn')")
    _keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements("id", "date"))
    _tab_to(browser, "el.id === 'date'")
    url = browser.current_url
    _keys(browser, Keys.ARROW_DOWN)  # another day: no reload, the focus stays
    assert browser.current_url == url
    assert browser.execute_script("return document.activeElement.id") == "date"
    chosen = browser.execute_script("return document.getElementById('date').value")
    _tab_to(browser, "el.type === 'submit' && el.form && el.form.id === 'choose'")
    _keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: f"date={chosen}" in d.current_url)
    _tab_to(browser, "el.name === 'start'")
    _keys(browser, Keys.ARROW_RIGHT)  # the second time of the day
    start = browser.execute_script("return document.activeElement.value")
    _tab_to(browser, "el.id === 'book-this-time'")
    _keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: "booked=1" in d.current_url)
    db_session.expire_all()
    citizen = user_named(db_session, "citizen")
    booked = max((a for a in db_session.query(Appointment).filter(
        Appointment.office_id == office("A").id) if a.citizen.user_id == citizen.id),
        key=lambda a: a.id)
    assert to_local(booked.start) == dt.datetime.fromisoformat(start)
    assert start.startswith(chosen)


@requires_chromium
def test_placing_the_attestation_with_the_keyboard_alone(browser, live, app, db_session):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from app.offices.services import offered_document_types
    from modules.copies.models import CopyRequest, State
    from modules.signing.pdf import BLOCK_MIN_WIDTH
    from tests.test_browser import _office_a
    from tests.test_copies import _submitted

    doc_type = offered_document_types(db_session, _office_a(db_session))[0]
    pk = _submitted(app, db_session, doc_type)
    sign_in(browser, live, "leader.a")
    browser.get(f"{live}/copies/request/{pk}")
    _tab_to(browser, "el.matches('#placement summary')")
    _keys(browser, Keys.ENTER)  # opens the placement
    _tab_to(browser, "el.id === 'place-page'")
    _keys(browser, "1", Keys.TAB)  # the page's preview loads; focus moves on
    wait_for(browser, lambda d: d.find_element("id", "place-mark").is_displayed())
    _tab_to(browser, "el.id === 'place-mark'")

    def rect():
        return [float(v) for v in browser.execute_script(
            "return document.getElementById('place-rect').value").split(",")]

    def where():
        return browser.execute_script("return document.getElementById('place-where').textContent")

    x1, y1, x2, y2 = rect()
    assert "cm" in where() and "Trang 1" in where()
    _keys(browser, *[Keys.ARROW_LEFT] * 4)  # 4 × 5 mm to the left
    assert abs(rect()[0] - (x1 - 4 * 72 / 25.4 * 5)) <= 1
    _keys(browser, *[Keys.ARROW_UP] * 2)
    assert abs(rect()[1] - (y1 + 2 * 72 / 25.4 * 5)) <= 1
    before = where()
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(*[Keys.ARROW_RIGHT] * 3).key_up(
        Keys.SHIFT).perform()  # wider, not moved
    nx1, ny1, nx2, ny2 = rect()
    assert nx2 - nx1 > BLOCK_MIN_WIDTH and where() != before and "rộng" in where()
    placed = rect()
    _tab_to(browser, "el.id === 'do-sign'")
    _keys(browser, Keys.ENTER)
    wait_for(browser, lambda d: _alert(d))
    browser.switch_to.alert.accept()
    wait_for(browser, lambda d: "/copies/request/" in d.current_url and not _alert(d)
             and d.execute_script("return document.readyState") == "complete")
    db_session.expire_all()
    wait_for(browser, lambda d: db_session.get(CopyRequest, pk).state is State.signed
             or db_session.expire_all())
    assert placed[2] - placed[0] > BLOCK_MIN_WIDTH


def _alert(driver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
        return True
    except Exception:  # noqa: BLE001 - selenium's NoAlertPresentException
        return False


@requires_chromium
@pytest.mark.skipif(not os.path.exists(AXE), reason="axe-core is installed by `make test`")
def test_axe_on_every_page_of_the_crawl_at_both_widths(app, api, browser, live, login,
                                                       db_session, doc_type, register_of):
    """The page crawl's pages (every role's), each kind of page once (a list, a record's
    show, edit and request page), in Chromium at 1280 and 360 px: no critical or serious
    violation.  The pages are the same on both databases: checked on the first."""
    from tests.test_walkthrough import CRAWLED_ROLES, _delivered, crawl

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the same pages were checked on SQLite")
    from modules.copies.models import CopyRequest

    pk = _delivered(app, api, db_session, doc_type, register_of,
                    identity_number="079203001234")
    verified = db_session.get(CopyRequest, pk).document.verify_code
    script = open(AXE, encoding="utf-8").read()
    kinds, found, checked = set(), [], 0
    for username in (None, *CRAWLED_ROLES):
        pages = [f"/verify/{verified}", "/accessibility/", "/login/"] if username is None \
            else []
        for path, _html in crawl(app, login(username)) if username else ():
            kind = re.sub(r"\d+", "N", path)
            if kind not in kinds:
                kinds.add(kind)
                pages.append(path)
        if username:
            sign_in(browser, live, username)
        for width in (1280, 360):
            browser.set_window_size(width, 900)
            for path in pages:
                browser.get(live + path)
                browser.execute_script(script)
                violations = browser.execute_async_script(AXE_RUN)
                lang, wide = browser.execute_script(
                    "return [document.documentElement.lang,"
                    " document.documentElement.scrollWidth]")
                checked += 1
                if violations or lang != "vi" or (width == 360 and wide > 360):
                    found.append((width, username, path, lang, wide, violations))
    assert checked > 60 and not found, "\n".join(map(str, found))
