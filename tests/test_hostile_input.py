"""Hostile input on every door: a clear 4xx, nothing stored, nothing crashes later."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import build_app, migrate_and_seed, user_named
from tests.hostile_scans import corpus, encrypted_pdf
from tests.pdfs import scan_pdf
from tests.test_copies import CITIZEN_IDENTITY, _stored_files, _submitted, upload


@pytest.fixture(scope="session")
def hostile_scans():
    """Built once: the compression bombs take a few seconds."""
    files = corpus()
    files["encrypted"] = (encrypted_pdf(), "encrypted")
    good = scan_pdf(pages=1)
    files["over_the_size_limit"] = (good + b"%" + b"x" * (31 * 2**20) + b"\n%%EOF\n", "MB")
    return files


@pytest.fixture()
def doc_type(db_session, office):
    from app.offices.services import offered_document_types

    return offered_document_types(db_session, office("A").id)[0]


def test_the_corpus_has_at_least_forty_hostile_files(hostile_scans):
    assert len(hostile_scans) >= 40


@pytest.mark.parametrize("name", sorted(corpus(bomb_size=16 * 2**20)) + [
    "encrypted", "over_the_size_limit"])
def test_a_hostile_scan_is_refused_clearly_and_leaves_nothing(app, api, db_session, doc_type,
                                                              hostile_scans, name):
    from modules.copies.models import CopyRequest

    data, words = hostile_scans[name]
    files_before = _stored_files(app)
    rows_before = db_session.scalar(select(func.count(CopyRequest.id)))
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers={**headers, "Accept-Language": "en"},
                    content_type="multipart/form-data", data={
                        "scan": upload(data, f"{name}.pdf"), "document_type_id": doc_type.id,
                        "identity_number": CITIZEN_IDENTITY})
    assert 400 <= r.status_code < 500, (name, r.status_code, r.get_data(as_text=True)[:300])
    message = r.get_json()["message"].lower()
    assert any(w.lower() in message for w in words.split("|")), (name, r.get_json())
    assert db_session.scalar(select(func.count(CopyRequest.id))) == rows_before
    assert _stored_files(app) == files_before


def test_names_are_shown_as_names_never_as_paths(app, api, db_session, doc_type):
    from modules.copies.models import CopyRequest

    client, headers = api("officer.a")
    for sent, kept in (("../../../etc/passwd.pdf", "passwd.pdf"),
                       ("C:\\Users\\a\\giấy khai sinh (bản gốc).pdf",
                        "giấy khai sinh (bản gốc).pdf")):
        r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                        data={"scan": upload(scan_pdf(), sent), "document_type_id": doc_type.id,
                              "identity_number": CITIZEN_IDENTITY})
        assert r.status_code == 201
        assert db_session.get(CopyRequest, r.get_json()["id"]).scan_filename == kept


def test_an_accepted_scan_signs(app, api, login, db_session, doc_type):
    """What intake accepts, the leader can sign: the file the signer could not handle is
    refused at the door instead (see the corpus)."""
    pk = _submitted(app, db_session, doc_type)
    r = login("leader.a").post(f"/copies/request/{pk}/do/sign")
    assert r.status_code == 302
    db_session.expire_all()
    from modules.copies.models import CopyRequest

    assert db_session.get(CopyRequest, pk).state.value == "signed"


# --- ordinary bad input: 4xx, never 500 ---------------------------------------------------

def test_bad_query_and_body_values_are_4xx(app, api, client, db_session, office, doc_type):
    officer, oh = api("officer.a")
    for query in ("page=99999999999999999999", "date_to=9999-12-31", "date_from=0001-01-01",
                  "document_type_id=1e20", "q=" + "x" * 500):
        r = officer.get(f"/api/v1/copy/?{query}", headers=oh)
        assert r.status_code == 422 and r.get_json()["message"], query
    a = office("A").id
    for query in ("office_id=1e20", f"office_id={a}&date_to=9999-12-31",
                  f"office_id={a}&document_type_id=10%C2%B3%E2%81%B0"):
        assert 400 <= client.get(f"/api/v1/appointment/slots?{query}").status_code < 500
    pk = _submitted(app, db_session, doc_type)
    leader, lh = api("leader.a")
    for body in ([], [None, None], {"rect": "nan,inf,1e308,0", "page": 1},
                 {"page": 1, "rect": [0, 0, 1e308, 1e308]}, {"reason": {"a": 1}}):
        r = leader.post(f"/api/v1/copy/{pk}/sign", headers=lh, data=json.dumps(body),
                        content_type="application/json")
        assert r.status_code in (400, 422), body
    clerk, ch = api("clerk.a")
    assert clerk.post(f"/api/v1/copy/{pk}/pay", headers=ch,
                      json={"receipt_number": ["a", "b"]}).status_code == 422
    assert clerk.post(f"/api/v1/copy/{pk}/seal", headers=ch,
                      json={"register_id": "10³⁰"}).status_code in (409, 422)
    assert clerk.get("/api/v1/register/?q=((((", headers=ch).status_code == 400
    for path in ("/api/v1/copy/26384721534206470072041472", "/api/v1/register/99999999999999",
                 "/api/v1/office_document_type/36968928634908837289215918080"):
        assert clerk.get(path, headers=ch).status_code == 404, path
    citizen, hh = api("citizen")
    for body in ({"start": "0001-01-01T00:00:00", "office_id": a, "document_type_id": 1},
                 {"start": "2027-01-04T08:00:00", "office_id": a,
                  "document_type_id": doc_type.id, "note": {"x": 1}}, [1, 2]):
        r = citizen.post("/api/v1/appointment/", headers=hh, data=json.dumps(body),
                         content_type="application/json")
        assert r.status_code in (400, 404, 409, 422), body
    for action in ("cancel", "reschedule"):
        r = citizen.post(f"/api/v1/appointment/1/{action}", headers=hh, data="[null]",
                         content_type="application/json")
        assert 400 <= r.status_code < 500


def test_fab_views_answer_unknown_action_names_with_404(login):
    admin = login("admin")
    for route in ("/users", "/roles", "/officeview", "/documenttypeview",
                  "/messagetemplateview", "/auditeventview", "/staff", "/registerview",
                  "/signingkeyview"):
        assert admin.post(f"{route}/action/no_such_action/1").status_code == 404, route
        r = admin.post(f"{route}/action_post", data={"action": "nope", "rowid": ["1"]})
        assert r.status_code == 404, route


def test_settings_have_bounds_and_bodies_have_a_size(app, login, client, db_session, office):
    from modules.appointments.models import AppointmentSettings

    web = login("officeadmin.a")
    pk = db_session.scalars(select(AppointmentSettings.id).where(
        AppointmentSettings.office_id == office("A").id)).one()
    for field, value in (("horizon_days", "1000000000"), ("min_notice_hours", "1000000000000")):
        form = {"slot_minutes": "15", "capacity": "3", "horizon_days": "30",
                "min_notice_hours": "2", "cancel_cutoff_hours": "2", field: value}
        r = web.post(f"/appointmentsettingsview/edit/{pk}", data=form)
        assert r.status_code == 200 and "alert-danger" in r.get_data(as_text=True)
    db_session.expire_all()
    settings = db_session.get(AppointmentSettings, pk)
    assert settings.horizon_days == 30 and settings.min_notice_hours == 2
    assert client.get(f"/api/v1/appointment/slots?office_id={office('A').id}").status_code \
        == 200
    big = client.post("/api/v1/citizen/", data=b'{"a": "' + b"x" * (3 * 2**20) + b'"}',
                      content_type="application/json")
    assert big.status_code == 413
    r = client.post("/api/v1/citizen/", json={
        "full_name": "Lê Văn Dài", "identity_number": "079203887766", "phone": "0912345678",
        "email": "a" * 100_000 + "@example.vn", "password": "mat-khau-dai-123"})
    assert r.status_code in (413, 422)


# --- exports: text stays text ------------------------------------------------------------

def test_a_formula_in_a_name_is_exported_as_text(app, api, login, db_session, doc_type,
                                                 tmp_path):
    import subprocess

    from openpyxl import load_workbook

    evil = '=HYPERLINK("http://evil.example/x","Bấm vào đây")'
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                    data={"scan": upload(scan_pdf()), "document_type_id": doc_type.id,
                          "email": "khach@example.vn", "name": evil})
    assert r.status_code == 201
    xlsx = login("officer.a").get("/copies/export.xlsx?psize_CopyRequestView=100")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    cells = [c for row in sheet.iter_rows() for c in row if c.value == evil]
    assert cells and all(c.data_type == "s" for c in cells)
    path = tmp_path / "export.xlsx"
    path.write_bytes(xlsx.data)
    subprocess.run(["soffice", "--headless", "--convert-to", "csv", "--outdir", str(tmp_path),
                    str(path)], check=True, capture_output=True, timeout=120)
    text = (tmp_path / "export.csv").read_text(encoding="utf-8", errors="replace")
    assert "HYPERLINK" in text  # shown as the text it is, not evaluated into "Bấm vào đây"


# --- accounts ------------------------------------------------------------------------------

def test_thirty_wrong_passwords_lock_the_account_on_both_logins(app, db_session):
    from app.users import StaffUser

    client = app.test_client()
    username = "officer.b"
    for n in range(30):
        r = client.post("/api/v1/security/login", json={
            "username": username, "password": f"wrong-{n}", "provider": "db"},
            environ_base={"REMOTE_ADDR": f"10.3.{n}.1"})  # from thirty addresses
        assert r.status_code == 401
    right = client.post("/api/v1/security/login", json={
        "username": username, "password": "saoy-demo", "provider": "db"})
    assert right.status_code == 401  # locked, whatever the address
    web = app.test_client().post("/login/", data={"username": username,
                                                  "password": "saoy-demo"})
    assert "/login" in web.headers.get("Location", "/login")
    user = db_session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
    db_session.refresh(user)
    assert user.locked_until and user.locked_until > dt.datetime.utcnow()
    user.locked_until, user.fail_login_count = None, 0
    db_session.commit()
    assert app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": "saoy-demo", "provider": "db"}).status_code == 200


@pytest.mark.parametrize("password", ["        ", "password", "12345678", "matkhau123"])
def test_weak_passwords_are_refused(client, password):
    from tests.test_appointments import new_identity

    r = client.post("/api/v1/citizen/", json={
        "full_name": "Lê Văn Yếu", "identity_number": new_identity(), "phone": "0912345678",
        "password": password})
    assert r.status_code == 422 and "password" in r.get_json()["errors"]


def test_the_identity_number_is_not_a_password(client):
    from tests.test_appointments import new_identity

    identity = new_identity()
    r = client.post("/api/v1/citizen/", json={
        "full_name": "Lê Văn Số", "identity_number": identity, "phone": "0912345678",
        "password": f"x{identity}"})
    assert r.status_code == 422 and "password" in r.get_json()["errors"]


def test_a_password_change_ends_old_sessions_and_tokens(app, login, db_session):
    username = f"clerk.t{uuid.uuid4().hex[:6]}"
    sm = app.appbuilder.sm
    with app.app_context():
        user = sm.add_user(username, "Lê", "Thử", f"{username}@saoy.example",
                           [sm.find_role("Clerk")], "old-pass-2026!")
        user.office_id = user_named(db_session, "clerk.a").office_id
        sm.update_user(user)
        user_id = user.id
    web = login(username, "old-pass-2026!")
    token = app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": "old-pass-2026!", "provider": "db"}).get_json()[
        "access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.get("/copies-to-seal/list/").status_code == 200
    assert app.test_client().get("/api/v1/copy/", headers=bearer).status_code == 200
    with app.app_context():
        sm.reset_password(user_id, "new-pass-2026!")
    assert web.get("/copies-to-seal/list/").status_code in (302, 401)
    assert app.test_client().get("/api/v1/copy/", headers=bearer).status_code == 401
    assert login(username, "new-pass-2026!").get("/copies-to-seal/list/").status_code == 200


def test_logging_out_takes_a_post(app, login):
    web = login("officer.a")
    assert web.get("/logout/").status_code == 200  # a confirmation page, still signed in
    assert web.get("/copies/list/").status_code == 200
    assert web.post("/logout/").status_code == 302
    assert web.get("/copies/list/").status_code in (302, 401)
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] <= 24 * 3600


# --- headers and leaks -------------------------------------------------------------------

def test_every_page_carries_security_headers_and_no_banner(client):
    for path in ("/login/", "/verify/", "/api/v1/office/", "/no/such/page"):
        headers = client.get(path).headers
        assert "frame-ancestors" in headers["Content-Security-Policy"], path
        assert headers["X-Frame-Options"] == "SAMEORIGIN"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Werkzeug" not in headers.get("Server", "") and "Python" not in headers.get(
            "Server", "")


def test_a_read_only_file_store_names_no_path(app, api, doc_type, monkeypatch):
    from app.storage import FileStore

    def refuse(self, chunks, max_bytes=None):
        raise PermissionError(13, "Permission denied", "/srv/saoy/secret/files/tmp/x")

    monkeypatch.setattr(FileStore, "put_stream", refuse)
    client, headers = api("officer.a")
    r = client.post("/api/v1/copy/", headers=headers, content_type="multipart/form-data",
                    data={"scan": upload(scan_pdf()), "document_type_id": doc_type.id,
                          "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == 503 and "/srv" not in r.get_data(as_text=True)


def test_next_never_leaves_the_site(app, login, db_session, doc_type):
    pk = _submitted(app, db_session, doc_type)
    r = login("officer.a").post(f"/copies/request/{pk}/do/pay",
                                data={"receipt": "BL-1", "next": "https://evil.example/"})
    assert r.status_code == 302 and "evil" not in r.headers["Location"]
    r = app.test_client().get("/login/?next=https://evil.example/")
    assert "evil.example" not in r.headers.get("Location", "")


# --- every GET door of the site, crawled with ids that are not there ---------------------

@pytest.fixture(scope="module")
def crawl_app(tmp_path_factory):
    data = tmp_path_factory.mktemp("crawl")
    application = build_app(f"sqlite:///{data / 'crawl.db'}", data)
    migrate_and_seed(application)
    return application


def test_a_crawl_of_every_page_with_strange_ids_finds_no_server_error(crawl_app):
    failures = []
    values = ("999999999", "abc", "-1", "1e20", "%00")
    for username in ("admin", "officer.a", "citizen"):
        client = crawl_app.test_client()
        client.post("/login/", data={"username": username, "password": "saoy-demo"})
        for rule in crawl_app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in ("static", "appbuilder.static") \
                    or "logout" in rule.rule:
                continue
            for value in values if rule.arguments else ("",):
                path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", value, rule.rule)
                r = client.get(path)
                if r.status_code >= 500:
                    failures.append((username, path, r.status_code))
    assert failures == []
