"""The leader signs where the key is: the plugin on the leader's own computer (the key
never leaves the token), or — only where the system administrator chose server custody —
a key the server holds, in a signing session opened with the leader's own one-time code.

SaoY takes back from a plugin only what the leader was asked to sign; each refusal below
is a file a plugin (buggy, compromised, or another person's) could upload."""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.demo import OFFICE_B
from app.transactions import atomic
from tests.conftest import engine_of, open_signing_session, user_named
from tests.test_copies import _submitted, state_of

# --- a plugin's signature, made as VGCA's plugin makes one --------------------------------

def _demo_key(app, slug: str):
    from modules.signing.signers import load_pkcs12

    pki = Path(app.config["DATA_DIR"]) / "pki"
    return load_pkcs12((pki / f"{slug}.p12").read_bytes(),
                       (pki / "passphrase").read_text().strip().encode())


def _demo_signer(app, username: str):
    """The demo leader's key (in the demo PKI) standing in for their token."""
    return _demo_key(app, f"leader-{username}")


def _office_seal_signer(app, code: str):
    return _demo_key(app, f"seal-{code}")


def plugin_sign(prepared: bytes, signer, *, field: str = "Signature1", new_field: bool = True,
                tamper=None, certify=None) -> bytes:
    """One incremental update with one signature, in a field of its own (as VGCA's
    plugin: where the leader dragged it); ``tamper(writer)`` adds what a bad plugin adds;
    ``certify`` (an ``MDPPerm``) makes it a certification signature."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter

    writer = IncrementalPdfFileWriter(io.BytesIO(prepared), strict=False)
    last = int(writer.root["/Pages"]["/Count"]) - 1
    if new_field:
        fields.append_signature_field(writer, SigFieldSpec(field, on_page=last,
                                                           box=(320, 60, 520, 140)))
    if tamper is not None:
        tamper(writer)
    meta = signers.PdfSignatureMetadata(
        field_name=field, subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256",
        certify=certify is not None, docmdp_permissions=certify or MDPPerm.FILL_FORMS)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer).sign_pdf(writer, output=out,
                                                    existing_fields_only=not new_field)
    return out.getvalue()


def _extra_page(writer) -> None:
    from pyhanko.pdf_utils import generic

    writer.insert_page(generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 595, 842)])}))


def _javascript(writer) -> None:
    from pyhanko.pdf_utils import generic

    writer.root[generic.pdf_name("/OpenAction")] = writer.add_object(generic.DictionaryObject({
        generic.pdf_name("/S"): generic.pdf_name("/JavaScript"),
        generic.pdf_name("/JS"): generic.pdf_string("app.alert(1)")}))
    writer.update_root()


def _usage_rights(writer) -> None:
    """/Perms /UR3: usage rights a reader would honour (Adobe's "Reader extensions")."""
    from pyhanko.pdf_utils import generic

    writer.root[generic.pdf_name("/Perms")] = generic.DictionaryObject({
        generic.pdf_name("/UR3"): writer.add_object(generic.DictionaryObject({
            generic.pdf_name("/Type"): generic.pdf_name("/Sig")}))})
    writer.update_root()


def _annotation(writer) -> None:
    from pyhanko.pdf_utils import generic

    page_ref, _res = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    note = writer.add_object(generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
        generic.pdf_name("/Subtype"): generic.pdf_name("/FreeText"),
        generic.pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(v)
                                                         for v in (50, 50, 300, 100)]),
        generic.pdf_name("/Contents"): generic.pdf_string("BẢN SAO KHÔNG HỢP LỆ")}))
    page[generic.pdf_name("/Annots")] = generic.ArrayObject([note])
    writer.update_container(page)


@pytest.fixture()
def plugin_leader(app, api, db_session):
    """leader.b of office B signs with the plugin: a request of office B waiting for
    leader.b; ``open()`` opens its job through the API as the page does."""
    client, headers = api("leader.b")

    def open_job(pk: int | None = None):
        pk = pk or _request(app, db_session, "b")
        r = client.post(f"/api/v1/copy/{pk}/request_signature", headers=headers, json={})
        assert r.status_code == 200, r.get_json()
        return pk, r.get_json()["signing"]

    return client, headers, open_job


