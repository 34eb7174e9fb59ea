"""Test world: the demo offices and users on SQLite and, when SAOY_TEST_DATABASE_URL
is set, on a PostgreSQL database created for this run and dropped afterwards."""
from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

warnings.filterwarnings("ignore", category=DeprecationWarning)
os.environ.setdefault("SAOY_DATA_DIR", str(Path("/tmp") / f"saoy-test-{os.getpid()}"))

PG_URL = os.environ.get("SAOY_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


def _create_pg_database() -> str:
    """A fresh database on the test server; the name is unique per run and worker."""
    base = make_url(PG_URL)
    name = f"saoy_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def backend_url_factory(tmp_path_factory):
    """Make an empty database of a backend; PostgreSQL ones are dropped at the end."""
    made: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'saoy.db'}"
        if not PG_URL:
            pytest.skip("PostgreSQL variant skipped: SAOY_TEST_DATABASE_URL is not set")
        url = _create_pg_database()
        made.append(url)
        return url

    yield make
    for url in made:
        _drop_pg_database(url)


def build_app(database_url: str, data_dir: Path, **overrides):
    from app import create_app

    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "DATA_DIR": str(data_dir),
        "WTF_CSRF_ENABLED": False,
        "AUTH_RATE_LIMIT": "10000 per minute",
        "VERIFY_RATE_LIMIT": "10000 per minute",
        "SCHEDULER_ENABLED": False,
        "SERVER_NAME": None,
        "DEMO_MODE": True,  # the demo PKI's root is trusted, as with `make demo`
    }
    config.update(overrides)
    return create_app(config)


def migrate_and_seed(app) -> None:
    from flask_migrate import upgrade

    from app.demo import load_demo

    with app.app_context():
        upgrade()
        load_demo()


@pytest.fixture(scope="session", params=BACKENDS)
def app(request, backend_url_factory, tmp_path_factory):
    """The demo world on one backend (the whole session shares it; tests add rows)."""
    url = backend_url_factory(request.param)
    application = build_app(url, tmp_path_factory.mktemp("data"))
    application.config["SAOY_BACKEND"] = request.param
    migrate_and_seed(application)
    yield application
    with application.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def login(app):
    """``login("officer.a")`` → a test client with that user's session."""

    def do(username: str, password: str = "saoy-demo"):
        c = app.test_client()
        r = c.post("/login/", data={"username": username, "password": password})
        assert r.status_code == 302, f"login of {username} failed"
        return c

    return do


@pytest.fixture()
def api(app):
    """``api("leader.a")`` → (client, headers) with a JWT bearer token."""

    def do(username: str, password: str = "saoy-demo"):
        c = app.test_client()
        r = c.post("/api/v1/security/login",
                   json={"username": username, "password": password, "provider": "db"})
        assert r.status_code == 200, r.get_json()
        return c, {"Authorization": f"Bearer {r.get_json()['access_token']}"}

    return do


def engine_of(app):
    from app.extensions import db

    with app.app_context():
        return db.engine


def user_named(session, username: str):
    """A demo user, loaded in ``session``."""
    from sqlalchemy import select

    from app.users import StaffUser

    return session.scalars(select(StaffUser).where(StaffUser.username == username)).one()


@pytest.fixture()
def db_session(app):
    """A session of its own for building the world and checking results.

    No app context stays pushed: requests made meanwhile by test clients must get
    their own ``g`` (a shared one would carry the logged-in user across clients).
    """
    from sqlalchemy.orm import Session

    session = Session(bind=engine_of(app))
    yield session
    session.rollback()
    session.close()


@pytest.fixture()
def office(db_session):
    """``office("A")`` → the demo commune A or B."""
    from sqlalchemy import select

    from app.demo import OFFICE_A, OFFICE_B
    from app.offices.models import Office

    def get(letter: str) -> Office:
        code = {"A": OFFICE_A, "B": OFFICE_B}[letter]
        return db_session.scalars(select(Office).where(Office.code == code)).one()

    return get
