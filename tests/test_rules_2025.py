"""The rules of 2025 as data (#28, point 9 and "what to build"): who certifies (Nghị định
280/2025: the chairman, a vice-chairman, or an official authorised by a decision), checked
at signing and printed; the attestation's words and the fee rates by the date they take
effect (the request's date decides); and the two-tier government from 1/7/2025 (Nghị quyết
202/2025/QH15, Nghị định 120/2025): a former district justice division takes no new work
and keeps its books readable."""
from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest
from sqlalchemy import delete, select

from app.timeutil import today_vn
from tests.conftest import user_named
from tests.pdfs import pdf_text
from tests.test_copies import do, intake_web, request_id_from, state_of


def _leader_profile(db_session, username="leader.a"):
    from modules.signing.models import SignerProfile

    db_session.expire_all()
    return db_session.scalars(select(SignerProfile).where(
        SignerProfile.user_id == user_named(db_session, username).id)).one()


@contextlib.contextmanager
def authority_of(db_session, **values):
    """leader.a's recorded authority changed for one test, then put back."""
    profile = _leader_profile(db_session)
    columns = ("authority", "authority_decision", "authority_decision_date",
               "authority_scope", "authority_from", "authority_until")
    saved = {c: getattr(profile, c) for c in columns}
    for column in columns:
        setattr(profile, column, values.get(column))
    db_session.commit()
    try:
        yield
    finally:
        profile = _leader_profile(db_session)
        for column, value in saved.items():
            setattr(profile, column, value)
        db_session.commit()


def _copy_text(app, db_session, pk) -> str:
    from modules.signing import services

    copy = state_of(db_session, pk)
    with app.app_context():
        return pdf_text(services.read_current(copy.document))


# --- who certifies ---------------------------------------------------------------------

def test_a_leader_with_no_recorded_authority_cannot_sign(app, login, db_session, doc_type):
    from modules.copies.models import State

    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    before = state_of(db_session, pk).document.current_sha256
    with authority_of(db_session, authority=None):
        r = do(leader, pk, "sign")
        page = leader.get(r.headers["Location"]).get_data(as_text=True)
    assert "thẩm quyền chứng thực" in page
    copy = state_of(db_session, pk)
    assert copy.state is State.awaiting_signature and copy.document.current_sha256 == before


def test_an_authorised_official_signs_only_within_the_decision_which_is_printed(
        app, login, db_session, doc_type):
    from modules.copies.models import State
    from modules.signing.models import Authority

    officer, leader = login("officer.a"), login("leader.a")
    decision = {"authority": Authority.authorised, "authority_decision": "15/QĐ-UBND",
                "authority_decision_date": dt.date(2025, 11, 1),
                "authority_scope": "Chứng thực bản sao từ bản chính",
                "authority_from": dt.date(2025, 11, 1)}
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    with authority_of(db_session, **decision,
                      authority_until=today_vn() - dt.timedelta(days=1)):
        r = do(leader, pk, "sign")
        page = leader.get(r.headers["Location"]).get_data(as_text=True)
        assert "15/QĐ-UBND" in page and "hết hiệu lực" in page
        assert state_of(db_session, pk).state is State.awaiting_signature
    with authority_of(db_session, **{k: v for k, v in decision.items()
                                     if k != "authority_decision"}):
        do(leader, pk, "sign")  # no decision number: refused
        assert state_of(db_session, pk).state is State.awaiting_signature
    with authority_of(db_session, **decision,
                      authority_until=today_vn() + dt.timedelta(days=30)):
        assert do(leader, pk, "sign").status_code == 302
        assert state_of(db_session, pk).state is State.signed
    text = _copy_text(app, db_session, pk)
    assert "TUQ. CHỦ TỊCH" in text and "Quyết định số 15/QĐ-UBND ngày 01/11/2025" in text


def test_a_vice_chairman_signs_for_the_chairman(app, login, db_session, doc_type):
    officer, leader = login("officer.a"), login("leader.a")
    pk = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    assert do(leader, pk, "sign").status_code == 302
    text = _copy_text(app, db_session, pk)
    assert "KT. CHỦ TỊCH" in text and "Phó Chủ tịch" in text and "Quyết định" not in text