def sign_through_plugin(app, api, pk: int, username: str) -> None:
    """What the leader's plugin does for one request: open its job, take the prepared
    file, sign it with the leader's (demo) key, hand it back."""
    client, headers = api(username)
    r = client.post(f"/api/v1/copy/{pk}/request_signature", headers=headers, json={})
    assert r.status_code == 200, r.get_json()
    job = r.get_json()["signing"]
    plugin = app.test_client()
    signed = plugin_sign(_download(plugin, job), _demo_signer(app, username))
    answer = _upload(plugin, job, signed).get_json()
    assert answer["Status"] == 0, answer


def _request(app, db_session, letter: str) -> int:
    """A request of office A or B, submitted for its leader's signature."""
    from app.offices.models import Office
    from app.offices.services import offered_document_types

    office = db_session.get(Office, user_named(db_session, f"officer.{letter}").office_id)
    return _submitted(app, db_session, offered_document_types(db_session, office.id)[0],
                      officer=f"officer.{letter}")


def _download(client, job) -> bytes:
    r = client.get(_path(job["download_url"]))
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    return r.data


def _upload(client, job, data: bytes):
    return client.post(_path(job["upload_url"]), content_type="multipart/form-data",
                       data={"uploadfile": (io.BytesIO(data), "signed.pdf")})


def _path(url: str) -> str:
    return "/" + url.split("//", 1)[1].split("/", 1)[1]


# --- the plugin's doors ------------------------------------------------------------------

def test_the_plugin_signs_and_the_request_moves_on(app, db_session, plugin_leader):
    from modules.copies.models import State
    from modules.signing import services

    _client, _headers, open_job = plugin_leader
    anonymous = app.test_client()  # the plugin carries no session
    pk, job = open_job()
    assert job["download_url"].startswith("http") and job["field"] == "ChuKyLanhDao"
    prepared = _download(anonymous, job)
    assert anonymous.get(_path(job["download_url"])).status_code == 404  # once
    signed = plugin_sign(prepared, _demo_signer(app, "leader.b"))
    r = _upload(anonymous, job, signed)
    assert r.status_code == 200 and r.get_json()["Status"] == 0, r.get_json()
    copy = state_of(db_session, pk)
    assert copy.state is State.signed and copy.signed_by_id == user_named(db_session,
                                                                           "leader.b").id
    assert copy.document.leader_field == "Signature1"
    with app.app_context():
        report = services.validate_bytes(services.read_current(copy.document), copy.document)
        assert services.read_current(copy.document) == signed
    assert [s.role for s in report.signatures if s.intact] == ["leader"]
    assert _upload(anonymous, job, signed).status_code == 422  # replayed: already done


def test_the_plugins_stamp_font_is_cut_to_vietnamese_once_and_its_copy_taken(
        app, db_session, plugin_leader):
    """SaoY's plugin handed pyHanko the whole Noto Serif, which pyHanko subsets again for
    every signature (0.32 s a signature against 0.10 s with the cut, on this machine): it
    now cuts the Vietnamese glyphs once per process, into a folder only it can write (a
    font another local user planted would draw the leader's stamp), and the copy it signs
    with that stamp is taken."""
    import os
    import stat

    from fontTools.ttLib import TTFont

    from modules.copies.models import State
    from modules.signing import fonts
    from signer import saoy_signer

    source = next(f for f in saoy_signer.FONT_CANDIDATES if Path(f).exists())
    cut = saoy_signer.stamp_font(source)
    assert saoy_signer.stamp_font(source) == cut  # made once
    assert stat.S_IMODE(os.stat(Path(cut).parent).st_mode) == 0o700
    whole, small = TTFont(source), TTFont(cut)
    assert "GSUB" not in small
    assert len(small.getGlyphOrder()) < len(whole.getGlyphOrder()) / 3
    vietnamese = set(fonts._codepoints()) & set(whole.getBestCmap())
    assert vietnamese <= set(small.getBestCmap())  # every letter a name can have
    assert (saoy_signer.VIETNAMESE_RANGES, saoy_signer.VIETNAMESE_LETTERS) == \
        (fonts.VIETNAMESE_RANGES, fonts.VIETNAMESE_LETTERS)  # the server's cut, the same
    _client, _headers, open_job = plugin_leader
    anonymous = app.test_client()
    pk, job = open_job()
    signed = saoy_signer.sign_pdf(_download(anonymous, job), job["field"],
                                  _demo_signer(app, "leader.b"), None)
    answer = _upload(anonymous, job, signed).get_json()
    assert answer["Status"] == 0, answer
    assert state_of(db_session, pk).state is State.signed


