"""Trust: keys bound to their office and signer, citizens who are who they say, requests
that own their jobs, timestamp services from an allowed list, CSRF on session REST calls.

Each test plays the attack measured on the old main (issue "Trust") and checks it fails."""
from __future__ import annotations

import http.server
import io
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from app.transactions import atomic
from tests.conftest import build_app, migrate_and_seed, user_named
from tests.keys import demo_token, profile_of, signing_with
from tests.pdfs import scan_pdf
from tests.servers import free_port
from tests.test_copies import _submitted, state_of


@pytest.fixture()
def doc_type(db_session, office):
    from app.offices.services import offered_document_types

    return offered_document_types(db_session, office("A").id)[0]


def _register_id(db_session, office_id: int) -> int:
    from modules.registers.models import Register, RegisterStatus

    return db_session.scalars(select(Register.id).where(
        Register.office_id == office_id, Register.status == RegisterStatus.open)
        .order_by(Register.id)).first()


def _to_delivery(api, db_session, pk: int, letter: str = "a") -> dict:
    """Sign, forward, seal, pay, deliver over the REST API; the last answer."""
    leader, lh = api(f"leader.{letter}")
    clerk, ch = api(f"clerk.{letter}")
    office_id = user_named(db_session, f"clerk.{letter}").office_id
    for client, headers, event, body in (
            (leader, lh, "sign", {}), (leader, lh, "forward", {}),
            (clerk, ch, "seal", {"register_id": _register_id(db_session, office_id)}),
            (clerk, ch, "pay", {"receipt_number": "BL-T"}), (clerk, ch, "deliver", {})):
        r = client.post(f"/api/v1/copy/{pk}/{event}", headers=headers, json=body)
        if r.status_code != 200:
            return {"event": event, "status": r.status_code, **r.get_json()}
    return r.get_json()


# --- 1. another office's key ---------------------------------------------------------------

def _office_b_seal_key(db_session, office):
    from modules.signing.models import SigningKey

    return db_session.scalars(select(SigningKey).where(
        SigningKey.office_id == office("B").id, SigningKey.user_id.is_(None),
        SigningKey.active.is_(True))).first()


def test_an_office_admin_cannot_point_a_signer_at_another_offices_key(
        app, login, api, db_session, office, doc_type):

    a = office("A")
    leader_a = user_named(db_session, "leader.a")
    b_key = _office_b_seal_key(db_session, office)  # a key the server holds, of office B
    profile = profile_of(db_session, a.id, leader_a.id)
    own_key = profile.key_id
    web = login("officeadmin.a")
    form = web.get(f"/signerprofileview/edit/{profile.id}").get_data(as_text=True)
    key_choices = re.search(r'<select[^>]*name="key".*?</select>', form, re.S).group(0)
    assert f'value="{own_key}"' in key_choices
    assert f'value="{b_key.id}"' not in key_choices  # not even offered
    # What the old form took: a path to B's leader key file; and B's key by id.
    r = web.post(f"/signerprofileview/edit/{profile.id}", data={
        "user": str(leader_a.id), "key": str(b_key.id), "title": "Phó Chủ tịch",
        "active": "y", "kind": "pkcs12", "tsa_name": "",
        "pkcs12_path": str(Path(app.config["DATA_DIR"]) / "pki" / "leader-leader.b.p12")})
    assert r.status_code == 200  # the form comes back refused
    db_session.expire_all()
    assert profile_of(db_session, a.id, leader_a.id).key_id == own_key

    delivered = _to_delivery(api, db_session, _submitted(app, db_session, doc_type))
    code = delivered["verify_code"]
    report = app.test_client().get(f"/api/v1/verify/{code}").get_json()
    leader_sig = next(s for s in report["signatures"] if s["role"] == "leader")
    assert leader_sig["signer"] == "Trần Thị Bình" and leader_sig["bound"]
    assert report["verdict"] == "valid"


