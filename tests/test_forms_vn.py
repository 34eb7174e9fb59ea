"""Forms as a Vietnamese office types them (issue: dates became 11-06-18, weekdays were
numbers where 5 meant Saturday)."""
from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import select


def test_register_dates_are_typed_and_shown_dd_mm_yyyy(login, db_session):
    """The register form pre-fills today as dd/mm/yyyy (not 2026-12-04) in a box with no
    English picker; 01/06/<year> typed is saved as 1 June; 31/02 and 2026-13-40 are refused
    with how to type a date, the form keeps what was typed and nothing is created."""
    from modules.registers.models import Register
    from modules.registers.services import today_vn

    web = login("clerk.a")
    today = today_vn()
    page = web.get("/registerview/add").get_data(as_text=True)
    box = re.search(r'<input[^>]*id="opening_date"[^>]*>', page).group(0)
    assert f'value="{today:%d/%m/%Y}"' in box and 'placeholder="dd/mm/yyyy"' in box
    assert "appbuilder_date" not in page.split('id="opening_date"')[0][-300:]
    calendar = re.search(r'data-calendar="([^"]*)"', box).group(1)
    assert "Tháng" in calendar.replace("&#34;", '"')  # month names in Vietnamese
    symbol = f"D{uuid.uuid4().hex[:6]}"
    form = {"name": f"Sổ ngày {symbol}", "book_number": f"01/{today.year}",
            "type_symbol": symbol, "year": str(today.year), "start_number": "1",
            "opening_date": f"01/06/{today.year}", "closing_date": ""}
    for wrong in (f"31/02/{today.year}", "2026-13-40", "mai"):
        r = web.post("/registerview/add", data={**form, "opening_date": wrong})
        text = r.get_data(as_text=True)
        assert r.status_code == 200 and "dd/mm/yyyy" in text, wrong
        assert f'value="{wrong}"' in text  # what was typed stays
    assert db_session.scalars(select(Register).where(Register.type_symbol == symbol)).first() \
        is None
    assert web.post("/registerview/add", data=form).status_code == 302
    created = db_session.scalars(select(Register).where(Register.type_symbol == symbol)).one()
    assert created.opening_date == dt.date(today.year, 6, 1)
    shown = web.get(f"/registerview/show/{created.id}").get_data(as_text=True)
    assert f"01/06/{today.year}" in shown
    edit = web.get(f"/registerview/edit/{created.id}").get_data(as_text=True)
    assert f'value="01/06/{today.year}"' in edit


def test_working_days_are_chosen_by_name(login, db_session, office):
    """Thứ Năm is a choice, not the number 3 (typing 5 for "thứ 5" gave Saturday)."""
    from modules.appointments.models import WorkingSession

    web = login("officeadmin.a")
    page = web.get("/workingsessionview/add").get_data(as_text=True)
    select_box = re.search(r'<select[^>]*name="weekday".*?</select>', page, re.S).group(0)
    assert re.search(r'<option[^>]*value="3"[^>]*>Thứ Năm</option>', select_box)
    assert "0 = " not in page
    r = web.post("/workingsessionview/add", data={"weekday": "3", "start_time": "19:00",
                                                  "end_time": "19:30"})
    assert r.status_code == 302
    made = db_session.scalars(select(WorkingSession).where(
        WorkingSession.office_id == office("A").id, WorkingSession.start_time == "19:00")).one()
    try:
        assert made.weekday == 3
        assert "Thứ Năm" in web.get("/workingsessionview/list/").get_data(as_text=True)
        assert web.post("/workingsessionview/add", data={
            "weekday": "9", "start_time": "19:00", "end_time": "19:30"}).status_code == 200
    finally:
        web.post(f"/workingsessionview/delete/{made.id}")
