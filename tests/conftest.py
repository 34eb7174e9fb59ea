"""Test world: the demo offices and users on SQLite and, when SAOY_TEST_DATABASE_URL
is set, on a PostgreSQL database created for this run and dropped afterwards."""
from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
import warnings
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

pytest_plugins = ["tests.browser"]  # the live app and Chromium, for the browser tests

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
        open_signing_session(app, "leader.a")


def open_signing_session(app, username: str, days: int = 3) -> None:
    """The demo leader whose key the server holds signs all day in the tests: a signing
    session as their one-time code would open (tests of the code itself close it)."""
    from sqlalchemy.orm import Session

    from app.timeutil import utcnow
    from modules.signing.models import SecondFactor

    with Session(bind=engine_of(app)) as session:
        user = user_named(session, username)
        factor = session.scalars(select(SecondFactor).where(
            SecondFactor.user_id == user.id)).one()
        factor.session_until = utcnow() + dt.timedelta(days=days)
        factor.session_stamp = user.credentials_changed_at
        factor.failures, factor.locked_until = 0, None
        session.commit()


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


@pytest.fixture()
def doc_type(db_session, office):
    from app.offices.services import offered_document_types

    return offered_document_types(db_session, office("A").id)[0]


@pytest.fixture()
def register_of(db_session, office):
    """The open demo register of an office (``register_of("A")``)."""
    from modules.registers.models import Register, RegisterStatus

    def get(letter="A"):
        return db_session.scalars(select(Register).where(
            Register.office_id == office(letter).id, Register.status == RegisterStatus.open)
            .order_by(Register.id)).first()

    return get


@pytest.fixture(scope="session")
def hsm(tmp_path_factory):
    """One SoftHSM2 store for the whole run, its tokens made before any PKCS#11 use:
    the library reads its configuration once per process.  Its certificates come from
    a PKI of their own, whose root the tests add as an extra trust anchor."""
    from modules.signing.pki import DemoPki
    from tests.softhsm import make_token, softhsm_lib

    if softhsm_lib() is None:
        pytest.skip("SoftHSM2 is not installed")
    directory = tmp_path_factory.mktemp("softhsm")
    pki = DemoPki(directory / "pki")
    leader = pki.issue("hsm-leader", "Lê Thị Token", "UBND Phường Sài Gòn", "CCCD:079190000099")
    agent = pki.issue("agent-leader", "Vũ Thị Giang", "UBND Phường Tân Định",
                      "CCCD:079185000022")
    env = make_token(directory, "saoy-test", leader.key_pem_path, leader.cert_pem_path,
                     "leader-key")
    make_token(directory, "agent-token", agent.key_pem_path, agent.cert_pem_path, "sign-key")
    os.environ["SOFTHSM2_CONF"] = env["SOFTHSM2_CONF"]
    return {**env, "root": str(pki.root_pem), "agent_cert": str(agent.cert_pem_path)}


# --- a month of supervision data (dashboard, statistics, exports) ----------------------

#: The tests' own month, far from the other tests' rows (they are made today).
MARCH_2021 = {"from": "2021-03-01", "to": "2021-03-31"}


def _vn(day: int, hour: int = 9) -> dt.datetime:
    from app.timeutil import to_utc

    return to_utc(dt.datetime(2021, 3, day, hour))