def test_a_tampered_profile_signs_nothing_and_a_foreign_signature_is_never_delivered(
        app, db_session, office, doc_type):
    """Even with the database itself changed, office A signs nothing with B's key; and a
    copy carrying B's leader signature is refused at delivery and not valid when
    verified."""
    from modules.signing import pdf, services
    from modules.signing.models import SignedDocument
    from modules.signing.signers import open_signer
    from tests.test_signing import seal

    a = office("A")
    leader_a = user_named(db_session, "leader.a")
    b_key = _office_b_seal_key(db_session, office)
    pk = _submitted(app, db_session, doc_type)
    doc_id = state_of(db_session, pk).document_id
    with app.test_request_context():
        with signing_with(db_session, a.id, leader_a.id, b_key.id):
            with pytest.raises(services.SigningError) as refused:
                services.prepare_leader_signature(db_session, leader_a, doc_id)
            assert "someone else" in refused.value.message or "người khác" in \
                refused.value.message
        doc = db_session.get(SignedDocument, doc_id)
        profile = profile_of(db_session, a.id, leader_a.id)
        with open_signer(b_key, app.config) as b_signer:  # what a forged path would do
            attestation = services._attestation(doc, leader_a, profile)
            prepared = pdf.prepare_for_signature(services.read_current(doc), attestation,
                                                 services.fonts())
            signed = pdf.sign_as_leader(prepared, attestation, services.fonts(), b_signer,
                                        pdf.SignatureLook(None, "Ký bởi"))
        with atomic(db_session):
            services.record_leader_signature(db_session, leader_a, doc_id,
                                             services.NewVersion(signed, "B"))
            seal(db_session, user_named(db_session, "clerk.a"), doc_id, "9", "99/2026-X")
        with pytest.raises(services.SigningError) as gate:
            services.check_delivery(db_session, user_named(db_session, "clerk.a"), doc_id)
        assert "registered" in gate.value.message or "đăng ký" in gate.value.message
    report = app.test_client().get(f"/api/v1/verify/{doc.verify_code}").get_json()
    assert report["verdict"] == "untrusted" and "signer_not_bound" in report["notes"]
    assert not report["valid"]


def test_key_errors_reveal_no_path_and_every_key_has_its_own_passphrase(app, db_session,
                                                                      office, doc_type):
    from modules.signing import services
    from modules.signing.models import SigningKey
    from modules.signing.signers import keystore_paths

    keys_ = db_session.scalars(select(SigningKey).where(SigningKey.kind == "pkcs12")).all()
    passphrases = {keystore_paths(app.config, k.fingerprint)[1].read_bytes() for k in keys_}
    assert len(keys_) >= 3 and len(passphrases) == len(keys_)  # two seals and leader.a
    leader = user_named(db_session, "leader.a")
    key = profile_of(db_session, leader.office_id, leader.id).key
    p12 = keystore_paths(app.config, key.fingerprint)[0]
    moved = p12.with_suffix(".away")
    pk = _submitted(app, db_session, doc_type)
    p12.rename(moved)
    try:
        with app.test_request_context(), pytest.raises(services.SigningError) as err:
            services.prepare_leader_signature(db_session, leader,
                                              state_of(db_session, pk).document_id)
    finally:
        moved.rename(p12)
    message = err.value.message
    assert "/" not in message and "No such file" not in message and str(p12) not in message


def test_only_the_administrator_registers_keys_and_binding_needs_the_right_names(
        app, db_session, office, tmp_path):
    from modules.signing import keys

    a = office("A")
    token, issued = demo_token(app, "stranger-seal", "Công ty Lạ", "Công ty Lạ")
    data, passphrase = issued.p12_path.read_bytes(), (
        Path(app.config["DATA_DIR"]) / "pki" / "passphrase").read_text().strip()
    with app.test_request_context():
        with pytest.raises(keys.KeyRegistrationError) as denied:
            keys.register_pkcs12(db_session, user_named(db_session, "officeadmin.a"),
                                 office_id=a.id, user_id=None, name="x", data=data,
                                 passphrase=passphrase)
        assert denied.value.status == 403
        admin = user_named(db_session, "admin")
        with pytest.raises(keys.KeyRegistrationError) as named:
            keys.register_pkcs12(db_session, admin, office_id=a.id, user_id=None, name="x",
                                 data=data, passphrase=passphrase)
        assert "Công ty Lạ" in named.value.message
        with pytest.raises(keys.KeyRegistrationError):
            keys.register_pkcs12(db_session, admin, office_id=a.id, user_id=None, name="x",
                                 data=data, passphrase="wrong")
    db_session.rollback()


# --- 2. someone else's identity number ------------------------------------------------------