@pytest.mark.parametrize("field", ["ChuKyLanhDao", "Signature1"])
def test_a_certification_that_lets_the_seal_follow_is_taken(app, db_session, plugin_leader,
                                                             field):
    """The leader's plugin may certify (DocMDP P=2, as SaoY's own signer and the server do),
    in the prepared field or one of its own: /Perms names that signature and nothing else."""
    from pyhanko.sign.fields import MDPPerm

    from modules.copies.models import State

    _client, _headers, open_job = plugin_leader
    anonymous = app.test_client()
    pk, job = open_job()
    signed = plugin_sign(_download(anonymous, job), _demo_signer(app, "leader.b"), field=field,
                         new_field=field != "ChuKyLanhDao", certify=MDPPerm.FILL_FORMS)
    r = _upload(anonymous, job, signed)
    assert r.status_code == 200 and r.get_json()["Status"] == 0, r.get_json()
    assert state_of(db_session, pk).state is State.signed


@pytest.mark.parametrize("case", ["extra_page", "annotation", "javascript", "another_signer",
                                  "office_seal_key", "seal_field", "two_signatures",
                                  "not_prepared", "forbids_the_seal", "usage_rights",
                                  "junk"])
def test_anything_but_the_leaders_one_signature_is_refused(app, db_session, plugin_leader,
                                                           case):
    """What a plugin must not bring back; each refused, audited, nothing stored or moved."""
    from pyhanko.sign.fields import MDPPerm

    from app.audit import AuditEvent
    from modules.copies.models import State

    _client, _headers, open_job = plugin_leader
    anonymous = app.test_client()
    pk, job = open_job()
    prepared = _download(anonymous, job)
    leader_b = _demo_signer(app, "leader.b")
    signed = {
        "extra_page": lambda: plugin_sign(prepared, leader_b, tamper=_extra_page),
        "annotation": lambda: plugin_sign(prepared, leader_b, tamper=_annotation),
        "javascript": lambda: plugin_sign(prepared, leader_b, tamper=_javascript),
        "another_signer": lambda: plugin_sign(prepared, _demo_signer(app, "leader.a")),
        "office_seal_key": lambda: plugin_sign(prepared, _office_seal_signer(app, OFFICE_B)),
        "seal_field": lambda: plugin_sign(prepared, leader_b, field="DauCoQuan",
                                          new_field=False),
        "two_signatures": lambda: plugin_sign(plugin_sign(prepared, leader_b), leader_b,
                                              field="Signature2"),
        "not_prepared": lambda: plugin_sign(_scan_of(app, db_session, pk), leader_b),
        "forbids_the_seal": lambda: plugin_sign(prepared, leader_b,
                                                certify=MDPPerm.NO_CHANGES),
        "usage_rights": lambda: plugin_sign(prepared, leader_b, tamper=_usage_rights,
                                            certify=MDPPerm.FILL_FORMS),
        "junk": lambda: prepared + b"\n%%EOF\n",
    }[case]()
    before = db_session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.event == "external_signature_refused"))
    r = _upload(anonymous, job, signed)
    assert r.status_code == 422, (case, r.get_json())
    answer = r.get_json()
    assert answer["Status"] != 0 and answer["Message"]
    copy = state_of(db_session, pk)
    assert copy.state is State.awaiting_signature and copy.document.stage.value == "scanned"
    assert copy.document.current_sha256 == copy.document.scan_sha256
    assert db_session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.event == "external_signature_refused")) == before + 1


def _scan_of(app, db_session, pk) -> bytes:
    """The scan alone: a signature over it is not over what the leader was shown."""
    return app.extensions["saoy_files"].read_bytes(state_of(db_session, pk).document.scan_sha256)


