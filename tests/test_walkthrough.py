"""What office staff and citizens tripped over in the walk through ``make demo`` (issue 19),
each as the person would meet it: dates in Vietnam time, one book number per office, year
and symbol, typed data kept after a refusal, bulk actions that stay in their queue, the
access code where the citizen sees it, every outgoing e-mail visible in the demo, the
intake's account search, the seal certificate choice, an attestation that stays inside its
page — and a crawl of every staff page that finds no raw code, "None", "True" or English."""
from __future__ import annotations

import datetime as dt
import html
import io
import re
import subprocess
from html.parser import HTMLParser

import pytest

from app.transactions import atomic
from modules.registers.services import number_shown
from tests.conftest import user_named
from tests.pdfs import scan_pdf
from tests.test_copies import _submitted, do, state_of


def _api_flow(api, pk: int, register_id: int, *events: str) -> None:
    roles = {"sign": "leader.a", "forward": "leader.a", "seal": "clerk.a", "pay": "clerk.a",
             "deliver": "clerk.a"}
    for event in events:
        client, headers = api(roles[event])
        body = {"register_id": register_id} if event == "seal" else (
            {"receipt_number": "BL-W"} if event == "pay" else {})
        r = client.post(f"/api/v1/copy/{pk}/{event}", headers=headers, json=body)
        assert r.status_code == 200, (event, r.get_data(as_text=True))


def _delivered(app, api, db_session, doc_type, register_of, **requester) -> int:
    from modules.copies import services, workflow

    officer = user_named(db_session, "officer.a")
    with app.test_request_context(), atomic(db_session):
        copy, _info = services.intake(
            db_session, officer, upload=services.Upload(io.BytesIO(scan_pdf()), "s.pdf"),
            document_type_id=doc_type.id, copies=1,
            requester=services.Requester(**requester))
        workflow.apply(db_session, officer, copy.id, workflow.Event.submit)
    _api_flow(api, copy.id, register_of("A").id, "sign", "forward", "seal", "pay", "deliver")
    return copy.id


# --- 3. dates in Vietnam time ----------------------------------------------------------

def test_the_verification_page_shows_the_vietnam_date_of_sealing(app, api, client, db_session,
                                                                 doc_type, register_of):
    from modules.copies.models import CopyRequest

    pk = _delivered(app, api, db_session, doc_type, register_of,
                    identity_number="079203001234")
    doc = db_session.get(CopyRequest, pk).document
    doc.sealed_at = dt.datetime(2026, 12, 1, 20, 30)  # 03:30 on the 2nd in Hanoi
    db_session.commit()
    page = client.get(f"/verify/{doc.verify_code}").get_data(as_text=True)
    date_row = page.split("<th>Ngày</th>", 1)[1].split("</tr>", 1)[0]
    assert "02/12/2026" in date_row, date_row


# --- 2. one book number per office, year and symbol; typed data kept --------------------

