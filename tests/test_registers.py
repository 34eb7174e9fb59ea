"""Registers: gap-free numbering under concurrency, rules, register book export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import threading
import uuid

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.transactions import atomic
from tests.conftest import engine_of, user_named
from tests.scoping import ScopedCase, assert_foreign_record_is_404, assert_own_record_is_reachable


def allocate(session, user, register_id, key, details=None):
    """One number in its own unit of work (as the seal's unit would take it)."""
    from modules.registers.services import allocate_number

    with atomic(session):
        return allocate_number(session, user, register_id, key, details)


def close(session, user, register_id):
    from modules.registers.services import close_register

    with atomic(session):
        return close_register(session, user, register_id)


@pytest.fixture()
def new_register(db_session, office):
    """``new_register("A", start=1)`` → an open register of this year, own type symbol."""
    from modules.registers.models import Register, RegisterStatus
    from modules.registers.services import today_vn

    def make(letter="A", start=1, symbol=None, **fields):
        year = today_vn().year
        register = Register(
            office_id=office(letter).id, name=fields.pop("name", f"Sổ thử {uuid.uuid4().hex[:6]}"),
            book_number=f"{uuid.uuid4().hex[:4]}/{year}",
            type_symbol=symbol or f"T{uuid.uuid4().hex[:8]}", year=year, start_number=start,
            next_number=start, opening_date=dt.date(year, 1, 1), status=RegisterStatus.open,
            **fields)
        db_session.add(register)
        db_session.commit()
        return register

    return make


def test_concurrent_clerks_get_every_number_exactly_once(app, new_register):
    """8 workers × 250 allocations: exactly start..start+1999, each once."""
    from modules.registers.models import RegisterEntry

    register_id = new_register("A", start=101).id  # read once: threads share no session
    engine = engine_of(app)
    numbers: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def worker(w: int):
        with Session(bind=engine) as session:
            clerk = user_named(session, "clerk.a")
            for i in range(250):
                try:
                    entry = allocate(session, clerk, register_id, f"conc-{w}-{i}")
                    with lock:
                        numbers.append(entry.number)
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == list(range(101, 101 + 2000))
    with Session(bind=engine) as session:
        stored = session.scalars(select(RegisterEntry.number)
                                 .where(RegisterEntry.register_id == register_id)).all()
    assert sorted(stored) == list(range(101, 2101))


def test_asking_twice_for_a_request_gives_the_same_number(db_session, new_register):

    register = new_register()
    clerk = user_named(db_session, "clerk.a")
    key = f"test:{uuid.uuid4().hex}"  # not "copy:<id>": real requests use those keys
    first = allocate(db_session, clerk, register.id, key)
    again = allocate(db_session, clerk, register.id, key)
    other = allocate(db_session, clerk, register.id, key + "-other")
    assert (first.number, again.number, other.number) == (1, 1, 2)


def test_no_number_from_a_closed_register_or_outside_its_dates(db_session, new_register):
    from modules.registers.services import RegisterError

    clerk = user_named(db_session, "clerk.a")
    closed = new_register()
    allocate(db_session, clerk, closed.id, "copy:c1")
    result = close(db_session, clerk, closed.id)
    assert result.total_entries == 1 and result.closed_by_id == clerk.id
    with pytest.raises(RegisterError) as err:
        allocate(db_session, clerk, closed.id, "copy:c2")
    assert err.value.status == 409
    db_session.rollback()
    yesterday = dt.date.today() - dt.timedelta(days=1)
    expired = new_register(closing_date=max(yesterday, dt.date(yesterday.year, 1, 1)))
    if expired.closing_date < dt.date.today():
        with pytest.raises(RegisterError):
            allocate(db_session, clerk, expired.id, "copy:c3")
        db_session.rollback()


def test_clerk_of_another_office_cannot_allocate(db_session, new_register):
    from app.errors import NotFoundError as NotFound

    register = new_register("B")
    with pytest.raises(NotFound):
        allocate(db_session, user_named(db_session, "clerk.a"), register.id, "copy:x")


def test_new_book_mid_year_continues_the_sequence(login, db_session, new_register, office):
    from modules.registers.services import suggested_start_number

    symbol = f"S{uuid.uuid4().hex[:6]}"
    full = new_register(symbol=symbol)
    clerk = user_named(db_session, "clerk.a")
    for i in range(3):
        allocate(db_session, clerk, full.id, f"copy:m{i}")
    assert suggested_start_number(db_session, office("A").id, full.year, symbol) == 4
    web = login("clerk.a")
    form = {"name": "Quyển 2", "book_number": f"02/{full.year}", "type_symbol": symbol,
            "year": str(full.year), "start_number": "2",
            "opening_date": dt.date.today().isoformat()}
    r = web.post("/registerview/add", data=form, follow_redirects=True)
    assert "đã được cấp" in r.get_data(as_text=True)  # 1..3 taken: refused with the reason
    form["start_number"] = "4"
    assert web.post("/registerview/add", data=form).status_code == 302
    from modules.registers.models import Register

    created = db_session.scalars(select(Register).where(Register.name == "Quyển 2")).one()
    assert created.office_id == office("A").id and created.next_number == 4
    assert "4" in web.get("/registerview/add").get_data(as_text=True)  # suggestion shown


def test_two_books_open_in_one_year_share_the_years_sequence(app, login, db_session,
                                                            new_register, office):
    """The issue measured two books of 2026 (01 and 02, both unused) each offering
    "next number 1", and two copies numbered 1.  Numbers run through the year across books:
    both books are offered the same next number, and clerks sealing from either book at
    once get every number exactly once."""
    from modules.registers.models import Register
    from modules.registers.services import open_registers

    symbol = f"Y{uuid.uuid4().hex[:6]}"
    first = new_register(symbol=symbol)
    web = login("clerk.a")
    form = {"name": "Quyển 02", "book_number": f"02/{first.year}", "type_symbol": symbol,
            "year": str(first.year), "start_number": "1",
            "opening_date": dt.date.today().isoformat()}
    assert web.post("/registerview/add", data=form).status_code == 302  # neither used yet
    second = db_session.scalars(select(Register).where(Register.type_symbol == symbol,
                                                       Register.id != first.id)).one()
    clerk = user_named(db_session, "clerk.a")
    offered = {b.id: b.next_number for b in open_registers(db_session, clerk)
               if b.id in (first.id, second.id)}
    assert offered == {first.id: 1, second.id: 1}
    books = (first.id, second.id)
    engine = engine_of(app)
    numbers: list[int] = []
    errors: list[Exception] = []

    def worker(w: int):
        with Session(bind=engine) as session:
            user = user_named(session, "clerk.a")
            for i in range(40):
                try:
                    numbers.append(allocate(session, user, books[(w + i) % 2],
                                            f"two-{symbol}-{w}-{i}").number)
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(numbers) == list(range(1, 161))
    db_session.expire_all()
    shown = {b.id: b.next_number for b in open_registers(db_session, clerk)
             if b.id in books}
    assert shown == {first.id: 161, second.id: 161}


def test_a_used_books_identity_is_frozen(login, db_session, new_register):
    """The issue renamed book 01/2026 with 3 copies issued to 09/2026 and it saved, while
    the delivered PDFs say 01/2026: once a number is issued, the book's number, type, year,
    start and opening date are refused with the reason; its name may still be corrected."""
    from modules.registers.models import Register

    register = new_register()
    _fill(db_session, register, 3)
    web = login("clerk.a")
    form = {"name": register.name, "book_number": register.book_number,
            "type_symbol": register.type_symbol, "year": str(register.year),
            "start_number": str(register.start_number),
            "opening_date": register.opening_date.isoformat()}
    for name, value in (("book_number", f"09/{register.year}"), ("type_symbol", "KHAC/BS"),
                        ("opening_date", dt.date(register.year, 2, 1).isoformat())):
        r = web.post(f"/registerview/edit/{register.id}", data={**form, name: value},
                     follow_redirects=True)
        assert "không thể thay đổi" in r.get_data(as_text=True), name
    assert web.post(f"/registerview/edit/{register.id}",
                    data={**form, "name": "Sổ đã sửa tên"}).status_code == 302
    db_session.expire_all()
    kept = db_session.get(Register, register.id)
    assert (kept.book_number, kept.type_symbol, kept.opening_date, kept.name) == (
        register.book_number, register.type_symbol, register.opening_date, "Sổ đã sửa tên")


def test_register_with_entries_cannot_be_deleted_or_renumbered(login, db_session, new_register):
    from modules.registers.models import Register

    register = new_register()
    allocate(db_session, user_named(db_session, "clerk.a"), register.id, "copy:d1")
    web = login("clerk.a")
    r = web.post(f"/registerview/delete/{register.id}", follow_redirects=True)
    assert "không thể xóa" in r.get_data(as_text=True)
    form = {"name": register.name, "book_number": register.book_number,
            "type_symbol": register.type_symbol, "year": str(register.year),
            "start_number": "50", "opening_date": register.opening_date.isoformat()}
    r = web.post(f"/registerview/edit/{register.id}", data=form, follow_redirects=True)
    assert "không thể thay đổi" in r.get_data(as_text=True)
    db_session.expire_all()
    kept = db_session.get(Register, register.id)
    assert kept is not None and kept.start_number == 1


def test_empty_register_can_be_deleted(login, db_session, new_register):
    from modules.registers.models import Register

    register_id = new_register().id
    assert login("clerk.a").post(f"/registerview/delete/{register_id}").status_code == 302
    db_session.expire_all()
    assert db_session.get(Register, register_id) is None


def _fill(db_session, register, count, clerk="clerk.a"):
    from modules.registers.services import EntryDetails

    user = user_named(db_session, clerk)
    for i in range(count):
        allocate(db_session, user, register.id, f"copy:x{register.id}-{i}", EntryDetails(
            requester_name=f"Nguyễn Văn Tư {i}", requester_identity="079203001234",
            document_type="Giấy khai sinh", pages=2 + i, copies=1,
            signer_name="Trần Thị Bình", fee=4000 + 1000 * i, notes=None))


def test_register_book_opens_in_libreoffice_with_the_right_rows(login, db_session,
                                                                new_register, tmp_path):
    register = new_register(name="Sổ xuất thử")
    _fill(db_session, register, 3)
    web = login("clerk.a")
    r = web.post(f"/registerview/action/export_book/{register.id}")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    path = tmp_path / "book.xlsx"
    path.write_bytes(r.data)
    wb = load_workbook(path)
    ws = wb.active
    rows = list(ws.iter_rows(values_only=True))
    header_at = next(i for i, row in enumerate(rows) if row[0] == "Số chứng thực")
    first = ws.cell(row=header_at + 2, column=2)
    assert first.is_date and first.number_format == "DD/MM/YYYY"  # a real Excel date
    subprocess.run(["soffice", "--headless", "--norestore", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1",
                    "--outdir", str(tmp_path), str(path)], check=True, capture_output=True,
                   timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    lines = list(csv.reader(io.StringIO((tmp_path / "book.csv").read_text("utf-8"))))
    assert any("UBND Phường Sài Gòn" in cell for line in lines for cell in line)
    header = next(i for i, line in enumerate(lines) if line and line[0] == "Số chứng thực")
    body = [line for line in lines[header + 1:] if line and line[0]]
    assert [line[0] for line in body] == ["1", "2", "3"]
    assert body[0][2] == "Nguyễn Văn Tư 0" and body[2][5] == "4" and body[2][8] == "6.000 đ"
    assert body[0][1] == dt.date.today().strftime("%d/%m/%Y")


def test_rest_api_creates_closes_and_exports(api, db_session, office):
    from modules.registers.services import today_vn

    rest, headers = api("clerk.a")
    year = today_vn().year
    r = rest.post("/api/v1/register/", headers=headers, json={
        "name": "Sổ API", "book_number": f"09/{year}", "type_symbol": f"API{uuid.uuid4().hex[:4]}",
        "year": year, "start_number": 1, "opening_date": dt.date.today().isoformat()})
    assert r.status_code == 201, r.get_json()
    pk = r.get_json()["id"]
    shown = rest.get(f"/api/v1/register/{pk}", headers=headers).get_json()["result"]
    assert shown["office_id"] == office("A").id and shown["status"] == "open"
    r = rest.get(f"/api/v1/register/{pk}/export.xlsx", headers=headers)
    assert r.status_code == 200 and r.data[:2] == b"PK"
    r = rest.post(f"/api/v1/register/{pk}/close", headers=headers)
    assert r.status_code == 200 and r.get_json()["total_entries"] == 0
    r = rest.post(f"/api/v1/register/{pk}/close", headers=headers)
    assert r.status_code == 409 and "khóa" in r.get_json()["message"]
    bad = rest.post("/api/v1/register/", headers=headers, json={
        "name": "Sai", "book_number": "x", "type_symbol": "X", "year": year, "start_number": 0,
        "opening_date": dt.date.today().isoformat()})
    assert bad.status_code == 422 and "số bắt đầu" in bad.get_json()["message"].lower()


def test_officer_cannot_open_registers(api):
    rest, headers = api("officer.a")
    r = rest.post("/api/v1/register/", headers=headers, json={"name": "x"})
    assert r.status_code in (401, 403)


REGISTERS = ScopedCase(
    view="/registerview", api="/api/v1/register", action="close_register",
    put_body={"name": "hijacked"},
    edit_form={"name": "hijacked"}, list_marker="REGISTER-OF-OFFICE-B", rest_delete=False,
)


def test_clerk_of_a_gets_404_for_registers_of_b(login, api, db_session, new_register):
    from modules.registers.models import Register, RegisterStatus

    foreign = new_register("B", name="REGISTER-OF-OFFICE-B")
    own = new_register("A", name="REGISTER-OF-OFFICE-A")
    web = login("clerk.a")
    rest, headers = api("clerk.a")
    assert_foreign_record_is_404(web, rest, headers, REGISTERS, foreign.id)
    assert rest.post(f"/api/v1/register/{foreign.id}/close", headers=headers).status_code == 404
    assert rest.get(f"/api/v1/register/{foreign.id}/export.xlsx",
                    headers=headers).status_code == 404
    assert web.post(f"/registerview/action/export_book/{foreign.id}").status_code == 404
    db_session.expire_all()
    kept = db_session.get(Register, foreign.id)
    assert kept.status is RegisterStatus.open and kept.name == "REGISTER-OF-OFFICE-B"
    assert_own_record_is_reachable(web, rest, headers, REGISTERS, own.id)


def test_filtered_list_export_keeps_scope_and_filters(login, new_register):
    new_register("A", name="LIST-EXPORT-A-1")
    new_register("B", name="LIST-EXPORT-B-1")
    web = login("clerk.a")
    r = web.get("/registerview/export.xlsx?_flt_2_name=LIST-EXPORT")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    names = [row[0] for row in wb.active.iter_rows(min_row=2, values_only=True)]
    assert names == ["LIST-EXPORT-A-1"]
