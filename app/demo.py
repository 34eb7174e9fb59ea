"""Demo world for `make demo` and the browser tests: idempotent (keeps existing rows)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.citizens.models import Citizen
from app.extensions import db
from app.modules import resolve, specs_of
from app.offices.models import DocumentType, Office, OfficeDocumentType, OfficeKind
from app.seed import seed_reference_data
from app.timeutil import utcnow
from app.transactions import atomic

DEMO_PASSWORD = "saoy-demo"

# code, kind, name, address, parent code
OFFICES = [
    ("79", OfficeKind.province, "Sở Tư pháp Thành phố Hồ Chí Minh",
     "141-143 Pasteur, Phường Xuân Hòa, TP. Hồ Chí Minh", None),
    # Certified until 30/06/2025; since the two-tier government (1/7/2025) its books and
    # history are read-only and the wards below the province certify.
    ("79-760", OfficeKind.district_justice, "Phòng Tư pháp Quận 1",
     "47 Lê Duẩn, Quận 1, TP. Hồ Chí Minh", "79"),
    ("26734", OfficeKind.commune, "UBND Phường Sài Gòn",
     "45-47 Lê Duẩn, Phường Sài Gòn, TP. Hồ Chí Minh", "79"),
    ("26740", OfficeKind.commune, "UBND Phường Tân Định",
     "50 Trần Quang Khải, Phường Tân Định, TP. Hồ Chí Minh", "79"),
]
OFFICE_A, OFFICE_B = "26734", "26740"

# username, first name(s), last name, roles, office code
USERS = [
    ("admin", "Quản trị", "Hệ thống", ["Admin"], None),
    ("officeadmin.a", "Phạm Thị", "Hoa", ["OfficeAdmin"], OFFICE_A),
    ("officer.a", "Nguyễn Văn", "An", ["Officer"], OFFICE_A),
    ("leader.a", "Trần Thị", "Bình", ["Leader"], OFFICE_A),
    ("clerk.a", "Lê Văn", "Cường", ["Clerk"], OFFICE_A),
    ("officer.b", "Hoàng Văn", "Dũng", ["Officer"], OFFICE_B),
    ("leader.b", "Vũ Thị", "Giang", ["Leader"], OFFICE_B),
    ("clerk.b", "Đặng Văn", "Hùng", ["Clerk"], OFFICE_B),
    ("supervisor", "Bùi Thị", "Lan", ["Supervisor"], "79"),
    ("citizen", "Nguyễn Thị", "Mai", ["Citizen"], None),
]
CITIZEN_IDENTITY = "079203001234"


def _office_by_code(code: str) -> Office | None:
    return db.session.scalars(select(Office).where(Office.code == code)).first()


def ensure_offices() -> int:
    created = 0
    for code, kind, name, address, parent_code in OFFICES:
        if _office_by_code(code):
            continue
        parent = _office_by_code(parent_code) if parent_code else None
        db.session.add(Office(code=code, kind=kind, name=name, address=address,
                              parent=parent, active=True))
        db.session.flush()
        created += 1
    return created


def ensure_user(username: str, first: str, last: str, roles: list[str],
                office_code: str | None, password: str = DEMO_PASSWORD) -> tuple[object, bool]:
    sm = current_app.appbuilder.sm
    user = sm.find_user(username=username)
    if user is not None:
        return user, False
    role_rows = [sm.find_role(r) for r in roles]
    user = sm.add_user(username, first, last, f"{username}@saoy.example", role_rows, password)
    if not user:
        raise RuntimeError(f"could not create demo user {username}")
    if office_code:
        user.office_id = _office_by_code(office_code).id
    db.session.flush()
    return user, True


def load_demo() -> int:
    """Demo offices, users and every module's demo rows, in one unit of work (the command
    is the edge): all of it, or nothing."""
    with atomic(db.session):
        return _load_demo()


def _load_demo() -> int:
    created = seed_reference_data()
    created += ensure_offices()
    db.session.flush()
    for username, first, last, roles, office_code in USERS:
        user, new = ensure_user(username, first, last, roles, office_code)
        created += int(new)
        if username == "citizen":
            citizen = db.session.scalars(select(Citizen).where(
                Citizen.user_id == user.id)).first()
            if citizen is None:
                citizen = Citizen(user_id=user.id, full_name=f"{first} {last}",
                                  identity_number=CITIZEN_IDENTITY, phone="0912345678",
                                  email="citizen@saoy.example")
                db.session.add(citizen)
                created += 1
            if not citizen.verified:  # the demo citizen showed their card at the counter
                citizen.verified_at, citizen.verified_via = utcnow(), "counter"
    for code in (OFFICE_A, OFFICE_B):
        office = _office_by_code(code)
        enabled = set(db.session.scalars(select(OfficeDocumentType.document_type_id)
                                         .where(OfficeDocumentType.office_id == office.id)))
        for doc_type in db.session.scalars(select(DocumentType)):
            if doc_type.id not in enabled:
                db.session.add(OfficeDocumentType(office_id=office.id,
                                                  document_type_id=doc_type.id))
                created += 1
    db.session.flush()
    for spec in specs_of():
        if spec.demo:
            created += resolve(spec.demo)() or 0
    return created