def test_an_impostor_account_never_receives_the_copy(app, api, login, client, db_session,
                                                    office, doc_type):
    from modules.copies.models import State
    from tests.test_appointments import new_identity

    victim = new_identity()
    r = client.post("/api/v1/citizen/", json={
        "full_name": "Kẻ Mạo Danh", "identity_number": victim, "phone": "0912340000",
        "email": "impostor@example.vn", "password": "mat-khau-gia"})
    assert r.status_code == 202
    officer, oh = api("officer.a")

    def walk_in(**extra):
        r = officer.post("/api/v1/copy/", headers=oh, content_type="multipart/form-data",
                         data={"scan": (io.BytesIO(scan_pdf()), "s.pdf"),
                               "document_type_id": doc_type.id, "identity_number": victim,
                               **extra})
        assert r.status_code == 201, r.get_json()
        officer.post(f"/api/v1/copy/{r.get_json()['id']}/submit", headers=oh)
        return r.get_json()["id"]

    waiting = walk_in()
    answer = _to_delivery(api, db_session, waiting)
    assert answer["event"] == "deliver" and answer["status"] == 409
    assert "verified" in answer["message"] or "xác minh" in answer["message"]
    assert state_of(db_session, waiting).state is State.sealed  # the copy waits
    by_mail = walk_in(email="real.person@example.vn")
    assert _to_delivery(api, db_session, by_mail)["state"] == "delivered"
    assert state_of(db_session, by_mail).delivered_to == "real.person@example.vn"

    impostor = app.test_client()
    assert impostor.post("/login/", data={"username": victim,
                                          "password": "mat-khau-gia"}).status_code == 302
    mine = impostor.get("/mycopies/").get_data(as_text=True)
    assert f"/mycopies/{waiting}" not in mine and f"/mycopies/{by_mail}" not in mine
    for pk in (waiting, by_mail):
        assert impostor.get(f"/mycopies/{pk}/file").status_code == 404

    # The squatting: at the counter the officer compared the card and ticked the
    # check, and the copy went to the squatter.  Now the check needs the code sent to the
    # account — the squatter's phone — which the person at the counter does not have.
    web = login("officer.a")
    assert web.post(f"/copies/request/{waiting}/verify-requester").status_code == 302
    assert web.post(f"/copies/request/{waiting}/counter-code").status_code == 302
    sent = _last_code(db_session, "84912340000")
    for typed in ("", "000000" if sent != "000000" else "111111"):
        web.post(f"/copies/request/{waiting}/verify-requester", data={"counter_code": typed})
    assert _citizen(db_session, victim).verified_at is None
    clerk, ch = api("clerk.a")
    assert clerk.post(f"/api/v1/copy/{waiting}/deliver", headers=ch).status_code == 409


def test_the_counter_check_proves_the_account_with_a_code_sent_to_it(
        app, api, login, client, db_session, office, doc_type):
    """The account's owner at the counter reads out the code their phone received: the
    account is verified and the waiting copy reaches it (and the code works once)."""
    from app.audit import AuditEvent
    from tests.test_appointments import new_identity

    owner = new_identity()
    assert client.post("/api/v1/citizen/", json={
        "full_name": "Chủ Tài Khoản", "identity_number": owner, "phone": "0912348888",
        "password": "mat-khau-that-2026"}).status_code == 202
    officer, oh = api("officer.a")
    r = officer.post("/api/v1/copy/counter-code", headers=oh, json={"identity_number": owner})
    assert r.status_code == 200 and r.get_json()["sent_to"] == "…888"
    code = _last_code(db_session, "84912348888")
    r = officer.post("/api/v1/copy/", headers=oh, content_type="multipart/form-data", data={
        "scan": (io.BytesIO(scan_pdf()), "s.pdf"), "document_type_id": doc_type.id,
        "identity_number": owner, "verify_identity": "1", "counter_code": code})
    assert r.status_code == 201, r.get_json()
    citizen = _citizen(db_session, owner)
    assert citizen.verified_via == "counter" and citizen.counter_code_digest is None
    db_session.expire_all()
    events = db_session.scalars(select(AuditEvent.event).where(
        AuditEvent.object_type == "Citizen", AuditEvent.object_id == citizen.id)).all()
    assert {"counter_code_sent", "citizen_verified"} <= set(events)


