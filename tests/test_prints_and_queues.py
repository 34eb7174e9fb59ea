"""Exports and PDFs that print and file well, queues with a button per row, the page that
continues a returned request showing its scan, and a dashboard whose appointment chart is
not empty by default (#28, point 8)."""
from __future__ import annotations

import io
import re
import subprocess

from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from tests import test_appointments, test_registers
from tests.test_appointments import book, future_start
from tests.test_copies import do, intake_web, request_id_from, state_of, upload
from tests.test_registers import _fill

# the fixtures of those modules, shared here
citizen_factory = test_appointments.citizen_factory
new_register = test_registers.new_register


def _deliver(login, db_session, doc_type, register, pages=1):
    officer, leader, clerk = login("officer.a"), login("leader.a"), login("clerk.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=pages, copies=1))
    do(leader, pk, "sign")
    do(leader, pk, "forward")
    do(clerk, pk, "seal", register_id=register.id)
    do(clerk, pk, "pay", receipt="BL-9")
    do(clerk, pk, "deliver")
    return pk


def test_the_register_book_prints_landscape_with_its_header_on_every_page(
        login, db_session, new_register, tmp_path):
    register = new_register(name="Sổ in thử")
    _fill(db_session, register, 3)
    book_file = login("clerk.a").post(f"/registerview/action/export_book/{register.id}")
    ws = load_workbook(io.BytesIO(book_file.data)).active
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    header_row = next(r for r in range(1, 20) if ws.cell(r, 1).value == "Số chứng thực")
    assert ws.print_title_rows == f"${header_row}:${header_row}"
    fee = ws.cell(header_row + 3, 9)
    assert fee.value == 6000 and "đ" in fee.number_format  # a number, shown as money
    path = tmp_path / "book.xlsx"
    path.write_bytes(book_file.data)
    subprocess.run(["soffice", "--headless", "--norestore", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", str(tmp_path),
                    str(path)], check=True, capture_output=True, timeout=120,
                   env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    shown = (tmp_path / "book.csv").read_text("utf-8")
    assert "6.000 đ" in shown and ",6000," not in shown


def test_list_exports_show_fees_as_money(login, doc_type):
    officer = login("officer.a")
    intake_web(officer, doc_type, pages=2, copies=1)
    ws = load_workbook(io.BytesIO(officer.get("/copies/export.xlsx").data)).active
    assert ws.print_title_rows == "$1:$1" and ws.page_setup.orientation == "landscape"
    fee_column = [c.value for c in ws[1]].index("Lệ phí (đồng)") + 1
    fees = [ws.cell(r, fee_column) for r in range(2, ws.max_row + 1)]
    assert fees and all("đ" in c.number_format for c in fees if c.value is not None)


def test_a_delivered_copy_has_a_title_and_a_name_of_its_own(app, login, db_session, doc_type,
                                                            new_register):
    from app.notifications.models import Message

    first_book, second_book = new_register(name="Sổ A"), new_register(name="Sổ B")
    one = _deliver(login, db_session, doc_type, first_book)
    two = _deliver(login, db_session, doc_type, second_book)
    citizen = login("citizen")
    names = []
    for pk in (one, two):
        r = citizen.get(f"/mycopies/{pk}/file")
        assert r.status_code == 200
        names.append(re.search(r'filename="?([^";]+)', r.headers["Content-Disposition"])[1])
        info = PdfReader(io.BytesIO(r.data)).metadata
        assert info.title.startswith("Bản sao điện tử chứng thực từ bản chính")
        assert doc_type.name_vi in info.title and info.author == "UBND Phường Sài Gòn"
        assert PdfReader(io.BytesIO(r.data)).trailer["/Root"]["/Lang"] == "vi"
    copy = state_of(db_session, one)
    assert names[0] != names[1] and all(n.endswith(".pdf") and n.isascii() for n in names)
    assert f"so-{copy.number}" in names[0] and "untitled" not in names[0]
    sent = db_session.scalars(select(Message).where(Message.related_id == one,
                                                    Message.kind == "copy_delivered")).all()
    assert sent  # (portal: no attachment; the e-mail path names it the same way)
    assert copy.file_name == names[0]


def test_each_queue_row_has_its_next_step(login, db_session, doc_type, register_of):
    officer, leader, clerk = login("officer.a"), login("leader.a"), login("clerk.a")
    waiting = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    row = _row(_newest_first(leader, "/copies-to-sign/", "AwaitingSignatureView"), waiting)
    assert f'href="/copies/request/{waiting}#actions"' in row and "Xem và ký" in row
    do(leader, waiting, "sign")
    do(leader, waiting, "forward")
    row = _row(_newest_first(clerk, "/copies-to-seal/", "AwaitingSealView"), waiting)
    assert "Cấp số và đóng dấu" in row and f"/copies/request/{waiting}#actions" in row
    returned = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    do(leader, returned, "return", reason="Mờ")
    row = _row(_newest_first(officer, "/copies-returned/", "ReturnedView"), returned)
    assert "Xử lý tiếp hoặc hủy" in row
    page = leader.get(f"/copies/request/{waiting}").get_data(as_text=True)
    assert 'id="actions"' in page


def _newest_first(web, route: str, view: str) -> str:
    """A queue (oldest first, as people work it) turned round: a long run's new row first."""
    return web.get(f"{route}list/?_oc_{view}=received_at&_od_{view}=desc").get_data(
        as_text=True)


def _row(html: str, pk: int) -> str:
    return html.split(f'href="/copies/request/{pk}"', 1)[1].split("</tr>", 1)[0]


def test_continuing_a_returned_request_shows_the_current_scan(login, db_session, doc_type):
    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=2, copies=1))
    do(leader, pk, "return", reason="Trang 2 mờ")
    do(officer, pk, "resume")
    page = officer.get(f"/copies/request/{pk}/edit").get_data(as_text=True)
    scan = page.split('id="current-scan"', 1)[1].split("</section>", 1)[0]
    assert f"/copies/request/{pk}/document" in scan and f"/copies/request/{pk}/page/1.png" in scan
    assert "2 trang" in scan
    assert officer.get(f"/copies/request/{pk}/page/1.png").mimetype == "image/png"
    r = officer.post(f"/copies/request/{pk}/edit", content_type="multipart/form-data", data={
        "document_type_id": doc_type.id, "copies": 1, "scan": upload(b"%PDF-1.4 broken")})
    assert r.status_code in (200, 302, 422)


def test_the_dashboard_shows_the_coming_appointments_by_default(
        app, login, db_session, office, doc_type, citizen_factory):
    start = future_start(4, 5)
    book(app, db_session, citizen_factory().user, office("A"), doc_type, start)
    html = login("supervisor").get("/dashboard/").get_data(as_text=True)
    import json

    data = json.loads(html.split('id="chart-appointments-data">', 1)[1].split("</script>")[0])
    day = start.strftime("%d/%m")
    assert day in data["labels"]
    index = data["labels"].index(day)
    assert sum(ds["data"][index] for ds in data["datasets"]) >= 1