def test_a_second_register_with_the_same_book_number_is_refused_and_keeps_the_form(
        login, register_of):
    existing = register_of("A")
    web = login("clerk.a")
    form = {"name": "Sổ trùng số", "book_number": existing.book_number,
            "type_symbol": existing.type_symbol, "year": str(existing.year),
            "start_number": str(existing.next_number + 1000),
            "opening_date": f"{existing.year}-06-01", "closing_date": ""}
    r = web.post("/registerview/add", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "alert-danger" in page and "đã có" in page
    assert "Sổ trùng số" in page  # what was typed is still there
    other_symbol = web.post("/registerview/add", data={**form, "type_symbol": "SCTĐT/HĐ",
                                                      "name": "Sổ hợp đồng"})
    assert other_symbol.status_code == 302  # another symbol: its own numbering


def test_a_new_register_offers_the_years_next_number(app, api, login, db_session, doc_type,
                                                    register_of):
    """Mid-year a new book goes on from the last number issued, not from the column's 1."""
    _delivered(app, api, db_session, doc_type, register_of, identity_number="079203001234")
    db_session.expire_all()
    existing = register_of("A")
    page = login("clerk.a").get("/registerview/add").get_data(as_text=True)
    offered = re.search(r'id="start_number"[^>]*value="(\d+)"', page) or re.search(
        r'value="(\d+)"[^>]*id="start_number"', page)
    assert offered and int(offered.group(1)) == number_shown(db_session, existing)


# --- 6. bulk actions stay in their queue; 5. a refused delete back on its list ----------

def test_bulk_actions_and_refused_deletes_come_back_to_the_list(app, login, db_session,
                                                                doc_type, register_of):
    pk = _submitted(app, db_session, doc_type)
    leader = login("leader.a")
    do(leader, pk, "sign")
    queue = "/copies-to-sign/list/?psize_AwaitingSignatureView=100"
    r = leader.post("/copies-to-sign/action_post", data={"action": "forward", "rowid": [pk]},
                    headers={"Referer": f"http://localhost{queue}"})
    assert r.status_code == 302 and r.headers["Location"].endswith(queue)
    clerk = login("clerk.a")
    r = clerk.post("/copies-to-seal/action_post", data={"action": "deliver", "rowid": [pk]},
                   headers={"Referer": "http://localhost/copies-to-seal/list/"})
    assert r.headers["Location"].endswith("/copies-to-seal/list/")
    do(clerk, pk, "seal", register_id=register_of("A").id)
    r = clerk.post(f"/registerview/delete/{register_of('A').id}")  # it has entries: refused
    assert r.status_code == 302 and r.headers["Location"].endswith("/registerview/list/")
    assert "alert-danger" in clerk.get(r.headers["Location"]).get_data(as_text=True)


def test_bulk_signing_asks_once(login):
    page = login("leader.a").get("/copies/bulk-sign").get_data(as_text=True)
    assert "confirm(" not in page


# --- 5. and 9. the intake -----------------------------------------------------------------

@pytest.fixture()
def appointment(app, db_session, office, doc_type):
    from modules.appointments import services

    citizen = user_named(db_session, "citizen")
    with app.test_request_context(), atomic(db_session):
        free = services.availability(db_session, office("A").id, services.today_vn(),
                                     services.today_vn() + dt.timedelta(days=14))
        a = services.book(db_session, citizen, office_id=office("A").id,
                          document_type_id=doc_type.id, start=free[-1].local.isoformat(),
                          documents=2)
    appointment_id = a.id
    yield a
    from sqlalchemy import select

    from modules.appointments.models import Appointment, AppointmentSlot

    db_session.rollback()  # the slot is given back: later tests find the week as it was
    with atomic(db_session):
        row = db_session.get(Appointment, appointment_id)
        slot = db_session.scalars(select(AppointmentSlot).where(
            AppointmentSlot.office_id == row.office_id, AppointmentSlot.start == row.start)).one()
        if row.is_active or row.status.value == "processed":
            slot.booked -= 1
        db_session.delete(row)


def test_an_appointment_opens_the_intake_filled_in_and_a_refusal_keeps_it(
        app, login, appointment, monkeypatch):
    officer = login("officer.a")
    form = officer.get(f"/copies/intake?appointment={appointment.id}").get_data(as_text=True)
    assert appointment.code in form and 'id="copies" name="copies" value="2"' in form
    assert f"/copies/intake?appointment={appointment.id}" in form  # kept in the address
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    r = officer.post(f"/copies/intake?appointment={appointment.id}", data={
        "identity_number": appointment.identity_number, "document_type_id": "1",
        "scan": (io.BytesIO(b"%PDF-1.7\n" + b"0" * (3 * 2**20)), "lon.pdf")},
        content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 413 and appointment.code in page
    assert appointment.identity_number in page  # "Từ lịch hẹn" and the account stay
    assert "data-max-bytes" in page  # and the page checks the size before sending


def test_a_processed_appointment_offers_no_more_actions(app, login, appointment, db_session):
    from modules.appointments import workflow

    with app.test_request_context(), atomic(db_session):
        workflow.mark_processed(db_session, user_named(db_session, "officer.a"),
                                db_session.merge(appointment))
    page = login("officer.a").get(
        f"/pendingappointments/list/?_flt_0_code={appointment.code}").get_data(as_text=True)
    rows = [r for r in page.split("<tr")[1:] if appointment.code in r and "<td" in r]
    assert len(rows) == 1, rows
    row = rows[0]
    assert "/action/process/" not in row and "/change/reschedule/" not in row
    assert "Đã xử lý" in row


def test_rescheduling_asks_a_date_then_a_time(login, appointment):
    page = login("officer.a").get(
        f"/pendingappointments/change/reschedule/{appointment.id}").get_data(as_text=True)
    days = re.findall(r'<select class="form-control" id="day">(.*?)</select>', page, re.S)[0]
    assert days.count("<option") <= 31  # days, not every time of every day
    assert 'data-day="' in page


def test_the_intake_finds_the_account_of_exactly_that_number(login):
    officer = login("officer.a")
    found = officer.get("/copies/intake/account?identity_number=079203001234").get_json()
    assert found["found"] and found["name"] and "verified" in found
    assert "identity_number" not in found and "@" not in str(found)  # no e-mail, no more
    for partial in ("0792030", "", "x" * 50):
        assert officer.get(f"/copies/intake/account?identity_number={partial}").get_json() == \
            {"found": False}
    assert login("citizen").get("/copies/intake/account?identity_number=079203001234"
                                ).status_code in (302, 403)


def test_a_leader_lands_on_the_copies_to_sign(login):
    r = login("leader.a").get("/")
    assert r.status_code == 302 and "/copies-to-sign/list/" in r.headers["Location"]
    assert login("clerk.a").get("/").headers["Location"].endswith("/copies-to-seal/list/")
    assert login("citizen").get("/").status_code == 200


# --- 8. the access code; 7. every e-mail visible in the demo ----------------------------

def test_the_access_code_is_where_the_citizen_sees_it(app, api, login, db_session, doc_type,
                                                      register_of, tmp_path):
    from modules.copies.models import CopyRequest
    from modules.signing.services import read_current

    pk = _delivered(app, api, db_session, doc_type, register_of,
                    identity_number="079203001234")
    copy = db_session.get(CopyRequest, pk)
    code = copy.document.access_code
    assert code in login("officer.a").get(f"/copies/request/{pk}/slip").get_data(as_text=True)
    assert code in login("citizen").get(f"/mycopies/{pk}").get_data(as_text=True)
    with app.app_context():
        path = tmp_path / "copy.pdf"
        path.write_bytes(read_current(db_session.merge(copy).document))
    last = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert f"Mã truy cập: {code}" in last


def test_the_demo_mailbox_shows_each_email_with_its_attachment(app, api, login, db_session,
                                                               doc_type, register_of):
    from app.notifications.dispatcher import dispatcher_for_app
    from modules.copies.models import CopyRequest

    pk = _delivered(app, api, db_session, doc_type, register_of, no_account=True,
                    email="khach.le@example.vn", name="Lê Văn Khách")
    with app.app_context():
        dispatcher_for_app(app).drain(max_rounds=5)
    officer = login("officer.a")
    page = officer.get("/demo-mailbox/").get_data(as_text=True)
    mail = page.split("khach.le@example.vn", 1)[1].split('class="panel panel-default', 1)[0]
    assert "Kính gửi Ông/Bà Lê Văn Khách" in html.unescape(mail)
    code = db_session.get(CopyRequest, pk).document.access_code
    assert code in mail
    link = re.search(r'href="(/demo-mailbox/\d+/attachment/0)"', mail).group(1)
    pdf = officer.get(link)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    other = login("officer.b")
    assert "khach.le@example.vn" not in other.get("/demo-mailbox/").get_data(as_text=True)
    assert other.get(link).status_code == 404


# --- 10. the seal certificate ---------------------------------------------------------------

def test_the_clerk_chooses_among_the_offices_seal_certificates(app, api, login, db_session,
                                                               doc_type, register_of, office):
    from modules.signing import keys
    from modules.signing.services import read_current, validate_bytes
    from tests.keys import demo_token

    admin = user_named(db_session, "admin")
    _signer, issued = demo_token(app, "seal-2", office("A").name, office("A").name)
    from pathlib import Path

    from modules.signing.pki import DemoPki

    passphrase = DemoPki(Path(app.config["DATA_DIR"]) / "pki").passphrase
    with app.test_request_context(), atomic(db_session):
        second = keys.register_pkcs12(db_session, admin, office_id=office("A").id, user_id=None,
                                      name="Dấu số 2 (dự phòng)",
                                      data=issued.p12_path.read_bytes(), passphrase=passphrase)
    try:
        pk = _submitted(app, db_session, doc_type)
        _api_flow(api, pk, register_of("A").id, "sign", "forward")
        page = login("clerk.a").get(f"/copies/request/{pk}").get_data(as_text=True)
        assert 'name="seal_key_id"' in page and "Dấu số 2 (dự phòng)" in page
        clerk, headers = api("clerk.b")
        other = clerk.post(f"/api/v1/copy/{pk}/seal", headers=headers,
                           json={"register_id": register_of("B").id, "seal_key_id": second.id})
        assert other.status_code == 404
        clerk, headers = api("clerk.a")
        r = clerk.post(f"/api/v1/copy/{pk}/seal", headers=headers,
                       json={"register_id": register_of("A").id, "seal_key_id": second.id})
        assert r.status_code == 200, r.get_data(as_text=True)
        db_session.expire_all()
        with app.app_context():
            report = validate_bytes(read_current(state_of(db_session, pk).document))
        seal = next(s for s in report.signatures if s.role == "seal")
        assert seal.fingerprint == second.fingerprint and seal.intact and seal.trusted
    finally:
        with atomic(db_session):
            db_session.merge(second).active = False


# --- 1. the attestation stays inside its page ------------------------------------------

@pytest.mark.parametrize("rect", [[400, 40, 780, 340], [40, 40, 420, 290]])
def test_an_attestation_outside_the_page_or_too_small_is_refused(app, api, db_session,
                                                                 doc_type, rect):
    pk = _submitted(app, db_session, doc_type)
    leader, headers = api("leader.a")
    r = leader.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={"page": 1, "rect": rect},
                    environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert r.status_code == 422 and "trong trang" in r.get_json()["message"]
    assert state_of(db_session, pk).state.value == "awaiting_signature"


def test_an_attestation_over_the_writing_of_a_page_is_refused(app, api, db_session,
                                                              doc_type, tmp_path):
    """The block is opaque: placed over lines of a real text page it hid them (issue: lines
    5-19 covered, no warning).  Over the writing: refused before anything is signed, with
    the reason; on the blank lower part of the same page: signed, and the written part of
    the page looks exactly as before."""
    from tests.pdfs import text_page_pdf

    pk = _submitted(app, db_session, doc_type, scan=text_page_pdf())
    leader, headers = api("leader.a")
    r = leader.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                    json={"page": 1, "rect": [40, 440, 560, 760]},
                    environ_base={"HTTP_ACCEPT_LANGUAGE": "vi"})
    assert r.status_code == 422 and "che" in r.get_json()["message"], r.get_json()
    assert state_of(db_session, pk).state.value == "awaiting_signature"
    r = leader.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                    json={"page": 1, "rect": [40, 40, 560, 380]})
    assert r.status_code == 200, r.get_json()
    from app.storage import file_store

    db_session.expire_all()
    with app.app_context():
        signed = file_store().read_bytes(state_of(db_session, pk).document.current_sha256)
    from PIL import ImageChops

    from modules.signing.verification import render_page

    written = (0, 0, 595, 842 - 420)  # pixels at 72 dpi: the page above y = 420 pt
    before, after = (render_page(data, 1, 72).crop(written)
                     for data in (text_page_pdf(), signed))
    assert ImageChops.difference(before, after).getbbox() is None  # not a pixel hidden