@pytest.fixture()
def world(app, db_session, office):
    """Requests in March 2021 in offices A and B (under the supervisor) and in office C of
    another province; register entries of the same month; appointments."""
    from app.offices.models import DocumentType, Office, OfficeKind
    from modules.appointments.models import Appointment, AppointmentStatus
    from modules.copies.models import CopyRequest, State
    from modules.registers.models import EntryStatus, Register, RegisterEntry, RegisterStatus
    from modules.signing.models import SignedDocument, Stage

    session = db_session
    other = Office(kind=OfficeKind.commune, code="TEST-OTHER-PROVINCE", name="UBND Xã Ngoài Tỉnh")
    session.add(other)
    session.flush()
    types = session.scalars(select(DocumentType).order_by(DocumentType.id)).all()
    officer = user_named(session, "officer.a")
    made: dict[str, list[int]] = {"A": [], "B": [], "C": []}

    def request(where: Office, letter: str, *, day: int, state=State.delivered,
                delivered_hours: float | None = 24, fee: int = 4000, ground=None, kind=0):
        doc = SignedDocument(office_id=where.id, verify_code=secrets.token_hex(8),
                             access_code="x", stage=Stage.sealed, scan_sha256="0" * 64,
                             current_sha256="0" * 64)
        session.add(doc)
        session.flush()
        received = _vn(day)
        row = CopyRequest(
            office_id=where.id, state=state, document_type_id=types[kind].id, copies=2,
            pages=3, document_id=doc.id, fee=fee, fee_paid=fee > 0,
            paid_at=received if fee else None, received_at=received,
            due_at=received + dt.timedelta(days=1), created_by_id=officer.id,
            requester_name="Nguyễn Thị Thống Kê",
            delivered_at=received + dt.timedelta(hours=delivered_hours)
            if delivered_hours is not None else None,
            returned_at=received if ground is not None else None, return_ground=ground)
        session.add(row)
        session.flush()
        made[letter].append(row.id)

    a, b = office("A"), office("B")
    for hours in (2, 4, 6, 8, 100):  # office A: five delivered, 2 h … 100 h
        request(a, "A", day=3, delivered_hours=hours)
    request(a, "A", day=4, state=State.returned, delivered_hours=None, fee=0, ground=2)
    request(a, "A", day=4, state=State.returned, delivered_hours=None, fee=0, ground=0, kind=1)
    for _ in range(3):
        request(b, "B", day=5, kind=1)
    for _ in range(7):
        request(other, "C", day=5)

    for where, count in ((a, 4), (b, 2), (other, 9)):
        register = Register(office_id=where.id, name="Sổ thống kê 2021", book_number="99/2021",
                            type_symbol="SCTĐT/BS", year=2021, start_number=1,
                            next_number=count + 1, opening_date=dt.date(2021, 1, 1),
                            status=RegisterStatus.closed)
        session.add(register)
        session.flush()
        for number in range(1, count + 1):
            session.add(RegisterEntry(
                office_id=where.id, register_id=register.id, number=number,
                request_key=f"stat:{register.id}:{number}", status=EntryStatus.issued,
                issued_on=dt.date(2021, 3, 10), issued_at=_vn(10), pages=3, copies=2,
                fee=4000, document_type=types[0].name_vi))
    citizen = user_named(session, "citizen")
    from app.citizens.models import Citizen

    account = session.scalars(select(Citizen).where(Citizen.user_id == citizen.id)).one()
    for status, count in ((AppointmentStatus.processed, 2), (AppointmentStatus.no_show, 1)):
        for _ in range(count):
            start = _vn(8)
            session.add(Appointment(
                office_id=a.id, code=secrets.token_hex(4).upper(), citizen_id=account.id,
                full_name="Trần Văn Hẹn", identity_number=account.identity_number,
                document_type_id=types[0].id, start=start,
                end=start + dt.timedelta(minutes=15), status=status))
    session.commit()
    yield made
    ids = [pk for rows in made.values() for pk in rows]
    documents = session.scalars(select(CopyRequest.document_id).where(
        CopyRequest.id.in_(ids))).all()
    session.execute(CopyRequest.__table__.delete().where(CopyRequest.id.in_(ids)))
    session.execute(SignedDocument.__table__.delete().where(SignedDocument.id.in_(documents)))
    session.execute(RegisterEntry.__table__.delete().where(
        RegisterEntry.request_key.like("stat:%")))
    session.execute(Register.__table__.delete().where(Register.book_number == "99/2021"))
    session.execute(Appointment.__table__.delete().where(Appointment.full_name == "Trần Văn Hẹn"))
    session.execute(Office.__table__.delete().where(Office.code == "TEST-OTHER-PROVINCE"))
    session.commit()
