"""Signing with real parts: demo PKCS#12, SoftHSM2 over PKCS#11, pyHanko and pdfsig."""
from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app.transactions import atomic
from tests.conftest import user_named
from tests.pdfs import pdfsig, scan_pdf
from tests.softhsm import softhsm_lib


def sign_leader(session, user, doc_id, placement=None):
    """The leader's signature as the workflow makes it: prepared, then recorded, in one
    unit of work (the test is the edge)."""
    from modules.signing import services

    with atomic(session):
        version = services.prepare_leader_signature(session, user, doc_id, placement)
        return services.record_leader_signature(session, user, doc_id, version)


def seal(session, user, doc_id, number, book):
    from modules.signing import services

    with atomic(session):
        version = services.prepare_seal(session, user, doc_id, number, book)
        return services.record_seal(session, user, doc_id, version, number, book)


def new_document(session, office_id, scan_bytes, **kwargs):
    from app.storage import file_store
    from modules.signing import services

    with atomic(session):
        return services.create_document(session, office_id, file_store().put_bytes(scan_bytes),
                                        **{"document_type": None, "pages": 2, **kwargs})


@pytest.fixture()
def signing_ctx(app):
    """An app context for calling the signing services directly (file store, config).

    Tests that also make requests use ``sealed_copy`` instead: a context kept pushed
    would be shared with the test client's requests.  The test is the edge: each of its
    steps is one unit of work (the services never commit).
    """
    from app.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture()
def sealed_copy(app, scan):
    """``sealed_copy(number=…)`` → (verify_code, access_code, leader_version, sealed bytes)."""

    def make(**kwargs):
        from app.extensions import db

        with app.app_context():
            doc, leader_version, sealed = make_sealed(db.session, scan, **kwargs)
            return doc.verify_code, doc.access_code, leader_version, sealed

    return make


@pytest.fixture(scope="module")
def scan():
    return scan_pdf(pages=2, dpi=150)


def make_sealed(session, scan_bytes, leader="leader.a", clerk="clerk.a", number="15"):
    from app.storage import file_store
    from modules.signing import services

    leader_user = user_named(session, leader)
    sha = file_store().put_bytes(scan_bytes)
    with atomic(session):  # the test is the edge: one unit of work per step
        doc = services.create_document(session, leader_user.office_id, sha,
                                       document_type="Giấy khai sinh", pages=2)
    sign_leader(session, leader_user, doc.id)
    signed = services.read_current(doc)
    seal(session, user_named(session, clerk), doc.id, number, "01/2026-SCTĐT/BS")
    return doc, signed, services.read_current(doc)


def validated(doc) -> dict:
    """What the delivery gate finds in the current file (sealing itself validates nothing:
    delivery validates the whole file once)."""
    from modules.signing import services

    return services.validate_bytes(services.read_current(doc)).to_dict()


def test_certified_copy_keeps_the_scan_and_validates(signing_ctx, scan):
    doc, leader_version, sealed = make_sealed(signing_ctx, scan)
    assert leader_version.startswith(scan) and sealed.startswith(leader_version)
    report = validated(doc)
    assert report["valid"] and not report["modified_after_signing"]
    by_role = {s["role"]: s for s in report["signatures"]}
    assert by_role["leader"]["intact"] and by_role["leader"]["trusted"]
    assert by_role["leader"]["modification_level"] == "FORM_FILLING"
    assert by_role["seal"]["intact"] and by_role["seal"]["trusted"]
    assert by_role["leader"]["signer"] == "Trần Thị Bình"
    assert by_role["leader"]["identity"] == "CCCD:079190000011"
    assert by_role["leader"]["signing_time"].endswith("+07:00")


def test_pdfsig_agrees_both_signatures_valid_and_trusted(app, signing_ctx, scan, tmp_path):
    _, _, sealed = make_sealed(signing_ctx, scan)
    out = pdfsig(app, tmp_path, sealed)
    assert out.count("Signature is Valid.") == 2, out
    assert out.count("Certificate is Trusted.") == 2, out