def test_the_signer_form_refuses_an_authorisation_without_its_decision(app, login,
                                                                       db_session):
    from modules.signing.models import Authority

    admin = login("officeadmin.a")
    profile = _leader_profile(db_session)
    form = {"user": profile.user_id, "key": profile.key_id, "title": profile.title or "",
            "authority": "authorised", "authority_decision": "",
            "authority_decision_date": "", "authority_scope": "",
            "authority_from": "", "authority_until": "", "tsa_name": "", "active": "y"}
    page = admin.post(f"/signerprofileview/edit/{profile.id}", data=form,
                      follow_redirects=True).get_data(as_text=True)
    assert "cần số và ngày của quyết định" in page
    assert _leader_profile(db_session).authority is Authority.vice_chairman
    form.update(authority_decision="15/QĐ-UBND", authority_decision_date="01/11/2025",
                authority_from="01/12/2026", authority_until="30/11/2026")
    page = admin.post(f"/signerprofileview/edit/{profile.id}", data=form,
                      follow_redirects=True).get_data(as_text=True)
    assert "không thể kết thúc trước khi bắt đầu" in page
    assert _leader_profile(db_session).authority is Authority.vice_chairman


# --- words and fees by the day they take effect ----------------------------------------

@pytest.fixture()
def rules_of_2026(db_session):
    """A fee schedule and a wording that took effect ten days ago (as if added then)."""
    from modules.copies.models import FeeSchedule
    from modules.signing.models import AttestationWording

    day = today_vn() - dt.timedelta(days=10)
    db_session.add(FeeSchedule(effective_from=day, first_pages=1, first_page_rate=3000,
                               later_page_rate=1500, cap_per_copy=300000,
                               legal_basis="Thông tư thử nghiệm 2026"))
    db_session.add(AttestationWording(
        effective_from=day, sentence="Chứng thực bản sao đúng với bản chính (mẫu 2026).",
        signer_heading="NGƯỜI KÝ CHỨNG THỰC", signer_note="(Ký số, ghi rõ họ tên)",
        legal_basis="Thông tư thử nghiệm 2026"))
    db_session.commit()
    yield day
    db_session.execute(delete(FeeSchedule))
    db_session.execute(delete(AttestationWording))
    db_session.commit()


def test_fees_and_words_are_those_in_force_on_the_day_the_request_was_received(
        app, login, db_session, doc_type, rules_of_2026):
    from modules.copies.models import CopyRequest
    from modules.signing.models import SignedDocument

    officer, leader = login("officer.a"), login("leader.a")
    new = request_id_from(intake_web(officer, doc_type, pages=3, copies=2, submit="0"))
    assert state_of(db_session, new).fee == 2 * (3000 + 1500 + 1500)

    old = request_id_from(intake_web(officer, doc_type, pages=3, copies=1))
    received = dt.datetime.combine(rules_of_2026 - dt.timedelta(days=5), dt.time(3))
    copy = state_of(db_session, old)
    db_session.get(CopyRequest, old).received_at = received
    db_session.get(SignedDocument, copy.document_id).created_at = received
    db_session.commit()
    do(leader, old, "return", reason="Quét lại")
    do(officer, old, "resume")
    from tests.pdfs import scan_pdf
    from tests.test_copies import upload
    r = officer.post(f"/copies/request/{old}/edit", content_type="multipart/form-data", data={
        "document_type_id": doc_type.id, "copies": 1, "scan": upload(scan_pdf(pages=4)),
        "submit": "1"})
    assert r.status_code == 302
    assert state_of(db_session, old).fee == 2000 + 2000 + 1000 + 1000  # the old rates

    assert do(leader, old, "sign").status_code == 302
    old_text = _copy_text(app, db_session, old)
    assert "Chứng thực bản sao đúng với bản chính." in old_text and "mẫu 2026" not in old_text
    assert "NGƯỜI THỰC HIỆN CHỨNG THỰC" in old_text
    newer = request_id_from(intake_web(officer, doc_type, pages=1, copies=1))
    assert do(leader, newer, "sign").status_code == 302
    text = _copy_text(app, db_session, newer)
    assert "(mẫu 2026)" in text and "NGƯỜI KÝ CHỨNG THỰC" in text


