"""The scope attack matrix, over every door of every scoped view and API, found by
reading the app (a new view is covered without a new test).

For each view whose rows are scoped (its base filters carry the scope, or it declares
``scoped_model`` for the ids its own routes take), each route that takes a ``pk`` is
knocked on, with every method it accepts, by each demo user who may use it, with the id
of a row of an office outside the province (office C) — and of another citizen's row for
the citizen.  Every answer must be 404, and the foreign row must not change.  The same
doors with the user's own rows answer (so scoping too strict to mean anything fails too).
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import inspect, select

from app.transactions import atomic
from tests.conftest import user_named

USERS = ("officeadmin.a", "officer.a", "leader.a", "clerk.a", "supervisor", "citizen")
#: Values for the other parts of a route (an action's name is tried for each action).
ROUTE_VALUES = {"event": "forward", "what": "cancel", "page": 1, "n": 0}


@dataclass
class Door:
    view: Any
    rule: Any
    method: str
    args: dict = field(default_factory=dict)

    def url(self, app, pk: int) -> str:
        with app.test_request_context():
            from flask import url_for

            return url_for(self.rule.endpoint, pk=pk, **self.args)

    def __repr__(self) -> str:
        return f"{self.method} {self.rule.rule} {self.args or ''}".strip()


def scoped_model(view) -> Any:
    """The model whose rows the view's ids name, when the view is scoped (else None)."""
    from app.scoping import OfficeScopeFilter

    declared = getattr(view, "scoped_model", None)
    if declared is not None:
        return declared
    filters = getattr(type(view), "base_filters", None) or []
    if any(len(f) > 1 and f[1] is OfficeScopeFilter for f in filters):
        return view.datamodel.obj
    return None


def doors_of(app, view) -> list[Door]:
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{view.endpoint}.") or "pk" not in rule.arguments:
            continue
        others = sorted(rule.arguments - {"pk"})
        names = list(getattr(view, "actions", {}) or {}) if "name" in others else [None]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for name in names:
                args = {a: ROUTE_VALUES[a] for a in others if a in ROUTE_VALUES}
                if name:
                    args["name"] = name
                found.append(Door(view, rule, method, args))
    return found


def matrix(app) -> list[tuple[Any, Any, list[Door]]]:
    return [(view, model, doors_of(app, view)) for view in app.appbuilder.baseviews
            if (model := scoped_model(view)) is not None]


# --- the foreign world: office C outside the province, another citizen ---------------------

def _citizen(session, identity: str, name: str):
    from flask_appbuilder.security.sqla.models import Role
    from werkzeug.security import generate_password_hash

    from app.citizens.models import Citizen
    from app.users import StaffUser

    found = session.scalars(select(Citizen).where(Citizen.identity_number == identity)).first()
    if found:
        return found
    role = session.scalars(select(Role).where(Role.name == "Citizen")).one()
    user = StaffUser(first_name=name, last_name="Ngoài", username=identity,
                     email=f"{identity}@citizen.invalid", active=True,
                     password=generate_password_hash(secrets.token_hex(8)), roles=[role])
    citizen = Citizen(user=user, full_name=name, identity_number=identity, phone="0912000111",
                      verified_at=dt.datetime(2026, 1, 1))
    session.add_all([user, citizen])
    session.flush()
    return citizen


