"""Offices and document types: public REST reads, admin writes, demo world."""
from sqlalchemy import select

from app.demo import USERS


def test_every_demo_user_can_log_in(client):
    for username, *_ in USERS:
        r = client.post("/login/", data={"username": username, "password": "saoy-demo"})
        assert r.status_code == 302 and "/login" not in r.headers["Location"], username
        client.get("/logout/")


def test_wrong_password_is_refused(client):
    r = client.post("/login/", data={"username": "officer.a", "password": "nope"},
                    follow_redirects=True)
    assert "Sai tên đăng nhập hoặc mật khẩu" in r.get_data(as_text=True)


def test_public_office_list_shows_active_offices_only(client, db_session, office):
    from app.offices.models import Office, OfficeKind

    db_session.add(Office(code="INACTIVE-1", kind=OfficeKind.commune, name="Closed commune",
                          active=False, parent_id=office("A").parent_id))
    db_session.commit()
    r = client.get("/api/v1/office/?q=(page_size:100)")
    assert r.status_code == 200
    rows = r.get_json()["result"]
    codes = {row["code"] for row in rows}
    assert {"79", "79-760", "26734", "26740"} <= codes
    assert "INACTIVE-1" not in codes
    assert set(rows[0]) == {"id", "code", "name", "kind", "parent_id"}


def test_document_types_of_an_office(client, db_session, office):
    from app.offices.models import OfficeDocumentType

    a = office("A")
    row = db_session.scalars(select(OfficeDocumentType).where(
        OfficeDocumentType.office_id == a.id)).first()
    row.active = False
    db_session.commit()
    try:
        r = client.get(f"/api/v1/document_type/?office_id={a.id}&q=(page_size:100)")
        assert r.status_code == 200
        ids = {t["id"] for t in r.get_json()["result"]}
        assert row.document_type_id not in ids
        assert len(ids) >= 5
        r = client.get(f"/api/v1/document_type/?office_id={office('B').id}&q=(page_size:100)")
        assert row.document_type_id in {t["id"] for t in r.get_json()["result"]}
    finally:
        row.active = True
        db_session.commit()


def test_anonymous_cannot_write_offices(client):
    r = client.post("/api/v1/office/", json={"code": "X", "name": "X", "kind": "commune"})
    assert r.status_code == 401


def test_admin_creates_office_through_api(api, db_session):
    from app.offices.models import Office

    c, headers = api("admin")
    r = c.post("/api/v1/office/", headers=headers,
               json={"code": "NEW-1", "name": "UBND Xã Mới", "kind": "commune", "active": True})
    assert r.status_code == 201, r.get_json()
    created = db_session.scalars(select(Office).where(Office.code == "NEW-1")).one()
    assert created.name == "UBND Xã Mới"


def test_officer_cannot_create_office(api):
    c, headers = api("officer.a")
    r = c.post("/api/v1/office/", headers=headers,
               json={"code": "NEW-2", "name": "X", "kind": "commune"})
    assert r.status_code in (401, 403)


def test_demo_data_twice_keeps_data(app, db_session):
    from app.demo import load_demo
    from app.offices.models import Office

    before = db_session.scalar(select(Office.id).where(Office.code == "26734"))
    with app.app_context():
        assert load_demo() == 0
    assert db_session.scalar(select(Office.id).where(Office.code == "26734")) == before