def test_a_job_dies_with_its_request_expires_and_cannot_serve_another(
        app, db_session, plugin_leader):
    from modules.signing.models import ExternalSigningJob

    client, headers, open_job = plugin_leader
    anonymous = app.test_client()
    signer = _demo_signer(app, "leader.b")
    # returned while the plugin works: the late upload is refused
    pk, job = open_job()
    prepared = _download(anonymous, job)
    assert client.post(f"/api/v1/copy/{pk}/return", headers=headers,
                       json={"reason": "Bản chính bị mờ"}).status_code == 200
    r = _upload(anonymous, job, plugin_sign(prepared, signer))
    assert r.status_code == 422 and "returned" in r.get_json()["Message"] or \
        "trả lại" in r.get_json()["Message"]
    assert state_of(db_session, pk).state.value == "returned"
    # pressed twice: the first job died with the second
    pk, first = open_job()
    _pk, second = open_job(pk)
    r = _upload(anonymous, first, plugin_sign(_download(anonymous, second), signer))
    assert r.status_code == 422  # the first job is cancelled
    # expired
    pk, job = open_job()
    prepared = _download(anonymous, job)
    with atomic(db_session):
        found = db_session.scalars(select(ExternalSigningJob).where(
            ExternalSigningJob.document_id == state_of(db_session, pk).document_id,
            ExternalSigningJob.state == "pending")).one()
        found.expires_at = found.expires_at - dt.timedelta(hours=1)
    assert _upload(anonymous, job, plugin_sign(prepared, signer)).status_code == 422
    # another job's file
    pk_a, job_a = open_job()
    pk_b, job_b = open_job()
    signed_b = plugin_sign(_download(anonymous, job_b), signer)
    _download(anonymous, job_a)
    assert _upload(anonymous, job_a, signed_b).status_code == 422
    assert state_of(db_session, pk_a).state.value == "awaiting_signature"
    # an unknown token
    assert anonymous.post("/signing/upload/not-a-token", data=b"%PDF-").status_code == 404
    assert anonymous.get("/signing/file/not-a-token").status_code == 404


def test_two_uploads_at_once_take_one(app, db_session, plugin_leader):
    _client, _headers, open_job = plugin_leader
    pk, job = open_job()
    prepared = _download(app.test_client(), job)
    signed = plugin_sign(prepared, _demo_signer(app, "leader.b"))
    barrier = threading.Barrier(2)

    def upload(_n):
        barrier.wait(10)
        return _upload(app.test_client(), job, signed).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(upload, range(2)))
    assert codes == [200, 422], codes
    assert state_of(db_session, pk).state.value == "signed"


def test_a_leader_signs_only_their_offices_requests_and_only_as_themselves(
        app, api, db_session, plugin_leader):
    _client, _headers, _open = plugin_leader
    pk_a = _request(app, db_session, "a")
    client, headers = api("leader.b")
    assert client.post(f"/api/v1/copy/{pk_a}/request_signature", headers=headers,
                       json={}).status_code == 404
    officer, oh = api("officer.b")
    pk_b = _request(app, db_session, "b")
    assert officer.post(f"/api/v1/copy/{pk_b}/request_signature", headers=oh,
                        json={}).status_code == 403


# --- server custody and the leader's own code ---------------------------------------------

def _close_session(app, username):
    from sqlalchemy.orm import Session

    from modules.signing.models import SecondFactor

    with Session(bind=engine_of(app)) as session:
        user = user_named(session, username)
        factor = session.scalars(select(SecondFactor).where(
            SecondFactor.user_id == user.id)).one()
        factor.session_until, factor.failures, factor.locked_until = None, 0, None
        session.commit()


@pytest.fixture()
def no_session(app):
    _close_session(app, "leader.a")
    yield
    open_signing_session(app, "leader.a")


def test_server_custody_signs_only_with_the_leaders_code(app, api, db_session, doc_type,
                                                         no_session):
    from modules.signing.demo import DEMO_CODE_SECRET
    from modules.signing.second_factor import current_code

    client, headers = api("leader.a")
    pk = _submitted(app, db_session, doc_type)
    r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={})
    assert r.status_code == 401 and "otp" in r.get_json()["message"]
    r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={"otp": "000000"})
    assert r.status_code == 403
    assert state_of(db_session, pk).state.value == "awaiting_signature"
    code = current_code(DEMO_CODE_SECRET)
    r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={"otp": code})
    assert r.status_code == 200 and r.get_json()["state"] == "signed", r.get_json()
    other = _submitted(app, db_session, doc_type)  # the session lasts the day
    assert client.post(f"/api/v1/copy/{other}/sign", headers=headers,
                       json={}).status_code == 200
    _close_session(app, "leader.a")
    third = _submitted(app, db_session, doc_type)
    r = client.post(f"/api/v1/copy/{third}/sign", headers=headers, json={"otp": code})
    assert r.status_code == 403  # a code is taken once