def foreign_rows(session) -> dict[Any, Any]:
    """One row of every scoped model in office C (outside the supervisor's province),
    made once; the citizen rows belong to another citizen."""
    from app import audit
    from app.export_jobs import ExportJob
    from app.notifications.models import Channel, Message, Status
    from app.offices.models import DocumentType, Office, OfficeDocumentType, OfficeKind
    from app.timeutil import utcnow
    from app.users import StaffUser
    from modules.appointments.models import (
        Appointment,
        AppointmentSettings,
        AppointmentStatus,
        Closure,
        WorkingSession,
    )
    from modules.copies.models import CopyRequest, State
    from modules.registers.models import EntryStatus, Register, RegisterEntry, RegisterStatus
    from modules.signing.models import (
        ExternalSigningJob,
        KeyKind,
        SignedDocument,
        SignerProfile,
        SigningKey,
        Stage,
    )

    office = session.scalars(select(Office).where(Office.code == "MATRIX-C")).first()
    made: dict[Any, Any] = {}
    if office is None:
        office = Office(kind=OfficeKind.commune, code="MATRIX-C", name="UBND Xã Ngoài Tỉnh C",
                        active=True)
        session.add(office)
        session.flush()
    c = office.id
    kind = session.scalars(select(DocumentType).order_by(DocumentType.id)).first()
    other = _citizen(session, "001090000777", "Người Khác")
    staff = session.scalars(select(StaffUser).where(StaffUser.username == "matrix.c")).first()
    if staff is None:
        staff = StaffUser(first_name="Cán bộ", last_name="C", username="matrix.c",
                          email="matrix.c@example.vn", active=True, office_id=c, password="x",
                          roles=list(user_named(session, "officer.a").roles))
        session.add(staff)
    now = utcnow()
    doc = SignedDocument(office_id=c, verify_code=secrets.token_hex(8), access_code="x",
                         stage=Stage.sealed, scan_sha256="0" * 64, current_sha256="0" * 64)
    session.add(doc)
    session.flush()
    register = Register(office_id=c, name="Sổ C", book_number=f"C{secrets.token_hex(3)}",
                        type_symbol="SCTĐT/BS", year=2026, start_number=1, next_number=2,
                        opening_date=dt.date(2026, 1, 1), status=RegisterStatus.open)
    session.add(register)
    session.flush()
    rows = [
        office,
        OfficeDocumentType(office_id=c, document_type_id=kind.id, active=True, note="C"),
        staff,
        Message(office_id=c, channel=Channel.email, recipient="x@example.vn",
                kind="copy_delivered", locale="vi", subject="C", body_text="C",
                status=Status.sent, attempts=1, next_attempt_at=now,
                idempotency_key=secrets.token_hex(8), created_at=now, transport="console",
                attachments=[{"sha256": "0" * 64, "filename": "c.pdf",
                              "mimetype": "application/pdf"}]),
        AppointmentSettings(office_id=c, slot_minutes=15, capacity=3, horizon_days=30,
                            min_notice_hours=2, cancel_cutoff_hours=2),
        WorkingSession(office_id=c, weekday=0, start_time="07:30", end_time="11:30"),
        Closure(office_id=c, name="Nghỉ C", date_from=dt.date(2026, 5, 1),
                date_to=dt.date(2026, 5, 1)),
        Appointment(office_id=c, code=secrets.token_hex(4).upper(), citizen_id=other.id,
                    full_name=other.full_name, identity_number=other.identity_number,
                    document_type_id=kind.id, start=now + dt.timedelta(days=3),
                    end=now + dt.timedelta(days=3, minutes=15), status=AppointmentStatus.booked),
        register,
        RegisterEntry(office_id=c, register_id=register.id, number=1,
                      request_key=f"matrix:{secrets.token_hex(4)}", status=EntryStatus.issued,
                      issued_on=dt.date(2026, 1, 2)),
        SignerProfile(office_id=c, user_id=None, title="Con dấu C", active=True),
        SigningKey(office_id=c, kind=KeyKind.agent, name="Khóa C",
                   fingerprint=secrets.token_hex(32), active=False),
        CopyRequest(office_id=c, state=State.delivered, document_type_id=kind.id, copies=1,
                    pages=1, document_id=doc.id, fee=2000, received_at=now, due_at=now,
                    created_by_id=user_named(session, "officer.a").id, citizen_id=other.id,
                    requester_name=other.full_name, delivered_to="portal", delivered_at=now),
        ExportJob(user_id=other.user_id, view="CopyRequestView", fmt="csv", title="C"),
        ExternalSigningJob(office_id=c, document_id=doc.id, user_id=staff.id,
                           prepared_sha256="0" * 64, document_digest="00", reserved_start=0,
                           reserved_end=1, signed_attrs="AA=="),
    ]
    for row in rows:
        session.add(row)
        session.flush()
        made[type(row)] = row
    with atomic(session):
        made[audit.AuditEvent] = None
        audit.record(session, None, "matrix_probe", obj=register, office_id=c)
    made[audit.AuditEvent] = session.scalars(select(audit.AuditEvent).where(
        audit.AuditEvent.office_id == c).order_by(audit.AuditEvent.id.desc())).first()
    session.commit()
    return made


def snapshot(session, row) -> dict:
    session.expire_all()
    fresh = session.get(type(row), row.id)
    return {c.key: getattr(fresh, c.key) for c in inspect(type(row)).column_attrs}


# --- the matrix --------------------------------------------------------------------------

#: Public on purpose: the offices that take appointments (names, codes, addresses).
PUBLIC_BY_DESIGN = {"OfficeApi"}


def _permission(view, rule) -> str:
    """The permission FAB checks on the route's function."""
    name = rule.endpoint.rsplit(".", 1)[-1]
    mapped = (getattr(view, "method_permission_name", None) or {}).get(name, name)
    return mapped if mapped in (getattr(view, "actions", None) or {}) else f"can_{mapped}"


def _granted(app, view, rules) -> set[str]:
    """The roles (the administrator apart) that may use some of these routes."""
    sm = app.appbuilder.sm
    return {role for rule in rules for role, patterns in sm.builtin_roles.items()
            if role != "Admin" for view_re, perm_re in patterns
            if re.match(view_re, view.class_permission_name)
            and re.match(perm_re, _permission(view, rule))}


