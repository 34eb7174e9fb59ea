"""Office A's users get 404 for office B's records on every route type (web and REST)."""
import pytest
from sqlalchemy import select

from tests.scoping import ScopedCase, assert_foreign_record_is_404, assert_own_record_is_reachable

OFFERED_TYPES = ScopedCase(
    view="/officedocumenttypeview",
    api="/api/v1/office_document_type",
    action="withdraw",
    put_body={"note": "hijacked"},
    edit_form={"note": "hijacked", "active": "y"},
    list_marker="NOTE-OF-OFFICE-B",
)


def _offered_row(db_session, office, letter, note):
    from app.offices.models import OfficeDocumentType

    row = db_session.scalars(select(OfficeDocumentType).where(
        OfficeDocumentType.office_id == office(letter).id).order_by(OfficeDocumentType.id)).first()
    row.note, row.active = note, True
    db_session.commit()
    return row.id


def test_office_admin_of_a_gets_404_for_office_b(login, api, db_session, office):
    from app.offices.models import OfficeDocumentType

    foreign = _offered_row(db_session, office, "B", "NOTE-OF-OFFICE-B")
    own = _offered_row(db_session, office, "A", "NOTE-OF-OFFICE-A")
    web = login("officeadmin.a")
    rest, headers = api("officeadmin.a")

    assert_foreign_record_is_404(web, rest, headers, OFFERED_TYPES, foreign)
    db_session.expire_all()
    row = db_session.get(OfficeDocumentType, foreign)
    assert row is not None and row.active and row.note == "NOTE-OF-OFFICE-B"

    assert_own_record_is_reachable(web, rest, headers, OFFERED_TYPES, own)
    db_session.expire_all()
    assert db_session.get(OfficeDocumentType, own).active is False  # the action did work
    html = web.get("/officedocumenttypeview/list/").get_data(as_text=True)
    assert "NOTE-OF-OFFICE-A" in html and "NOTE-OF-OFFICE-B" not in html


def test_new_rows_take_the_users_office_whatever_is_posted(api, db_session, office):
    from app.offices.models import DocumentType, OfficeDocumentType

    dt = DocumentType(code="SCOPE-NEW", name_vi="Loại thử", name_en="Test type", active=True)
    db_session.add(dt)
    db_session.commit()
    rest, headers = api("officeadmin.a")
    r = rest.post("/api/v1/office_document_type/", headers=headers,
                  json={"document_type": dt.id, "office_id": office("B").id})
    assert r.status_code in (201, 400, 422)
    rows = db_session.scalars(select(OfficeDocumentType).where(
        OfficeDocumentType.document_type_id == dt.id)).all()
    assert all(row.office_id == office("A").id for row in rows)


def test_supervisor_sees_every_office_under_the_province(login, db_session, office):
    from app.offices.models import Office

    web = login("supervisor")
    html = web.get("/officeview/list/").get_data(as_text=True)
    assert office("A").name in html and office("B").name in html
    outside = Office(code="OUTSIDE-1", kind="province", name="Sở Tư pháp tỉnh Khác", active=True)
    db_session.add(outside)
    db_session.commit()
    assert web.get(f"/officeview/show/{outside.id}").status_code == 404


def test_officer_without_permission_gets_403_not_data(login, office):
    web = login("officer.a")
    assert web.get("/officedocumenttypeview/list/").status_code == 403


@pytest.mark.parametrize("path", ["/staff/list/", "/users/list/"])
def test_office_admin_sees_only_own_staff(login, path):
    web = login("officeadmin.a")
    r = web.get(path)
    if path == "/users/list/":
        assert r.status_code == 403  # the Admin-wide user list is not theirs
        return
    html = r.get_data(as_text=True)
    assert "officer.a" in html and "officer.b" not in html and "supervisor" not in html
