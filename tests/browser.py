"""Driving Debian's Chromium from the tests: the live app on a free port, a headless
browser that downloads into the test's folder, and the few moves every browser test makes
(sign in, click and wait for the next page, screenshot for the user guide)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.servers import free_port

requires_chromium = pytest.mark.skipif(not shutil.which("chromedriver"),
                                       reason="chromium-driver is installed by `make test`")


@pytest.fixture(scope="module")
def live(app):
    """The test app served over HTTP on a free port (SQLite and PostgreSQL alike), warmed
    up as a server process is when it starts."""
    from app import warm_up

    warm_up(app)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=vi", "--disable-background-networking",
                # the signing plugin's own localhost certificate (the office trusts it once)
                "--ignore-certificate-errors"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "plugins.always_open_pdf_externally": True})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.implicitly_wait(5)
    driver.downloads = downloads
    yield driver
    driver.quit()


#: The page's own submit button (the navigation bar's logout is a form too).
CONTENT_SUBMIT = "form:not(#logout-form) [type=submit]"


def sign_in(driver, live, username, password="saoy-demo"):
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{live}/login/")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, CONTENT_SUBMIT).click()
    wait_for(driver, lambda d: "/login" not in d.current_url)


def wait_for(driver, condition, seconds: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(condition)


def click(driver, css):
    """Click and wait for the next page (every button here submits a form)."""
    from selenium.webdriver.common.by import By

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    wait_for(driver, lambda d: _stale(old))


def confirm_click(driver, css) -> None:
    """Click a button that asks "Xác nhận: …?" first (Ký số does), say yes, wait for the
    next page."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()

    def asked(d) -> bool:
        try:
            d.switch_to.alert  # noqa: B018 - raises while no dialog is open
            return True
        except NoAlertPresentException:
            return False

    wait_for(driver, asked)
    driver.switch_to.alert.accept()
    wait_for(driver, lambda d: _stale(old))


def timed_click(driver, css, confirm: bool = False) -> float:
    """``click`` (``confirm_click``), and the seconds from pressing the button to the next
    page loaded (the POST, its redirect and the page), as the browser's navigation timing
    reports them."""
    (confirm_click if confirm else click)(driver, css)
    wait_for(driver, lambda d: d.execute_script(
        "var n = performance.getEntriesByType('navigation')[0];"
        "return document.readyState === 'complete' && n && n.loadEventEnd > 0;"))
    return driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].loadEventEnd;") / 1000


def _stale(element) -> bool:
    """Whether the page that held ``element`` has gone. Chromium answers a reference into a
    document it is replacing (a cross-origin redirect mid-navigation) with an "unknown
    error … does not belong to the document" rather than a stale reference: that is the
    same news."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.tag_name  # noqa: B018 - raises once the page has changed
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error) or "No node with given id" in str(error):
            return True
        raise


#: Screenshots the tests take; the user guide (docs/guide/) shows these very files.
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "guide" / "screenshots"


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