# --- 4. every value a person reads, on every staff page ---------------------------------

class _Visible(HTMLParser):
    """The text a person reads (not scripts or styles), and button texts."""

    def __init__(self):
        super().__init__()
        self.skip, self.text = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        attrs = dict(attrs)
        if tag in ("button", "input") and attrs.get("type") in ("submit", "button") and \
                attrs.get("value"):
            self.text.append(attrs["value"])
        if attrs.get("placeholder"):
            self.text.append(attrs["placeholder"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.text.append(html.unescape(data.strip()))


#: What no value on a staff page may be: a code, Python's None/True/False, FAB's "__None",
#: an ISO date or a time with microseconds, a bracketed list, an English word of the
#: interface or a role's name in code.
RAW = re.compile(r"^(None|True|False|\[.*\])$|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}\.\d+|__None")
ENGLISH = re.compile(r"^(Cancel|Note|Name|List|Show|Edit|Delete|Search|Add|Save|Back|Record|"
                     r"Records|Actions|Yes|No|User|Role|Roles|Active|Status|Created|Changed|"
                     r"Office|Not a valid .*|Admin|OfficeAdmin|Officer|Leader|Clerk|Supervisor|"
                     r"Citizen|none)$|— none —")
#: Proper names and notations that are not English words.
ALLOWED = {"SaoY", "OK", "VNeID", "PDF", "SMS", "CSV", "Excel", "CCCD", "CMND", "MST", "QR",
           "DVCQG", "PKCS#12", "PKCS#11", "HSM", "TSA", "URL", "E-mail", "Email", "SCTĐT/BS"}


#: Not pages: the API, files, exports, signing out, language switches, health.
SKIP = ("/api", "/static", "/swagger", "/logout", "/lang", "/health", "/verify/", "/exports/")


def test_no_staff_page_shows_a_raw_code_none_true_or_english(app, api, login, db_session,
                                                            doc_type, register_of):
    from app.labels import _REGISTRY

    _delivered(app, api, db_session, doc_type, register_of, identity_number="079203001234")
    codes = {m.value for enum in _REGISTRY for m in enum if m.value not in ALLOWED}
    problems = []
    for username in CRAWLED_ROLES:
        for path, body in crawl(app, login(username)):
            visible = _Visible()
            visible.feed(body)
            for text in visible.text:
                if text in ALLOWED:
                    continue
                if RAW.search(text) or ENGLISH.match(text) or text in codes:
                    problems.append((username, path, text[:60]))
    assert problems == [], "\n".join(map(str, sorted(set(problems))))


CRAWLED_ROLES = ("officer.a", "leader.a", "clerk.a", "officeadmin.a", "supervisor", "admin",
                 "citizen")


def crawl(app, web, limit: int = 200):
    """Every HTML page a user reaches: each GET route without arguments, and up to three
    records' show, edit and request pages linked from each page — (path, html)."""
    queue = ["/"] + [rule.rule for rule in app.url_map.iter_rules()
                     if "GET" in rule.methods and not rule.arguments
                     and not rule.rule.startswith(SKIP)]
    seen = set()
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        r = web.get(path, follow_redirects=True)
        if r.status_code != 200 or "text/html" not in r.content_type or "export" in path:
            continue
        body = r.get_data(as_text=True)
        yield path, body
        queue += re.findall(r'href="(/[a-z-]+/(?:show|edit)/\d+|/copies/request/\d+)"',
                            body)[:3]
