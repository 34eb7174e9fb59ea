"""Supervision: the dashboard and the statistics report see exactly the user's offices (a
supervisor every office under theirs and no other, a leader their own); every staff list
shows and filters by office for who sees several, with labels instead of codes; exports in
.xlsx and .csv open in LibreOffice with the Vietnamese intact; long exports run in the
background with progress and a download only their owner may fetch."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import MARCH_2021, user_named


def _figures(html: str, table: str) -> dict[str, list[str]]:
    """A dashboard table (its id) as {row label: [values]}."""
    import re

    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr><td>(.*?)</td>(.*?)</tr>", body, re.S):
        rows[row[0].strip()] = re.findall(r'<td class="text-right">(.*?)</td>', row[1])
    return rows


def _totals(html: str) -> str:
    return html.split('id="dashboard-totals"', 1)[1].split('class="row"', 1)[0]


def test_supervisor_sees_every_office_under_them_and_no_other(login, world, office,
                                                              db_session):
    supervisor = login("supervisor")
    html = supervisor.get("/dashboard/", query_string=MARCH_2021).get_data(as_text=True)
    states = _figures(html, "chart-states-table")
    assert states["Đã trả kết quả"] == ["8"] and states["Bị trả lại"] == ["2"]  # A 5+B 3, not C
    assert "UBND Xã Ngoài Tỉnh" not in html
    office_a = supervisor.get("/dashboard/", query_string={**MARCH_2021, "office": office("A").id})
    assert _figures(office_a.get_data(as_text=True), "chart-states-table")[
        "Đã trả kết quả"] == ["5"]
    other_id = _other_office_id(db_session)
    assert supervisor.get("/dashboard/", query_string={**MARCH_2021, "office": other_id}
                          ).status_code == 404
    assert supervisor.get("/dashboard/statistics.xlsx",
                          query_string={**MARCH_2021, "office": other_id}).status_code == 404


def _other_office_id(session) -> int:
    from app.offices.models import Office

    return session.scalars(select(Office.id).where(Office.code == "TEST-OTHER-PROVINCE")).one()


def test_leader_sees_only_their_office_and_the_figures_are_right(login, world, office):
    leader = login("leader.a")
    html = leader.get("/dashboard/", query_string=MARCH_2021).get_data(as_text=True)
    states = _figures(html, "chart-states-table")
    assert states["Đã trả kết quả"] == ["5"] and states["Bị trả lại"] == ["2"]
    per_day = _figures(html, "chart-per-day-table")
    assert per_day["03/03"] == ["5", "4"] and per_day["04/03"] == ["2", "0"]
    assert per_day["07/03"] == ["0", "1"]  # the 100-hour one was delivered on the 7th
    returns = _figures(html, "chart-returns-table")
    assert returns["Bản chính bị hư hỏng, cũ nát, không xác định được nội dung."] == ["1"]
    assert returns["Lý do khác"] == ["1"]
    appointments = _figures(html, "chart-appointments-table")
    assert appointments["08/03"] == ["0", "2", "1", "0"]  # booked, processed, no-show, …
    totals = _totals(html)
    # Delivery times 2, 4, 6, 8, 100 h: average 24 h, 95th percentile 81.6 h.
    assert "24 giờ" in totals and "81,6 giờ" in totals and "20.000 đ" in totals
    assert leader.get("/dashboard/", query_string={
        **MARCH_2021, "office": office("B").id}).status_code == 404
    assert 'id="filter-office"' not in html  # one office: no office filter
    assert login("officer.a").get("/dashboard/").status_code in (302, 403)


def test_dashboard_refuses_a_bad_period_with_a_message(login):
    leader = login("leader.a")
    for query in ({"from": "2021-03-31", "to": "2021-03-01"}, {"from": "31/13/2021"},
                  {"to": "2021-02-30"}, {"from": "2019-01-01", "to": "2021-03-01"},
                  {"office": "x"}):
        r = leader.get("/dashboard/", query_string=query)
        assert 400 <= r.status_code < 500, (query, r.status_code)
        assert "alert" in r.get_data(as_text=True) or r.status_code == 404


def test_statistics_report_counts_the_register_books_per_office(login, world, office):
    data = login("supervisor").get("/dashboard/statistics.xlsx", query_string=MARCH_2021)
    assert data.status_code == 200
    sheet = load_workbook(io.BytesIO(data.data)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    by_office = {r[0]: r[1:] for r in rows if r and r[0] in (office("A").name,
                                                             office("B").name, "Tổng số")}
    assert by_office[office("A").name] == [4, 8, 24, 16000]
    assert by_office[office("B").name] == [2, 4, 12, 8000]
    assert by_office["Tổng số"] == [6, 12, 36, 24000]
    assert not any("Ngoài Tỉnh" in str(r) for r in rows)
    leader = login("leader.a").get("/dashboard/statistics.xlsx", query_string=MARCH_2021)
    names = [r[0].value for r in load_workbook(io.BytesIO(leader.data)).active.iter_rows()]
    assert office("A").name in names and office("B").name not in names


def test_lists_show_and_filter_by_office_with_labels_for_who_sees_several(login, world, office,
                                                                         db_session):
    supervisor, officer = login("supervisor"), login("officer.a")
    html = supervisor.get("/copies/list/").get_data(as_text=True)
    assert "Cơ quan" in _list_headers(html)
    assert office("B").name in html and "UBND Xã Ngoài Tỉnh" not in html
    assert _json_text(">Chờ ký<") in html and _json_text(">awaiting_signature<") not in html
    only_b = supervisor.get("/copies/list/", query_string={
        "_flt_0_office": office("B").id, "psize_CopyRequestView": 100}).get_data(as_text=True)
    assert all(f"/copies/request/{pk}\"" in only_b for pk in world["B"])
    assert not any(f"/copies/request/{pk}\"" in only_b for pk in world["A"])
    mine = officer.get("/copies/list/").get_data(as_text=True)
    assert "Cơ quan" not in _list_headers(mine) and office("B").name not in mine
    # The staff choices of a filter are the user's offices' staff only.
    leader_b = _full_name(db_session, "leader.b")
    assert _json_text(leader_b) in html and _json_text(leader_b) not in mine


def test_every_staff_list_with_an_office_shows_it_to_who_sees_several(app, login):
    """Each scoped list of an office-owned model: an office column for the supervisor (and
    in its export), none for an officer of one office."""
    from app.scoping import ScopedModelView

    views = [v for v in app.appbuilder.baseviews
             if isinstance(v, ScopedModelView) and v._has_office()]
    assert len(views) >= 8
    supervisor, office_admin = login("supervisor"), login("officeadmin.a")
    seen = 0
    for view in views:
        url = f"{view.route_base}/list/"
        for client, several in ((supervisor, True), (office_admin, False)):
            page = client.get(url)
            if page.status_code != 200:
                continue  # not this role's list
            headers = _list_headers(page.get_data(as_text=True))
            if headers:  # (an empty list draws no table)
                seen += 1
                assert ("Cơ quan" in headers) is several, (url, several, headers)
            csv_page = client.get(f"{view.route_base}/export.csv")
            assert csv_page.status_code == 200, (url, csv_page.status_code)
            first = csv_page.data.decode("utf-8-sig").splitlines()[0]
            assert ("Cơ quan" in first.split(",")) is several, (url, first)
    assert seen >= 6


def _full_name(session, username: str) -> str:
    user = user_named(session, username)
    return f"{user.first_name} {user.last_name}"


def _json_text(text: str) -> str:
    """FAB embeds the search form's choices as HTML-safe JSON (non-ASCII, < and > escaped)."""
    import json

    return json.dumps(text)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")