def test_every_door_that_takes_an_id_is_in_the_matrix(app):
    """A route taking a ``pk`` of an owned model is on a scoped view (or only the system
    administrator may use it): a new door cannot forget the scope without this failing."""
    from app.ownership import owner_of

    unscoped = []
    for view in app.appbuilder.baseviews:
        name = type(view).__name__
        if scoped_model(view) is not None or name in PUBLIC_BY_DESIGN:
            continue
        pk_rules = [rule for rule in app.url_map.iter_rules()
                    if rule.endpoint.startswith(f"{view.endpoint}.") and "pk" in rule.arguments]
        if not pk_rules:
            continue
        if not hasattr(view, "datamodel"):
            unscoped.append(f"{name}: a page taking ids declares no scoped_model")
            continue
        if owner_of(view.datamodel.obj) is None:
            continue  # reference data (document types, templates, roles)
        if granted := _granted(app, view, pk_rules):
            unscoped.append(f"{name} (granted to {sorted(granted)})")
    assert not unscoped, f"views taking ids without the scope: {unscoped}"
    assert len(matrix(app)) >= 17  # the 17 scoped views and APIs of this product, at least


@pytest.fixture(scope="module")
def world(app):
    from sqlalchemy.orm import Session

    from tests.conftest import engine_of

    with Session(bind=engine_of(app)) as session:
        return {model: row.id for model, row in foreign_rows(session).items()}


def _clients(app):
    web, rest = {}, {}
    for name in USERS:
        c = app.test_client()
        password = "saoy-demo"
        assert c.post("/login/", data={"username": name, "password": password}).status_code == 302
        web[name] = c
        r = app.test_client().post("/api/v1/security/login", json={
            "username": name, "password": password, "provider": "db"})
        rest[name] = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    return web, rest


def test_another_offices_id_is_404_on_every_door(app, world, db_session):
    from app.audit import AuditEvent

    web, tokens = _clients(app)
    knocked: dict[str, list[str]] = {}
    failures = []
    for view, model, doors in matrix(app):
        foreign = world.get(model)
        assert foreign, f"no foreign row of {model.__name__}: add one to foreign_rows()"
        row = db_session.get(model, foreign)
        before = snapshot(db_session, row) if model is not AuditEvent else None
        for door in doors:
            url = door.url(app, foreign)
            for name in USERS:
                api = door.rule.rule.startswith("/api/")
                client = web[name]
                headers = tokens[name] if api else {}
                body = {"json": {}} if api and door.method in ("POST", "PUT") else {}
                if not api and door.method == "POST":
                    body = {"data": {"reason": "tấn công", "start": "2030-01-01T08:00"}}
                answer = client.open(url, method=door.method, headers=headers, **body)
                if answer.status_code in (401, 403, 405) or (
                        answer.status_code == 302 and "/login" in answer.location):
                    continue  # this user may not use this door at all
                knocked.setdefault(type(view).__name__, []).append(f"{name} {door}")
                if answer.status_code != 404:
                    failures.append(f"{name} {door} on {model.__name__} #{foreign}: "
                                    f"{answer.status_code}")
        if before is not None:
            assert snapshot(db_session, row) == before, f"{model.__name__} #{foreign} changed"
    assert not failures, "\n".join(failures)
    missing = [type(v).__name__ for v, _m, doors in matrix(app)
               if _granted(app, v, [d.rule for d in doors]) and type(v).__name__ not in knocked]
    assert not missing, f"no demo user could try these views' doors: {missing}"


def test_action_post_and_lists_never_reach_another_office(app, world):
    """``action_post`` takes its ids in the body, lists take none: the foreign id is 404
    there, and never listed."""
    web, tokens = _clients(app)
    for view, model, _doors in matrix(app):
        actions = list(getattr(view, "actions", {}) or {})
        foreign = world[model]
        for name in USERS:
            for action in actions:
                r = web[name].post(f"{view.route_base}/action_post",
                                   data={"action": action, "rowid": [str(foreign)]})
                assert r.status_code in (403, 404) or (
                    r.status_code == 302 and "/login" in r.location), (name, view, action)
        if hasattr(view, "datamodel") and view.route_base.startswith("/api/"):
            for name in USERS:
                r = web[name].get(f"{view.route_base}/?q=(page_size:100)", headers=tokens[name])
                if r.status_code == 200:
                    assert foreign not in {row.get("id") for row in r.get_json()["result"]}


def test_the_same_doors_open_a_users_own_rows(app, login, api, db_session, office):
    """The positive side: scoping that refused everything would pass the tests above."""
    from modules.copies.models import CopyRequest
    from modules.registers.models import Register

    register = db_session.scalars(select(Register).where(
        Register.office_id == office("A").id)).first()
    web = login("clerk.a")
    assert web.get(f"/registerview/show/{register.id}").status_code == 200
    rest, headers = api("clerk.a")
    assert rest.get(f"/api/v1/register/{register.id}", headers=headers).status_code == 200
    own = db_session.scalars(select(CopyRequest).where(
        CopyRequest.office_id == office("A").id)).first()
    if own is not None:
        assert login("officer.a").get(f"/copies/request/{own.id}").status_code == 200
