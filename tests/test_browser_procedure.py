"""The whole procedure through the pages, in Debian's Chromium, as the seed tells it: a
citizen books, the officer reschedules and takes the request from the appointment, the
leader returns it and signs it once resubmitted, the clerk opens a register, numbers and
seals; the copy reaches the citizen's account, a walk-in's copy (placed by dragging)
reaches an e-mail box over real SMTP; both files validate with pyHanko and pdfsig, the QR
page says genuine, and office B sees nothing of it.

Each step saves a screenshot into docs/guide/screenshots/: the user guide shows these very
files, so it always shows the product as it is."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from tests.browser import (
    CONTENT_SUBMIT,
    _stale,
    click,
    confirm_click,
    requires_chromium,
    screenshot,
    sign_in,
    wait_for,
)
from tests.pdfs import pdfsig, scan_pdf, text_page_pdf
from tests.servers import SmtpServer

pytestmark = requires_chromium


def _by():
    from selenium.webdriver.common.by import By

    return By


def _accept_confirm_and_wait(driver, css: str) -> None:
    """A button whose click asks "Xác nhận: …?" first (a reason is part of the record)."""
    old = driver.find_element(_by().TAG_NAME, "html")
    driver.find_element(_by().CSS_SELECTOR, css).click()
    wait_for(driver, lambda d: _alert(d))
    driver.switch_to.alert.accept()
    wait_for(driver, lambda d: _stale(old))


def _alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 - raises while no dialog is open
        return True
    except NoAlertPresentException:
        return False


def _state(driver) -> str:
    return driver.find_element(_by().ID, "request-state").text


def _book_number_free_in(db_session, office_id: int, year: int) -> str:
    from modules.registers.models import Register

    taken = set(db_session.scalars(select(Register.book_number).where(
        Register.office_id == office_id, Register.year == year)))
    return next(f"{n:02d}/{year}" for n in range(2, 100) if f"{n:02d}/{year}" not in taken)


def _validates(app, tmp_path, data: bytes) -> None:
    from modules.signing.services import validate_bytes

    with app.app_context():
        report = validate_bytes(data)
    assert report.valid and {s.role for s in report.signatures} == {"leader", "seal"}
    out = pdfsig(app, tmp_path, data)
    assert out.count("Signature is Valid.") == 2 and out.count("Certificate is Trusted.") == 2


def test_the_procedure_through_the_pages(browser, live, app, db_session, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from app.notifications.dispatcher import dispatcher_for_app
    from modules.appointments.services import today_vn
    from modules.copies.models import CopyRequest
    from modules.registers.models import Register
    from tests.test_browser import _office_a

    By = _by()  # noqa: N806 - selenium's name
    identity = "079203001234"  # the demo citizen, verified at the counter
    smtp = SmtpServer()
    try:
        # 1. The citizen books two documents at office A.
        sign_in(browser, live, "citizen")
        browser.get(f"{live}/appointments/book")
        browser.find_element(By.PARTIAL_LINK_TEXT, "UBND Phường Sài Gòn").click()
        documents = browser.find_element(By.ID, "documents")
        documents.clear()
        documents.send_keys("2")
        screenshot(browser, "citizen-1-book")
        click(browser, "#confirm [type=submit]")
        code = browser.find_element(By.ID, "appointment-code").text
        first_time = browser.find_element(By.ID, "appointment-time").text
        screenshot(browser, "citizen-2-booked")

        # 2. The officer moves it: a date, then a time of that date.
        sign_in(browser, live, "officer.a")
        browser.get(f"{live}/pendingappointments/list/?_flt_0_code={code}")
        row = browser.find_element(By.XPATH, f"//tr[contains(., '{code}')]")
        row.find_element(By.PARTIAL_LINK_TEXT, "Dời lịch").click()
        day = Select(browser.find_element(By.ID, "day"))
        assert len(day.options) <= 31
        day.select_by_index(1)
        times = [o for o in Select(browser.find_element(By.ID, "start")).options
                 if o.is_enabled()]
        assert times and all(o.get_attribute("data-day") == day.first_selected_option
                             .get_attribute("value") for o in times)
        new_start = times[-1].get_attribute("value")
        Select(browser.find_element(By.ID, "start")).select_by_value(new_start)
        browser.find_element(By.ID, "reason").send_keys("Cán bộ tiếp nhận đi tập huấn")
        screenshot(browser, "officer-1-reschedule")
        click(browser, CONTENT_SUBMIT)
        assert "alert-success" in browser.page_source

        # 3. The citizen comes: "Xử lý" opens the intake filled from the appointment.
        browser.get(f"{live}/pendingappointments/list/?_flt_0_code={code}")
        row = browser.find_element(By.XPATH, f"//tr[contains(., '{code}')]")
        old = browser.find_element(By.TAG_NAME, "html")
        row.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(browser, lambda d: _stale(old))
        assert "/copies/intake" in browser.current_url and code in browser.page_source
        assert browser.find_element(By.ID, "copies").get_attribute("value") == "2"
        assert browser.find_element(By.ID, "identity_number").get_attribute("value") == identity
        browser.find_element(By.ID, "find-account").click()
        wait_for(browser, lambda d: "Nguyễn Thị Mai" in d.find_element(By.ID,
                                                                          "account-found").text)
        wrong = tmp_path / "trang-sai.pdf"
        wrong.write_bytes(scan_pdf(title="TRANG SAI"))
        browser.find_element(By.ID, "scan").send_keys(str(wrong))
        screenshot(browser, "officer-2-intake")
        click(browser, "#submit-for-signature")
        assert "/copies/request/" in browser.current_url
        pk = int(browser.current_url.rstrip("/").split("/")[-1])
        browser.find_element(By.NAME, "receipt").send_keys("BL-2026-0101")
        click(browser, "#do-pay")
        screenshot(browser, "officer-3-submitted")

        # 4. The leader returns it (wrong page scanned), giving a ground.
        sign_in(browser, live, "leader.a")
        assert "/copies-to-sign/list/" in browser.current_url  # the leader's home: the queue
        screenshot(browser, "leader-1-queue")
        browser.find_element(By.CSS_SELECTOR, f"a[href='/copies/request/{pk}']").click()
        browser.find_element(By.CSS_SELECTOR, "#form-return textarea[name=reason]").send_keys(
            "Bản chụp không phải giấy tờ được xuất trình")
        _accept_confirm_and_wait(browser, "#do-return")
        assert _state(browser) == "Bị trả lại"

        # 5. The officer replaces the scan and submits again.
        sign_in(browser, live, "officer.a")
        browser.get(f"{live}/copies/request/{pk}")
        assert "Bản chụp không phải" in browser.find_element(By.ID, "request-reason").text
        click(browser, "#do-resume")
        right = tmp_path / "giay-khai-sinh.pdf"
        right.write_bytes(scan_pdf(pages=2))
        browser.find_element(By.ID, "scan").send_keys(str(right))
        screenshot(browser, "officer-4-resubmit")
        click(browser, "#resubmit")
        assert _state(browser) == "Chờ ký"

        # 6. The leader signs on the default page (a new last page) and forwards it.
        sign_in(browser, live, "leader.a")
        browser.get(f"{live}/copies/request/{pk}")
        screenshot(browser, "leader-2-sign")
        confirm_click(browser, "#do-sign")
        assert _state(browser) == "Đã ký"
        assert not browser.find_elements(By.ID, "request-reason")  # the return is history
        click(browser, "#do-forward")
        assert _state(browser) == "Chờ đóng dấu"

        # 7. The clerk opens this year's registers — two books, both before any number is
        # issued from either (the year's numbering runs through both) — typing the date
        # the Vietnamese way, then numbers and seals, and delivers.
        year = today_vn().year
        office_a = _office_a(db_session)
        sign_in(browser, live, "clerk.a")
        assert "/copies-to-seal/list/" in browser.current_url
        books, starts = [], []
        for shot in ("clerk-1-register", None):
            book = _book_number_free_in(db_session, office_a, year)
            browser.get(f"{live}/registerview/add")
            for field, value in (("name", f"Sổ chứng thực bản sao điện tử {book}"),
                                 ("book_number", book), ("type_symbol", "SCTĐT/BS"),
                                 ("year", str(year)),
                                 ("opening_date", f"{today_vn():%d/%m/%Y}")):
                element = browser.find_element(By.ID, field)
                element.clear()
                element.send_keys(value)
            browser.find_element(By.ID, "opening_date").send_keys(Keys.ESCAPE)
            starts.append(browser.find_element(By.ID, "start_number").get_attribute("value"))
            if shot:
                screenshot(browser, shot)
            click(browser, CONTENT_SUBMIT)
            assert "alert-success" in browser.page_source, [
                e.text for e in browser.find_elements(By.CSS_SELECTOR, ".alert, .help-block")]
            books.append(db_session.scalars(select(Register).where(
                Register.office_id == office_a, Register.book_number == book)).one())
        assert starts[0] == starts[1] and int(starts[0]) >= 1  # the year's next, in both
        register, second = books
        book = register.book_number
        start = starts[0]
        browser.get(f"{live}/copies/request/{pk}")
        Select(browser.find_element(By.NAME, "register_id")).select_by_value(str(register.id))
        screenshot(browser, "clerk-2-seal")
        click(browser, "#do-seal")
        number = browser.find_element(By.ID, "request-number").text
        assert number.startswith(f"{start} ") and book in number  # the new book's first
        click(browser, "#do-deliver")
        assert _state(browser) == "Đã trả kết quả"
        screenshot(browser, "clerk-3-delivered")

        # 8. The citizen finds it under "Giấy tờ của tôi" and downloads it.
        sign_in(browser, live, "citizen")
        browser.get(f"{live}/mycopies/")
        assert book in browser.find_element(By.ID, "my-documents").text
        screenshot(browser, "citizen-3-my-copies")
        browser.find_element(By.XPATH, f"//a[@href='/mycopies/{pk}']").click()
        access_code = browser.find_element(By.ID, "access-code").text
        screenshot(browser, "citizen-4-my-copy")
        browser.find_element(By.ID, "download").click()
        downloaded = _downloaded(browser)
        _validates(app, tmp_path, downloaded)

        # 9. A walk-in without an account, delivered by e-mail; the leader drags the block.
        sign_in(browser, live, "officer.a")
        browser.get(f"{live}/copies/intake")
        browser.find_element(By.ID, "no_account").click()
        for field, value in (("name", "Phạm Văn Khách"), ("phone", "0912345678"),
                             ("email", "khach@example.vn")):
            browser.find_element(By.ID, field).send_keys(value)
        written = tmp_path / "trang-chu.pdf"  # a real text page, written down to y = 430 pt
        written.write_bytes(text_page_pdf())
        browser.find_element(By.ID, "scan").send_keys(str(written))
        screenshot(browser, "officer-5-walk-in")
        click(browser, "#submit-for-signature")
        walk_in = int(browser.current_url.rstrip("/").split("/")[-1])
        sign_in(browser, live, "leader.a")

        def place(drag_up: int) -> str:
            browser.get(f"{live}/copies/request/{walk_in}")
            browser.find_element(By.CSS_SELECTOR, "#placement summary").click()
            page = browser.find_element(By.ID, "place-page")
            page.send_keys("1")
            page.send_keys("\t")
            mark = browser.find_element(By.ID, "place-mark")
            wait_for(browser, lambda d: mark.is_displayed())
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", mark)
            before = browser.find_element(By.ID, "place-rect").get_attribute("value")
            ActionChains(browser).drag_and_drop_by_offset(mark, -60, -drag_up).perform()
            placed = browser.find_element(By.ID, "place-rect").get_attribute("value")
            assert placed != before
            return placed

        # Over the page's writing: refused, said why, nothing signed.
        over = place(drag_up=400)
        assert int(over.split(",")[3]) > 450, over
        confirm_click(browser, "#do-sign")
        assert "che mất chữ" in browser.find_element(By.CSS_SELECTOR, ".alert-danger").text
        assert _state(browser) == "Chờ ký"
        # In the blank lower part of the same page: signed.
        below = place(drag_up=10)
        assert int(below.split(",")[3]) < 420, below
        screenshot(browser, "leader-3-place")
        confirm_click(browser, "#do-sign")
        click(browser, "#do-forward")
        sign_in(browser, live, "clerk.a")
        browser.get(f"{live}/copies/request/{walk_in}")
        Select(browser.find_element(By.NAME, "register_id")).select_by_value(str(second.id))
        click(browser, "#do-seal")
        number = browser.find_element(By.ID, "request-number").text
        assert number.startswith(f"{int(start) + 1} ") and second.book_number in number
        browser.find_element(By.NAME, "receipt").send_keys("BL-2026-0102")
        click(browser, "#do-pay")
        click(browser, "#do-deliver")
        assert _state(browser) == "Đã trả kết quả"
        dispatcher_for_app(app, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port,
                           SMTP_SECURITY="none", MAIL_FROM="saoy@example.vn").drain()
        mails = [m for m in smtp.messages if "khach@example.vn" in str(m["To"])]
        assert len(mails) == 1
        mail = mails[0]
        text = mail.get_body(("plain",)).get_content()
        db_session.expire_all()
        doc = db_session.get(CopyRequest, walk_in).document
        assert "Phạm Văn Khách" in text and doc.access_code in text
        attachments = [p for p in mail.iter_attachments()
                       if p.get_content_type() == "application/pdf"]
        assert len(attachments) == 1
        _validates(app, tmp_path, attachments[0].get_content())
        verify_link = re.search(r"https?://\S+/verify/\S+", text).group(0)

        # 10. Whoever holds the paper scans the QR code: the page says genuine.
        browser.delete_all_cookies()
        browser.get(verify_link.replace(verify_link.split("/verify/")[0], live))
        assert browser.find_element(By.ID, "verdict").get_attribute("data-verdict") == "valid"
        screenshot(browser, "verify-1-qr")
        browser.find_element(By.ID, "access_code").send_keys(doc.access_code)
        click(browser, "#access-form [type=submit]")
        screenshot(browser, "verify-2-with-code")

        # 11. Office B sees nothing of office A's requests, appointment or register.
        for user in ("officer.b", "leader.b", "clerk.b"):
            sign_in(browser, live, user)
            paths = [f"/copies/request/{pk}", f"/copies/request/{walk_in}"]
            if user == "clerk.b":  # the one of them who keeps registers
                paths.append(f"/registerview/show/{register.id}")
            for path in paths:
                browser.get(f"{live}{path}")
                assert browser.find_element(By.TAG_NAME, "h2").text == "404", (user, path)
            browser.get(f"{live}/copies/list/?psize_CopyRequestView=100")
            assert not browser.find_elements(By.CSS_SELECTOR, f"a[href='/copies/request/{pk}']")
            browser.get(f"{live}/pendingappointments/list/?_flt_0_code={code}")
            assert not browser.find_elements(By.XPATH, f"//tr[contains(., '{code}')]")
        assert access_code and first_time
    finally:
        smtp.close()


def _downloaded(browser, seconds: float = 20) -> bytes:
    deadline = time.time() + seconds
    while time.time() < deadline:
        files = [p for p in browser.downloads.glob("*.pdf")]
        if files:
            return files[0].read_bytes()
        time.sleep(0.2)
    pytest.fail("the PDF was not downloaded")


def test_the_office_admin_sees_the_office_settings_in_vietnamese(browser, live):
    """What the office administrator configures (appointments, working plan, signers and
    keys, staff), each page in Vietnamese with the office's own rows: the guide's shots."""
    By = _by()  # noqa: N806 - selenium's name
    sign_in(browser, live, "officeadmin.a")
    pages = (("appointmentsettingsview", "Cấu hình lịch hẹn",
              "officeadmin-1-appointmentsettings"),
             ("workingsessionview", "Lịch làm việc trong tuần", "officeadmin-2-workingsession"),
             ("signerprofileview", "Người ký", "officeadmin-3-signerprofile"),
             ("signingkeyview", "Khóa ký số", "officeadmin-4-signingkey"),
             ("staff", "Cán bộ", "officeadmin-5-staff"))
    for view, heading, shot in pages:
        browser.get(f"{live}/{view}/list/")
        title = browser.find_element(By.CSS_SELECTOR, ".panel-title, h2, h3").text
        assert heading.lower() in title.lower(), (view, title)
        rows = browser.find_elements(By.CSS_SELECTOR, "table tr td")
        assert rows, view  # the office's own rows (no office column: it sees one office)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "UBND Phường Tân Định" not in body and "None" not in body, view
        screenshot(browser, shot)