def _list_headers(html: str) -> list[str]:
    import re

    table = html.split('<table class="table', 1)[1].split("</thead>", 1)[0]
    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>",
                                                                   table, re.S)]


def _libreoffice(path: Path, to: str, infilter: str | None = None) -> Path:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is installed by `make test`")
    out = path.parent / "converted"
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{path.parent}/lo",
                    *([f"--infilter={infilter}"] if infilter else []),
                    "--convert-to", to, "--outdir", str(out), str(path)], check=True,
                   capture_output=True, timeout=120)
    return out / f"{path.stem}.{to.split(':')[0]}"


def test_exports_open_in_libreoffice_with_the_vietnamese_intact(login, world, office, tmp_path):
    supervisor = login("supervisor")
    query = {"_flt_0_office": office("B").id}
    csv_data = supervisor.get("/copies/export.csv", query_string=query)
    assert csv_data.status_code == 200 and csv_data.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(csv_data.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Mã hồ sơ", "Cơ quan"] or "Cơ quan" in rows[0]
    assert any("Nguyễn Thị Thống Kê" in row and "Đã trả kết quả" in row for row in rows)
    assert not any(office("A").name in row for row in rows[1:])
    path = tmp_path / "copies.csv"
    path.write_bytes(csv_data.data)
    # Excel reads the BOM; LibreOffice's import dialog offers UTF-8 (the filter's 76).
    opened = _libreoffice(path, "xlsx", infilter="CSV:44,34,76,1")
    values = [[c.value for c in r] for r in load_workbook(opened).active.iter_rows()]
    assert any("Nguyễn Thị Thống Kê" in [str(v) for v in r] for r in values)
    assert any(office("B").name in [str(v) for v in r] for r in values)
    xlsx = supervisor.get("/copies/export.xlsx", query_string=query)
    path = tmp_path / "copies.xlsx"
    path.write_bytes(xlsx.data)
    text = _libreoffice(path, "csv:Text - txt - csv (StarCalc):44,34,76").read_text("utf-8")
    assert "Nguyễn Thị Thống Kê" in text and "Đã trả kết quả" in text
    assert office("B").name in text and office("A").name not in text


def test_long_exports_run_in_the_background_for_their_owner_only(app, login, world, office,
                                                                 monkeypatch):
    from app.export_jobs import run_pending

    monkeypatch.setitem(app.config, "EXPORT_INLINE_ROWS", 2)
    supervisor = login("supervisor")
    r = supervisor.get("/copies/export.csv", query_string={"_flt_0_office": office("B").id})
    assert r.status_code == 302 and "/exports/" in r.headers["Location"]
    page = r.headers["Location"]
    assert "export-progress" in supervisor.get(page).get_data(as_text=True)
    status = supervisor.get(f"{page}/status").get_json()
    assert status["state"] == "queued" and not status["ready"]
    for other in ("leader.b", "officer.a"):
        stranger = login(other)
        assert stranger.get(page).status_code == 404
        assert stranger.get(f"{page}/file").status_code == 404
    with app.app_context():
        assert run_pending(app) >= 1
    status = supervisor.get(f"{page}/status").get_json()
    assert status["ready"] and status["rows_done"] == status["rows_total"] >= 3
    data = supervisor.get(f"{page}/file")
    rows = list(csv.reader(io.StringIO(data.data.decode("utf-8-sig"))))
    assert len(rows) - 1 == status["rows_total"]
    assert all(office("A").name not in row for row in rows[1:])
    assert login("leader.b").get(f"{page}/file").status_code == 404


def test_a_long_list_says_about_how_many_instead_of_counting_every_row(app, login, world,
                                                                      db_session):
    """Beyond ``LIST_EXACT_COUNT`` rows (PostgreSQL) the pager takes the planner's estimate
    and says so ("khoảng N"); under it, and on SQLite, the count is exact."""
    from sqlalchemy import text

    supervisor = login("supervisor")
    page = supervisor.get("/copies/list/").get_data(as_text=True)
    shown = re.search(r"Số bản ghi:</strong>\s*([^<]+)", page).group(1).strip()
    assert "khoảng" not in shown  # a few thousand at most here: counted
    postgres = not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if postgres:
        db_session.execute(text("ANALYZE copy_request"))
        db_session.commit()
    saved = app.config["LIST_EXACT_COUNT"]
    app.config["LIST_EXACT_COUNT"] = 3
    try:
        page = supervisor.get("/copies/list/").get_data(as_text=True)
        api_count = supervisor.get("/api/v1/copy/").get_json()["count"]
    finally:
        app.config["LIST_EXACT_COUNT"] = saved
    shown = re.search(r"Số bản ghi:</strong>\s*([^<]+)", page).group(1).strip()
    if postgres:
        assert shown.startswith("khoảng ")
    else:
        assert "khoảng" not in shown
    assert isinstance(api_count, int) and api_count > 3
    assert "/copies/request/" in page  # the rows are there all the same