def test_five_wrong_codes_pause_signing(app, api, db_session, doc_type, no_session):
    from modules.signing.demo import DEMO_CODE_SECRET
    from modules.signing.second_factor import current_code

    client, headers = api("leader.a")
    pk = _submitted(app, db_session, doc_type)
    answers = [client.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                           json={"otp": f"{n:06d}"}).status_code for n in range(1, 6)]
    assert answers == [403] * 5
    r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers,
                    json={"otp": current_code(DEMO_CODE_SECRET)})
    assert r.status_code == 429  # even the right code waits


def test_an_office_admin_who_resets_a_leaders_password_cannot_sign_as_the_leader(
        app, login, db_session, doc_type):
    """The takeover measured on main: officeadmin.a reset leader.a's password, signed in as
    leader.a and signed.  Now the reset ends the signing session, a code only the leader's
    phone shows is needed, and no new code can be set up."""
    admin_web = login("officeadmin.a")
    leader = user_named(db_session, "leader.a")
    pk = _submitted(app, db_session, doc_type)
    r = admin_web.post(f"/resetpassword/form?pk={leader.id}", data={
        "password": "Mat-khau-moi-2026", "conf_password": "Mat-khau-moi-2026"})
    assert r.status_code == 302
    try:
        attacker = login("leader.a", "Mat-khau-moi-2026")
        r = attacker.post(f"/copies/request/{pk}/do/sign", data={}, follow_redirects=True)
        assert state_of(db_session, pk).state.value == "awaiting_signature"
        for guess in ("123456", "000000"):
            attacker.post(f"/copies/request/{pk}/do/sign", data={"otp": guess})
        assert state_of(db_session, pk).state.value == "awaiting_signature"
        page = attacker.get("/signing/code/").get_data(as_text=True)
        assert 'id="code-secret"' not in page  # no new code to set up
        r = attacker.post("/signing/code/", data={"code": "123456"}, follow_redirects=True)
        assert state_of(db_session, pk).state.value == "awaiting_signature"
        # and the plugin path is not this leader's (their key is the server's)
        assert attacker.post(f"/copies/request/{pk}/do/request_signature",
                             data={}).status_code == 302
        assert state_of(db_session, pk).document.stage.value == "scanned"
    finally:
        with app.app_context():
            from app.extensions import db

            app.appbuilder.sm.reset_password(leader.id, "saoy-demo")
            db.session.remove()
        open_signing_session(app, "leader.a")


def test_a_leaders_key_on_the_server_without_custody_signs_nothing(app, api, db_session,
                                                                     doc_type):
    from modules.signing.models import SigningKey

    leader = user_named(db_session, "leader.a")
    key = db_session.scalars(select(SigningKey).where(SigningKey.user_id == leader.id,
                                                      SigningKey.active.is_(True))).one()
    since = key.server_custody_at
    with atomic(db_session):
        key.server_custody_at = None
    try:
        client, headers = api("leader.a")
        pk = _submitted(app, db_session, doc_type)
        r = client.post(f"/api/v1/copy/{pk}/sign", headers=headers, json={})
        message = r.get_json()["message"]
        assert r.status_code == 403 and "lưu giữ trên máy chủ" in message, message
    finally:
        with atomic(db_session):
            db_session.get(SigningKey, key.id).server_custody_at = since


def test_the_verification_page_says_who_held_the_key(app, api, db_session, doc_type):
    from tests.test_trust import _to_delivery

    delivered = _to_delivery(api, db_session, _submitted(app, db_session, doc_type))
    assert "verify_code" in delivered, delivered
    report = app.test_client().get(f"/api/v1/verify/{delivered['verify_code']}").get_json()
    leader = next(s for s in report["signatures"] if s["role"] == "leader")
    assert leader["custody"] == "server" and leader["custody_since"]
    page = app.test_client().get(f"/verify/{delivered['verify_code']}").get_data(as_text=True)
    assert "Khóa của lãnh đạo này do máy chủ lưu giữ" in page


def test_the_plugin_page_hands_out_saoys_own_signer(app):
    from pathlib import Path

    r = app.test_client().get("/signing/saoy_signer.py")
    program = Path(__file__).resolve().parent.parent / "signer" / "saoy_signer.py"
    assert r.status_code == 200 and r.data == program.read_bytes()
    page = app.test_client().get("/signing/plugin").get_data(as_text=True)
    assert "/signing/saoy_signer.py" in page and "do-register-token" not in page  # anonymous