def test_a_version_in_force_is_kept_and_a_new_one_starts_tomorrow(app, login, db_session,
                                                                  rules_of_2026):
    from modules.copies.models import FeeSchedule

    admin = login("admin")
    in_force = db_session.scalars(select(FeeSchedule)).one()
    fields = {"first_pages": 2, "first_page_rate": 2500, "later_page_rate": 1200,
              "cap_per_copy": 250000, "legal_basis": "Thông tư mới"}
    today = today_vn().strftime("%d/%m/%Y")
    page = admin.post("/feescheduleview/add", data={**fields, "effective_from": today},
                      follow_redirects=True).get_data(as_text=True)
    assert "từ ngày mai" in page
    page = admin.post(f"/feescheduleview/edit/{in_force.id}",
                      data={**fields, "effective_from": rules_of_2026.strftime("%d/%m/%Y")},
                      follow_redirects=True).get_data(as_text=True)
    assert "giữ nguyên" in page
    admin.post(f"/feescheduleview/delete/{in_force.id}", follow_redirects=True)
    db_session.expire_all()
    kept = db_session.get(FeeSchedule, in_force.id)
    assert kept is not None and kept.first_page_rate == 3000
    tomorrow = (today_vn() + dt.timedelta(days=1)).strftime("%d/%m/%Y")
    admin.post("/feescheduleview/add", data={**fields, "effective_from": tomorrow})
    assert db_session.scalars(select(FeeSchedule).where(
        FeeSchedule.legal_basis == "Thông tư mới")).one().first_page_rate == 2500


# --- the two-tier government from 1/7/2025 ---------------------------------------------

def test_a_former_district_division_takes_no_new_work_and_keeps_its_books(
        app, login, db_session, doc_type):
    from app.offices.models import Office
    from modules.registers.models import Register, RegisterStatus

    district = db_session.scalars(select(Office).where(Office.code == "79-760")).one()
    username = f"tp.q1.{uuid.uuid4().hex[:6]}"
    sm = app.appbuilder.sm
    with app.app_context():
        user = sm.add_user(username, "Lý", "Thị Thu", f"{username}@saoy.example",
                           [sm.find_role("Officer"), sm.find_role("Clerk")], "pass-2026-q1!")
        user.office_id = district.id
        sm.update_user(user)
    book = Register(office_id=district.id, name="Sổ chứng thực 2025", book_number="01",
                    type_symbol="SCTĐT/BS", year=2025, start_number=1, next_number=38,
                    opening_date=dt.date(2025, 1, 2), closing_date=dt.date(2025, 6, 30),
                    status=RegisterStatus.open)
    db_session.add(book)
    db_session.commit()
    web = login(username, "pass-2026-q1!")

    r = intake_web(web, doc_type, pages=1, copies=1)
    assert r.status_code in (302, 409)
    page = web.get(r.headers["Location"]).get_data(as_text=True) if r.status_code == 302 \
        else r.get_data(as_text=True)
    assert "không còn chứng thực" in page and "01/07/2025" in page
    r = web.post("/registerview/add", data={
        "name": "Sổ 2026", "book_number": "01", "type_symbol": "SCTĐT/BS",
        "year": today_vn().year, "start_number": 1,
        "opening_date": today_vn().strftime("%d/%m/%Y")}, follow_redirects=True)
    assert "không còn chứng thực" in r.get_data(as_text=True)
    assert db_session.scalars(select(Register).where(
        Register.office_id == district.id)).all() == [book]
    # its books stay readable
    assert "Sổ chứng thực 2025" in web.get("/registerview/list/").get_data(as_text=True)
    assert web.get(f"/registerview/show/{book.id}").status_code == 200
    # citizens book at the communes only
    citizen = login("citizen")
    booking = citizen.get("/appointments/book?q=").get_data(as_text=True)
    assert "Phường Sài Gòn" in booking and "Phòng Tư pháp Quận 1" not in booking
    assert "Phòng Tư pháp Quận 1" not in citizen.get(
        f"/appointments/book?office_id={district.id}").get_data(as_text=True)