def _last_code(db_session, phone: str) -> str:
    from app.notifications.models import Message

    db_session.expire_all()
    message = db_session.scalars(select(Message).where(
        Message.recipient == phone, Message.kind == "counter_code")
        .order_by(Message.id.desc())).first()
    return re.search(r"\b(\d{6})\b", message.body_text).group(1)


def _citizen(db_session, identity: str):
    from app.citizens.models import Citizen

    db_session.expire_all()
    return db_session.scalars(select(Citizen).where(Citizen.identity_number == identity)).one()


# --- 4. timestamp services from the administrator's list ------------------------------------

class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):
        _Listener.hits.append(self.path)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_tsa_is_chosen_from_the_allowed_list_and_never_free_text(
        app, api, login, db_session, office, doc_type, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loopback = f"http://127.0.0.1:{server.server_port}/internal"
    leader = user_named(db_session, "leader.a")
    profile = profile_of(db_session, leader.office_id, leader.id)
    try:
        web = login("officeadmin.a")
        r = web.post(f"/signerprofileview/edit/{profile.id}", data={
            "user": str(leader.id), "key": str(profile.key_id), "title": "Phó Chủ tịch",
            "active": "y", "tsa_name": loopback, "tsa_url": loopback})
        assert r.status_code == 200  # refused: not a choice
        db_session.expire_all()
        assert profile_of(db_session, leader.office_id, leader.id).tsa_name is None
        with atomic(db_session):  # even written into the database by hand
            profile_of(db_session, leader.office_id, leader.id).tsa_name = loopback
        client, headers = api("leader.a")
        pk = _submitted(app, db_session, doc_type)
        r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={})
        assert r.status_code == 422 and r.get_json()["message"]
        assert _Listener.hits == []  # the server never called it

        monkeypatch.setitem(app.config, "TSA_ALLOWED", {"tinh": f"http://127.0.0.1:{free_port()}"})
        with atomic(db_session):
            profile_of(db_session, leader.office_id, leader.id).tsa_name = "tinh"
        r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={})
        assert r.status_code == 503 and "timestamp" in r.get_json()["message"].lower() or \
            "dấu thời gian" in r.get_json()["message"]
        assert state_of(db_session, pk).state.value == "awaiting_signature"
    finally:
        server.shutdown()
        with atomic(db_session):
            profile_of(db_session, leader.office_id, leader.id).tsa_name = None


# --- 5. CSRF for REST calls made with the session cookie ------------------------------------

@pytest.fixture(scope="module")
def csrf_app(tmp_path_factory):
    data = tmp_path_factory.mktemp("csrf")
    application = build_app(f"sqlite:///{data / 'csrf.db'}", data, WTF_CSRF_ENABLED=True)
    migrate_and_seed(application)
    return application


def _token(html: str) -> str:
    return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html).group(1)


def test_session_rest_changes_need_the_csrf_token_and_this_origin(csrf_app):
    from app.extensions import db
    from app.offices.services import offered_document_types

    with csrf_app.app_context():
        officer = user_named(db.session, "officer.a")
        doc_type = offered_document_types(db.session, officer.office_id)[0]
        pk = _submitted(csrf_app, db.session, doc_type)
        db.session.remove()
    browser = csrf_app.test_client()
    token = _token(browser.get("/login/").get_data(as_text=True))
    assert browser.post("/login/", data={"username": "leader.a", "password": "saoy-demo",
                                         "csrf_token": token}).status_code == 302
    evil = browser.post(f"/api/v1/copy/{pk}/sign", data="{}", headers={
        "Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert evil.status_code == 403
    no_token = browser.post(f"/api/v1/copy/{pk}/sign", json={},
                            headers={"Origin": "http://localhost"})
    assert no_token.status_code == 403
    page = browser.get(f"/copies/request/{pk}").get_data(as_text=True)
    ok = browser.post(f"/api/v1/copy/{pk}/sign", json={}, headers={
        "Origin": "http://localhost", "X-CSRFToken": _token(page)})
    assert ok.status_code == 200 and ok.get_json()["state"] == "signed"
    bearer = csrf_app.test_client().post("/api/v1/security/login", json={
        "username": "leader.a", "password": "saoy-demo", "provider": "db"}).get_json()
    r = csrf_app.test_client().get(f"/api/v1/copy/{pk}", headers={
        "Authorization": f"Bearer {bearer['access_token']}"})
    assert r.status_code == 200  # bearer tokens stay as they are
