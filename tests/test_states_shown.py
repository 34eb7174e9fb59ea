"""What people read about a request, a message and a field says the truth (#28, points 6
and 7): a refused request is not "in progress", a leader's internal return is not news for
the citizen, the officer is told which request came back and where it is, a withheld
button says why, a sent message reads "sent", a portal message names its person, a REST
field with no description has none, and coded values read as words."""
from __future__ import annotations

import io

from sqlalchemy import select

from tests.conftest import user_named
from tests.test_copies import do, intake_web, request_id_from, state_of


def _messages_about(db_session, pk, kind=None):
    from app.notifications.models import Message

    db_session.expire_all()
    stmt = select(Message).where(Message.related_id == pk,
                                 Message.related_type == "CopyRequest")
    if kind:
        stmt = stmt.where(Message.kind == kind)
    return list(db_session.scalars(stmt))


def test_a_leaders_return_tells_the_officer_which_request_and_not_the_citizen(
        app, login, db_session, doc_type):
    officer, leader, citizen = login("officer.a"), login("leader.a"), login("citizen")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    assert do(leader, pk, "return", ground="2", reason="Trang 1 mờ").status_code == 302

    citizen_id = user_named(db_session, "citizen").id
    officer_id = user_named(db_session, "officer.a").id
    sent = _messages_about(db_session, pk)
    assert [m for m in sent if m.recipient_user_id == citizen_id] == []  # nothing to tell
    to_officer = [m for m in sent if m.recipient_user_id == officer_id]
    assert len(to_officer) == 1
    assert f"#{pk}" in to_officer[0].subject and "Trang 1 mờ" in to_officer[0].body_text
    assert f"/copies/request/{pk}" in to_officer[0].body_text  # the way to it

    mine = citizen.get("/mycopies/").get_data(as_text=True)
    assert f"#{pk}" in mine and "Đang xử lý" in mine
    assert "Trang 1 mờ" not in mine and "Bị trả lại" not in mine


def test_a_refused_request_is_not_in_progress_and_the_citizen_is_told_why(
        app, login, db_session, doc_type):
    from modules.copies.models import State

    officer, leader, citizen = login("officer.a"), login("leader.a"), login("citizen")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    do(leader, pk, "return", ground="3", reason="Bản chính đóng dấu mật")
    assert do(officer, pk, "cancel", reason="Bản chính đóng dấu mật").status_code == 302
    assert state_of(db_session, pk).state is State.cancelled

    refused = _messages_about(db_session, pk, "copy_refused")
    assert refused and all("Bản chính đóng dấu mật" in m.body_text for m in refused)
    mine = citizen.get("/mycopies/").get_data(as_text=True)
    in_progress = mine.split("Hồ sơ đang xử lý")[1].split("</table>")[0] \
        if "Hồ sơ đang xử lý" in mine else ""
    assert f"#{pk}" not in in_progress
    not_done = mine.split("Yêu cầu không được chứng thực")[1]
    assert f"#{pk}" in not_done and "Bản chính đóng dấu mật" in not_done

    # the officer's list: a finished request is due no more
    listing = officer.get(f"/copies/list/?_flt_0_id={pk}").get_data(as_text=True)
    row = listing.split(f'/copies/request/{pk}"')[1].split("</tr>")[0]
    assert "Đã hủy" in row and "overdue" not in row
    due = state_of(db_session, pk).due_text
    assert due not in row


def test_the_clerk_is_told_why_delivery_is_withheld(app, login, db_session, doc_type,
                                                    register_of):
    officer, leader, clerk = login("officer.a"), login("leader.a"), login("clerk.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    do(leader, pk, "sign")
    do(leader, pk, "forward")
    do(clerk, pk, "seal", register_id=register_of("A").id)
    page = clerk.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="do-deliver"' not in page
    withheld = page.split('id="withheld-deliver"')[1].split("</div>")[0]
    assert "disabled" in withheld and "chưa nộp lệ phí" in withheld
    do(clerk, pk, "pay", receipt="BL-1")
    page = clerk.get(f"/copies/request/{pk}").get_data(as_text=True)
    assert 'id="do-deliver"' in page and 'id="withheld-deliver"' not in page
    # the officer (who cannot deliver) is not shown the clerk's button at all
    assert 'withheld-deliver' not in officer.get(f"/copies/request/{pk}").get_data(as_text=True)


def test_messages_read_sent_and_portal_messages_name_their_person(app, login, db_session,
                                                                  doc_type):
    from app.notifications.models import Message, Status

    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    do(leader, pk, "return", reason="Quét lại trang 1")
    message = _messages_about(db_session, pk, "copy_returned_to_officer")[0]
    message.status = Status.sent
    db_session.commit()
    listing = officer.get("/outboxview/list/?_flt_0_kind=copy_returned_to_officer")
    html = listing.get_data(as_text=True)
    person = user_named(db_session, "officer.a")
    row = html.split(f"/outboxview/show/{message.id}")[1].split("</tr>")[0]
    assert person.username in row and f"{person.first_name}" in row
    assert f">{person.id}<" not in row.replace(" ", "")  # not the bare user id
    assert "Đã gửi" in row and "Thời điểm gửi" not in row
    shown = officer.get(f"/outboxview/show/{message.id}").get_data(as_text=True)
    assert "Thời điểm gửi" in shown  # the column sent_at keeps its own words
    assert db_session.get(Message, message.id).recipient == str(person.id)


def test_rest_info_gives_no_catalogue_header_as_a_description(app, api):
    for username, path in (("clerk.a", "/api/v1/register/_info"),
                           ("admin", "/api/v1/office/_info"),
                           ("officeadmin.a", "/api/v1/office_document_type/_info")):
        client, headers = api(username)
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code)
        assert "Project-Id-Version" not in r.get_data(as_text=True), path
    client, headers = api("clerk.a")
    info = client.get("/api/v1/register/_info", headers=headers).get_json()
    fields = {f["name"]: f for f in info["add_columns"]}
    assert fields["start_number"]["description"]  # the one it was given, translated
    assert "Project-Id-Version" not in fields["start_number"]["description"]
    assert fields["name"]["description"] == ""


def test_filter_operators_and_register_status_read_as_words(app, login, register_of):
    from openpyxl import load_workbook

    clerk = login("clerk.a")
    register_of("A")
    page = clerk.get("/copies/list/").get_data(as_text=True)
    assert "Liên kết" not in page and "Không liên kết" not in page
    xlsx = clerk.get("/registerview/export.xlsx")
    assert xlsx.status_code == 200
    cells = [str(c) for row in load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(
        values_only=True) for c in row if c is not None]
    assert not [c for c in cells if "RegisterStatus" in c or c in ("open", "closed")]
    assert "Đang mở" in cells
    csv = clerk.get("/registerview/export.csv").get_data(as_text=True)
    assert "RegisterStatus" not in csv and "Đang mở" in csv
