"""Security basics: roles, OfficeAdmin limits, CSRF, login rate limit, cookies, error pages."""
import re

import pytest
from sqlalchemy import select

from tests.conftest import build_app, migrate_and_seed


def _role_id(db_session, name):
    from flask_appbuilder.security.sqla.models import Role

    return db_session.scalars(select(Role.id).where(Role.name == name)).one()


def _user(db_session, username):
    from app.users import StaffUser

    db_session.expire_all()
    return db_session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def _new_staff_form(db_session, username, role):
    return {
        "first_name": "Lý Văn", "last_name": "Thử", "username": username, "active": "y",
        "email": f"{username}@saoy.example", "roles": [str(_role_id(db_session, role))],
        "password": "Mat-Khau-2026xx", "conf_password": "Mat-Khau-2026xx",
    }


def test_office_admin_adds_staff_to_own_office(login, db_session, office):
    web = login("officeadmin.a")
    r = web.post("/staff/add", data=_new_staff_form(db_session, "clerk.a2", "Clerk"))
    assert r.status_code == 302
    user = _user(db_session, "clerk.a2")
    assert user.office_id == office("A").id
    assert [role.name for role in user.roles] == ["Clerk"]


def test_office_admin_cannot_grant_admin(login, db_session):
    web = login("officeadmin.a")
    web.post("/staff/add", data=_new_staff_form(db_session, "sneaky.admin", "Admin"))
    assert _user(db_session, "sneaky.admin") is None
    officer = _user(db_session, "officer.a")
    form = {"first_name": officer.first_name, "last_name": officer.last_name,
            "username": "officer.a", "active": "y", "email": officer.email,
            "roles": [str(_role_id(db_session, "Admin"))]}
    web.post(f"/staff/edit/{officer.id}", data=form)
    assert "Admin" not in {role.name for role in _user(db_session, "officer.a").roles}


def test_office_admin_cannot_touch_other_office_users(login, db_session):
    web = login("officeadmin.a")
    other = _user(db_session, "officer.b")
    assert web.get(f"/staff/show/{other.id}").status_code == 404
    assert web.get(f"/staff/edit/{other.id}").status_code == 404
    r = web.post(f"/resetpassword/form?pk={other.id}",
                 data={"password": "Hijack-2026xx", "conf_password": "Hijack-2026xx"})
    assert r.status_code == 404
    c = web.application.test_client()
    r = c.post("/login/", data={"username": "officer.b", "password": "saoy-demo"})
    assert r.status_code == 302  # officer.b's password was not changed


def test_user_may_hold_several_roles(login, db_session):
    web = login("officeadmin.a")
    form = _new_staff_form(db_session, "multi.a", "Officer")
    form["roles"].append(str(_role_id(db_session, "Clerk")))
    web.post("/staff/add", data=form)
    assert {r.name for r in _user(db_session, "multi.a").roles} == {"Officer", "Clerk"}


def test_passwords_are_hashed(db_session):
    user = _user(db_session, "officer.a")
    assert "saoy-demo" not in user.password and user.password.startswith("scrypt:")


def test_every_user_can_see_own_profile(login):
    for username in ("officer.a", "citizen", "supervisor"):
        assert login(username).get("/users/userinfo/").status_code == 200, username


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory):
    """CSRF on and the production login limit, on its own SQLite database."""
    data = tmp_path_factory.mktemp("strict")
    application = build_app(f"sqlite:///{data / 'strict.db'}", data, WTF_CSRF_ENABLED=True,
                            AUTH_RATE_LIMIT="5 per 5 minute", SESSION_COOKIE_SECURE=True)
    migrate_and_seed(application)
    return application


def _csrf(html):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_forms_refuse_posts_without_csrf_token(strict_app):
    c = strict_app.test_client()
    token = _csrf(c.get("/login/").get_data(as_text=True))
    assert c.post("/login/", data={"username": "officeadmin.a", "password": "saoy-demo",
                                   "csrf_token": token}).status_code == 302
    r = c.post("/officedocumenttypeview/action_post", data={"action": "withdraw", "rowid": ["1"]})
    assert r.status_code == 400
    assert "Yêu cầu không hợp lệ" in r.get_data(as_text=True)


def test_login_is_rate_limited(strict_app):
    c = strict_app.test_client()
    token = _csrf(c.get("/login/").get_data(as_text=True))
    codes = [c.post("/login/", data={"username": "officer.a", "password": "wrong",
                                     "csrf_token": token},
                    environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code for _ in range(7)]
    assert codes[-1] == 429
    assert 429 not in codes[:5]


def test_a_failed_sign_in_tells_nothing_of_whether_the_account_exists(app, monkeypatch):
    """Server-Timing's pieces counted an answer's statements: a failed sign-in with a
    registered identity number ran 13 and committed, one with an unknown number ran 6 —
    enough for anyone to list who has an account. However the operator set the pieces,
    an anonymous caller gets the whole time only, the same header either way."""
    from app import timing
    from app.demo import CITIZEN_IDENTITY

    monkeypatch.setitem(app.config, "SERVER_TIMING_PIECES", True)
    seen = {}
    for username in (CITIZEN_IDENTITY, "079299999999", "leader.a", "khong.co.ai"):
        r = app.test_client().post("/login/", data={"username": username,
                                                    "password": "mat-khau-sai"})
        assert r.status_code == 302 and "/login" in r.location
        seen[username] = set(timing.parse(r.headers["Server-Timing"]))
    assert all(names == {"app"} for names in seen.values()), seen


def test_session_cookie_is_protected(strict_app):
    c = strict_app.test_client()
    r = c.get("/login/")
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_unknown_page_is_a_friendly_vietnamese_404(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert "không tồn tại" in r.get_data(as_text=True)


def test_server_error_shows_no_trace(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'boom.db'}", tmp_path)

    @app.route("/boom-test")
    def boom():
        raise RuntimeError("SELECT secret FROM ab_user -- stack detail")

    r = app.test_client().get("/boom-test")
    body = r.get_data(as_text=True)
    assert r.status_code == 500
    assert "Hệ thống gặp sự cố" in body
    assert "SELECT" not in body and "Traceback" not in body and "RuntimeError" not in body


def test_api_errors_are_json(client):
    r = client.get("/api/v1/office/999999")
    assert r.status_code == 404 and r.is_json
