"""The shared layout, for everyone (issue 29's first part): every page says it is in
Vietnamese, has a valid header, a skip link to its main landmark, a named menu button (the
only way into the menu on a phone), named icon links, and an icon (no 404 per page)."""
from __future__ import annotations

import os
import re

import pytest

from tests.browser import requires_chromium, sign_in

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
AXE_PAGES = {None: ["/login/", "/verify/", "/citizen/register"],
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