def test_attestation_page_renders_vietnamese(signing_ctx, scan, tmp_path):
    _, _, sealed = make_sealed(signing_ctx, scan)
    path = tmp_path / "c.pdf"
    path.write_bytes(sealed)
    subprocess.run(["pdftoppm", "-f", "3", "-l", "3", "-r", "60", "-png", str(path),
                    str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    from PIL import Image

    img = Image.open(png).convert("L")
    w, h = img.size
    top = img.crop((0, 0, w, h // 3))
    dark = sum(1 for p in top.getdata() if p < 100)
    assert dark > 500  # text, fields, QR and signatures are drawn
    text = subprocess.run(["pdftotext", "-f", "3", "-l", "3", str(path), "-"],
                          capture_output=True, text=True).stdout
    assert "Chứng thực bản sao đúng với bản chính." in text
    assert "NGƯỜI THỰC HIỆN CHỨNG THỰC" in text


def test_the_qr_code_on_the_copy_scans_to_its_verification_page(signing_ctx, scan, tmp_path):
    """What a phone reads from the printed copy (zbar, from Debian): the copy's own public
    verification address — whoever draws the code (it is drawn by hand now, for speed)."""
    doc, _, sealed = make_sealed(signing_ctx, scan)
    path = tmp_path / "c.pdf"
    path.write_bytes(sealed)
    subprocess.run(["pdftoppm", "-f", "3", "-l", "3", "-r", "150", "-gray", "-png",
                    "-singlefile", str(path), str(tmp_path / "page")], check=True)
    read = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                           str(tmp_path / "page.png")], capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip().endswith(f"/verify/{doc.verify_code}")


def _verify_upload(client, data: bytes):
    return client.post("/api/v1/verify", data={"file": (io.BytesIO(data), "x.pdf")},
                       content_type="multipart/form-data").get_json()


def test_one_byte_changed_is_reported(client, sealed_copy, scan):
    *_, sealed = sealed_copy()
    at = len(scan) // 2
    tampered = sealed[:at] + bytes([sealed[at] ^ 0x01]) + sealed[at + 1:]
    result = _verify_upload(client, tampered)
    assert result["valid"] is False
    assert any(not s["intact"] for s in result["signatures"])
    page = client.post("/verify/", data={"file": (io.BytesIO(tampered), "x.pdf")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "Không hợp lệ" in page


def _paint_over(pdf: bytes) -> bytes:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    stream = writer.add_object(generic.StreamObject(
        stream_data=b"q 1 1 1 rg 50 600 400 150 re f 0 0 0 rg Q"))
    writer.add_stream_to_page(0, stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_paint_over_update_is_reported_as_modified(client, app, sealed_copy, tmp_path):
    *_, sealed = sealed_copy()
    painted = _paint_over(sealed)
    result = _verify_upload(client, painted)
    assert result["valid"] is False and result["modified_after_signing"] is True
    assert result["verdict"] == "tampered"
    last = result["revisions"][-1]
    assert last["covered_by"] is None and last["signature"] is None
    (change,) = last["changes"]
    assert change["page"] == 1 and change["kind"] == "page_content"
    x1, y1, x2, y2 = change["bbox"]  # the white box drawn at 50,600–450,750
    assert all(abs(got - want) < 12 for got, want in zip((x1, y1, x2, y2), (50, 600, 450, 750),
                                                         strict=True))  # 50 dpi, 6 px blocks
    page = client.post("/verify/", data={"file": (io.BytesIO(painted), "x.pdf")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "đã bị thay đổi sau khi ký" in page
    assert pdfsig(app, tmp_path, painted).count("Signature is Valid.") == 2  # pdfsig misses it


def test_public_page_by_code_and_secret_download(client, sealed_copy):
    code, access, _, sealed = sealed_copy(number="27")
    page = client.get(f"/verify/{code}").get_data(as_text=True)
    assert "UBND Phường Sài Gòn" in page and "27" in page and "01/2026-SCTĐT/BS" in page
    assert "Hợp lệ" in page
    data = client.get(f"/api/v1/verify/{code}").get_json()
    assert data["valid"] and data["copy"]["number"] == "27"
    assert data["verdict"] == "valid"  # the seal fills fields the leader's revision prepared
    assert {s["role"] for s in data["signatures"]} == {"leader", "seal"}
    assert {s["role"] for s in data["signatures"]} == {"leader", "seal"}
    assert client.post(f"/verify/{code}/file", data={"access_code": "wrong"}).status_code == 404
    r = client.post(f"/verify/{code}/file", data={"access_code": access})
    assert r.status_code == 200 and r.data == sealed
    assert client.get("/verify/NOSUCHCODE").status_code == 404
    assert client.get("/api/v1/verify/NOSUCHCODE").status_code == 404


def test_unreadable_upload_is_a_plain_answer(client):
    result = _verify_upload(client, b"this is not a pdf at all")
    assert result["readable"] is False and result["valid"] is False
    assert result["verdict"] == "unreadable" and "PDF" in result["summary"]["vi"]


def test_delivery_gate_refuses_a_tampered_file(signing_ctx, scan):
    from app.storage import file_store
    from modules.signing import services

    doc, _, sealed = make_sealed(signing_ctx, scan)
    clerk = user_named(signing_ctx, "clerk.a")
    assert services.check_delivery(signing_ctx, clerk, doc.id).valid
    with atomic(signing_ctx):
        doc.current_sha256 = file_store().put_bytes(_paint_over(sealed))
    with pytest.raises(services.SigningError):
        services.check_delivery(signing_ctx, clerk, doc.id)


def test_leader_chooses_page_and_rectangle(signing_ctx, scan):
    from modules.signing import pdf, services

    leader = user_named(signing_ctx, "leader.a")
    doc = new_document(signing_ctx, leader.office_id, scan, document_type="Học bạ")
    with pytest.raises(services.SigningError) as err:
        sign_leader(signing_ctx, leader, doc.id,
                             pdf.Placement(page=1, rect=(0, 0, 50, 50)))
    assert err.value.status == 422
    sign_leader(signing_ctx, leader, doc.id,
                         pdf.Placement(page=1, rect=(100, 80, 540, 400)))
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(services.read_current(doc))).pages) == 2  # no page added
    seal(signing_ctx, user_named(signing_ctx, "clerk.a"), doc.id, "31", "01/2026-SCTĐT/BS")
    assert validated(doc)["valid"]


def test_leader_of_another_office_cannot_sign(signing_ctx, scan):
    from app.errors import NotFoundError as NotFound

    leader_a = user_named(signing_ctx, "leader.a")
    doc = new_document(signing_ctx, leader_a.office_id, scan)
    with pytest.raises(NotFound):
        sign_leader(signing_ctx, user_named(signing_ctx, "leader.b"), doc.id)


def test_leader_signs_with_a_softhsm_token(app, hsm, signing_ctx, scan, monkeypatch, tmp_path):
    """The administrator binds a key on a declared token (its certificate names someone
    else, so only with the fingerprint confirmed); a wrong PIN is a clear refusal."""
    from app.transactions import atomic
    from modules.signing import keys, services
    from tests.keys import signing_with

    pin = tmp_path / "token.pin"
    pin.write_text("123456")
    monkeypatch.setitem(app.config, "TRUST_DIR", hsm["root"])
    monkeypatch.setitem(app.config, "PKCS11_LIB", softhsm_lib())
    monkeypatch.setitem(app.config, "PKCS11_TOKENS", {"saoy-test": str(pin)})
    admin, leader = user_named(signing_ctx, "admin"), user_named(signing_ctx, "leader.a")
    register = dict(office_id=leader.office_id, user_id=leader.id, name="HSM",
                    token_label="saoy-test", key_label="leader-key")
    with pytest.raises(keys.KeyRegistrationError) as refused:
        keys.register_pkcs11(signing_ctx, admin, **register)
    signing_ctx.rollback()
    fingerprint = refused.value.message.split()[-1].rstrip(".")
    assert "Lê Thị Token" in refused.value.message and len(fingerprint) == 64
    existing = signing_ctx.scalars(select(keys.SigningKey).where(
        keys.SigningKey.fingerprint == fingerprint)).first()
    with atomic(signing_ctx):
        key = existing or keys.register_pkcs11(signing_ctx, admin, **register,
                                               confirmed_fingerprint=fingerprint)
        keys.choose_server_custody(signing_ctx, admin, key.id)  # a leader's key on a server
    with signing_with(signing_ctx, leader.office_id, leader.id, key.id):
        doc = new_document(signing_ctx, leader.office_id, scan)
        sign_leader(signing_ctx, leader, doc.id)
        seal(signing_ctx, user_named(signing_ctx, "clerk.a"), doc.id, "40", "01/2026-SCTĐT/BS")
        leader_sig = next(s for s in validated(doc)["signatures"] if s["role"] == "leader")
        assert leader_sig["signer"] == "Lê Thị Token" and leader_sig["trusted"]
        assert validated(doc)["valid"]
        pin.write_text("000000")  # wrong PIN: a clear refusal, no path, nothing signed
        doc2 = new_document(signing_ctx, leader.office_id, scan)
        with pytest.raises(services.SigningError) as err:
            sign_leader(signing_ctx, leader, doc2.id)
        assert "/" not in err.value.message and "PIN" in err.value.message
        assert doc2.stage.value == "scanned"


def test_attestation_carries_the_verification_url_not_the_number(signing_ctx, scan, tmp_path):
    doc, _, sealed = make_sealed(signing_ctx, scan, number="77")
    path = tmp_path / "c.pdf"
    path.write_bytes(sealed)
    text = subprocess.run(["pdftotext", "-f", "3", "-l", "3", str(path), "-"],
                          capture_output=True, text=True).stdout
    assert f"/verify/{doc.verify_code}" in text
    # The code is random, never the number (a random code may contain "77" by chance).
    assert "/verify/77" not in text and doc.verify_code != doc.number
    assert len(doc.verify_code) == 16


def test_timestamps_from_a_local_tsa(app, signing_ctx, scan, monkeypatch):
    from modules.signing.pki import DemoPki
    from tests.servers import TsaServer

    pki = DemoPki(Path(app.config["DATA_DIR"]) / "pki")
    tsa_key = pki.issue_tsa()
    tsa = TsaServer(str(tsa_key.cert_pem_path), str(tsa_key.key_pem_path), str(pki.root_pem))
    try:
        monkeypatch.setitem(app.config, "TSA_URL", tsa.url)
        doc, _, _ = make_sealed(signing_ctx, scan)
        assert tsa.requests >= 2  # pyHanko also asks once to size the reserved space
        for sig in validated(doc)["signatures"]:
            assert sig["time_source"] == "tsa" and sig["timestamp_time"]
        assert validated(doc)["valid"]
    finally:
        tsa.close()
    monkeypatch.setitem(app.config, "TSA_URL", None)
    doc, _, _ = make_sealed(signing_ctx, scan)
    assert {s["time_source"] for s in validated(doc)["signatures"]} == {"server clock"}


def test_office_admin_uploads_a_transparent_seal_image(login, app, db_session, office):
    from modules.signing.demo import seal_png
    from modules.signing.models import SignerProfile

    def profile_of(letter):
        return db_session.scalars(select(SignerProfile).where(
            SignerProfile.office_id == office(letter).id,
            SignerProfile.user_id.is_(None))).one()

    own, foreign = profile_of("A"), profile_of("B")
    foreign_before = foreign.image_sha256
    web = login("officeadmin.a")
    with app.app_context():
        png = seal_png("UBND Phường Sài Gòn")
    r = web.post(f"/signerprofileview/image/{own.id}",
                 data={"image": (io.BytesIO(b"GIF89a not a png"), "x.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 422 and "không phải là hình ảnh" in r.get_data(as_text=True)
    assert web.post(f"/signerprofileview/image/{foreign.id}",
                    data={"image": (io.BytesIO(png), "seal.png")},
                    content_type="multipart/form-data").status_code == 404
    r = web.post(f"/signerprofileview/image/{own.id}", data={"image": (io.BytesIO(png), "s.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 302
    db_session.expire_all()
    assert profile_of("A").image_sha256 == hashlib.sha256(png).hexdigest()
    assert profile_of("B").image_sha256 == foreign_before  # office B's seal untouched


def test_markup_in_a_title_or_a_name_is_printed_as_text_and_fetches_nothing(
        signing_ctx, scan, monkeypatch):
    """The issue's SSRF and file read: ReportLab markup in the signer's title (set by the
    office admin) or in the leader's own name was fetched and drawn; a bare ``<`` made
    every signature a 500.  Now both are text, and signing opens no socket at all."""
    import http.server
    import socket
    import threading

    from modules.signing.models import SignerProfile
    from tests.pdfs import pdf_text

    hits: list[str] = []

    class Bait(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    bait = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bait)
    threading.Thread(target=bait.serve_forever, daemon=True).start()
    session = signing_ctx
    leader = user_named(session, "leader.a")
    profile = session.scalar(select(SignerProfile).where(SignerProfile.user_id == leader.id))
    saved = profile.title, leader.last_name
    with atomic(session):
        profile.title = (f'Phó Chủ tịch<img src="http://127.0.0.1:{bait.server_port}/x" '
                         'width="10" height="10"/> a < b')
        leader.last_name = 'Văn <img src="/etc/hostname"/> &'  # a server file
    connections: list = []
    real_connect = socket.socket.connect

    def watched(sock, address):
        connections.append(address)
        return real_connect(sock, address)

    try:
        doc = new_document(session, leader.office_id, scan)
        monkeypatch.setattr(socket.socket, "connect", watched)
        sign_leader(session, leader, doc.id)
        monkeypatch.undo()
    finally:
        bait.shutdown()
        with atomic(session):
            profile.title, leader.last_name = saved
    from modules.signing import services

    text = pdf_text(services.read_current(session.get(type(doc), doc.id)))
    assert hits == [] and connections == []
    assert "Phó Chủ tịch<img" in text and "a < b" in text and "hostname" in text
