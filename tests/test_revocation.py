"""Revocation, for real: a test PKI whose OCSP responder and CRLs answer on loopback
(certomancer, tests/revocation_pki.py).  The issue measured that a revoked leader
certificate signed, sealed and verified "valid"."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.demo import OFFICE_A, OFFICE_B
from app.transactions import atomic
from modules.registers.services import number_shown
from modules.signing.revocation import forget_answers
from tests.conftest import user_named
from tests.keys import profile_of, signing_with
from tests.revocation_pki import make_pki
from tests.servers import free_port
from tests.test_copies import state_of
from tests.test_leader_signing import _download, _upload, plugin_sign
from tests.test_write_path import _forwarded_in


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), free_port(), "UBND Phường Sài Gòn",
                   "Vũ Thị Giang", "UBND Phường Tân Định")
    pki.start()
    yield pki
    pki.stop()


@pytest.fixture()
def trusting(app, test_pki, monkeypatch):
    """The test PKI's root and issuing CA configured as trusted (SAOY_TRUST_DIR)."""
    monkeypatch.setitem(app.config, "TRUST_DIR", str(test_pki.roots_folder()))
    return test_pki


def _office(db_session, code: str) -> int:
    from app.offices.models import Office

    return db_session.scalars(select(Office.id).where(Office.code == code)).one()


def _seal_key(app, db_session, pki, label: str) -> int:
    """The certificate registered by the administrator as office A's seal (once per
    database)."""
    from modules.signing import keys
    from modules.signing.models import SigningKey

    der = pki.cert_der(label)
    known = db_session.scalars(select(SigningKey.id).where(
        SigningKey.fingerprint == hashlib.sha256(der).hexdigest())).first()
    if known:
        return known
    with app.test_request_context(), atomic(db_session):
        return keys.register_pkcs12(db_session, user_named(db_session, "admin"),
                                    office_id=_office(db_session, OFFICE_A), user_id=None,
                                    name=label, data=pki.p12(label), passphrase="test").id


def _pay_and_deliver(api, pk: int, receipt: str):
    """The clerk records the fee, then delivers; the delivery's answer."""
    clerk, headers = api("clerk.a")
    assert clerk.post(f"/api/v1/copy/{pk}/pay", headers=headers,
                      json={"receipt_number": receipt}).status_code == 200
    return clerk.post(f"/api/v1/copy/{pk}/deliver", headers=headers, json={})


def _delivered_file(app, db_session, pk: int):
    """The request's document and the bytes of the copy as delivered."""
    from app.storage import file_store
    from modules.copies.models import CopyRequest

    db_session.expire_all()
    doc = db_session.get(CopyRequest, pk).document
    with app.app_context():
        return doc, file_store().read_bytes(doc.current_sha256)


def _seal(api, pk: int, register_id: int):
    clerk, headers = api("clerk.a")
    return clerk.post(f"/api/v1/copy/{pk}/seal", headers={**headers, "Accept-Language": "vi"},
                      json={"register_id": register_id})


def test_a_revoked_seal_certificate_seals_nothing_and_a_silent_responder_is_try_again(
        app, api, db_session, trusting):
    from modules.registers.models import Register
    from modules.signing import revocation

    pk, register_id = _forwarded_in(app, db_session, api, "A")
    office_a = _office(db_session, OFFICE_A)
    number = number_shown(db_session, db_session.get(Register, register_id))
    with signing_with(db_session, office_a, None, _seal_key(app, db_session, trusting,
                                                              "seal-revoked")):
        refused = _seal(api, pk, register_id)
    assert refused.status_code == 422, refused.get_json()
    assert "thu hồi" in refused.get_json()["message"]  # revoked, said so in Vietnamese
    with signing_with(db_session, office_a, None, _seal_key(app, db_session, trusting,
                                                              "seal-good")):
        revocation.forget_answers()  # nothing kept from the answers above
        trusting.stop()
        try:
            silent = _seal(api, pk, register_id)
        finally:
            trusting.start()
        assert silent.status_code == 503 and "thử lại" in silent.get_json()["message"]
        db_session.expire_all()
        assert state_of(db_session, pk).state.value == "awaiting_seal"
        assert number_shown(db_session, db_session.get(Register, register_id)) == number
        sealed = _seal(api, pk, register_id)
    assert sealed.status_code == 200 and sealed.get_json()["number"] == str(number)


def test_a_leader_whose_certificate_was_revoked_signs_nothing_through_the_plugin(
        app, api, db_session, trusting):
    """leader.b's registered certificate was revoked (the token was lost): the plugin's
    signed file is refused, the request still waits for a signature."""
    from modules.signing import keys
    from modules.signing.signers import load_pkcs12
    from tests.test_leader_signing import _request

    leader = user_named(db_session, "leader.b")
    office_b = _office(db_session, OFFICE_B)
    original = profile_of(db_session, office_b, leader.id).key_id
    with app.test_request_context(), atomic(db_session):
        key = keys.announce_agent_key(db_session, leader, trusting.cert_der("leader-revoked"))
    with app.test_request_context(), atomic(db_session):  # approving binds it to leader.b
        keys.approve_key(db_session, user_named(db_session, "admin"), key.id)
    pk = _request(app, db_session, "b")
    try:
        with signing_with(db_session, office_b, leader.id, key.id):
            client, headers = api("leader.b")
            r = client.post(f"/api/v1/copy/{pk}/request_signature", headers=headers, json={})
            assert r.status_code == 200, r.get_json()
            job = r.get_json()["signing"]
            plugin = app.test_client()
            signer = load_pkcs12(trusting.p12("leader-revoked"), b"test")
            answer = _upload(plugin, job, plugin_sign(_download(plugin, job), signer))
    finally:  # leader.b signs with the demo token again
        with atomic(db_session):
            profile_of(db_session, office_b, leader.id).key_id = original
    assert answer.get_json()["Status"] != 0
    assert "revoked" in answer.get_json()["Message"] or "thu hồi" in answer.get_json()[
        "Message"]
    assert state_of(db_session, pk).state.value == "awaiting_signature"


# --- PAdES B-LTA at delivery -----------------------------------------------------------------

def _lta_spec(root_der: bytes):
    """pyHanko's AdES validation of a B-LTA file with no network at all (LOCAL_ONLY)."""
    from asn1crypto import x509
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
    from pyhanko_certvalidator.registry import SimpleTrustManager

    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build([x509.Certificate.load(root_der)]),
            revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy(
                "hard-fail"))),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def _seal_signature(data: bytes):
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    from modules.signing.pdf import FIELD_SEAL

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    return next(s for s in reader.embedded_signatures if s.field_name == FIELD_SEAL)


def test_a_delivered_copy_is_b_lta_and_validates_offline_and_in_twenty_years(
        app, api, db_session, trusting, monkeypatch, tmp_path):
    """Delivery adds the /DSS (chains, OCSP and CRL answers) and a document timestamp:
    pyHanko's AdES LTA validation passes with the responders switched off, pdfsig agrees,
    10 years ahead (the seal's certificate expired) passes, and 20 years ahead (the TSA's
    expired too) passes after one renewal with a newer TSA (AdES indication PASSED; the
    simulation assumes the archive is kept up, which the renewal does)."""
    import asyncio
    import datetime as dt
    import io

    from pyhanko.sign.ades.report import AdESPassed
    from pyhanko.sign.validation.ades import (
        ades_lta_validation,
        simulate_future_ades_lta_validation,
    )

    from app.storage import file_store
    from modules.signing.jobs import renew_archives
    from modules.signing.pdf import FIELD_SEAL
    from tests.pdfs import pdfsig

    monkeypatch.setitem(app.config, "TSA_URL", trusting.tsa_url())
    pk, register_id = _forwarded_in(app, db_session, api, "A")
    office_a = _office(db_session, OFFICE_A)
    with signing_with(db_session, office_a, None, _seal_key(app, db_session, trusting,
                                                              "seal-good")):
        assert _seal(api, pk, register_id).status_code == 200
        delivered = _pay_and_deliver(api, pk, "BL-1")
    assert delivered.status_code == 200, delivered.get_json()
    doc, data = _delivered_file(app, db_session, pk)
    assert b"/DSS" in data and b"/DocTimeStamp" in data
    answer = app.test_client().post("/api/v1/verify", content_type="multipart/form-data",
                                    data={"file": (io.BytesIO(data), "copy.pdf")}).get_json()
    assert answer["long_term"] == "B-LTA" and answer["verdict"] == "valid", answer
    revocations = {s["field"]: s["revocation"] for s in answer["signatures"]
                   if s["kind"] == "signature"}
    assert revocations[FIELD_SEAL] == "good"  # its OCSP/CRL answers are in the copy
    trusting.stop()  # no network from here on
    try:
        spec = _lta_spec(trusting.cert_der("root"))
        now = asyncio.run(ades_lta_validation(_seal_signature(data), spec))
        assert now.ades_subindic is AdESPassed.OK and now.api_status.bottom_line
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3653)
        assert asyncio.run(simulate_future_ades_lta_validation(
            _seal_signature(data), spec, later)).ades_subindic is AdESPassed.OK
    finally:
        trusting.start()
    root_pem = tmp_path / "pki-root.pem"
    root_pem.write_bytes((trusting.roots_folder() / "root.pem").read_bytes())
    checked = pdfsig(app, tmp_path, data, extra_roots=(str(root_pem),))
    assert checked.count("Signature is Valid") >= 2, checked
    assert doc.archive_until == dt.datetime(2040, 1, 1)  # the TSA certificate's end
    # The nightly renewal, 15 years on (its margin reaches 2040): fresh answers for the old
    # TSA's chain, then a stamp by the newer TSA; the next renewal is due before 2070.
    monkeypatch.setitem(app.config, "TSA_URL", trusting.tsa_url("tsa2"))
    with app.app_context():
        from app.extensions import db

        done = renew_archives(db.session, dt.timedelta(days=15 * 366), limit=1)
        assert done == {"renewed": 1, "skipped": 0, "failed": 0}  # the soonest first
        renewed_doc = db.session.get(type(doc), doc.id)
        renewed = file_store().read_bytes(renewed_doc.current_sha256)
        assert renewed_doc.archive_until == dt.datetime(2070, 1, 1)
    assert renewed.startswith(data) and renewed.count(b"/DocTimeStamp") > data.count(
        b"/DocTimeStamp")
    trusting.stop()
    try:
        twenty = dt.datetime.now(dt.UTC) + dt.timedelta(days=7305)
        result = asyncio.run(simulate_future_ades_lta_validation(
            _seal_signature(renewed), spec, twenty))
        assert result.ades_subindic is AdESPassed.OK, result.failure_msg
    finally:
        trusting.start()


def test_the_archive_is_one_revision_and_a_tsa_that_changed_certificate_is_covered(
        app, trusting):
    """The /DSS of every chain and the document timestamp go in one incremental update
    (the delivery's cost); a TSA that answers with another certificate than the one the
    kept timestamper prepared for (a rollover at the same address) still gets its chain
    into the /DSS, in one more update."""
    import io

    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    from modules.signing import archive
    from modules.signing.tsa import AllowedTimeStamper

    roots = tuple(asn1_x509.Certificate.load(trusting.cert_der(c)) for c in ("root", "interm"))
    signed = _signed_with(trusting, "seal-good", revocation_in_file=False)

    def dss_certs(data: bytes) -> set[bytes]:
        dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(data), strict=False))
        return {cert.dump() for cert in dss.load_certs()}

    timestamper = AllowedTimeStamper(trusting.tsa_url(), timeout=10)
    with app.app_context():
        delivered = archive.make_lta(signed, roots, timestamper)
    revisions = PdfFileReader(io.BytesIO(delivered), strict=False).xrefs.total_revisions
    assert revisions == PdfFileReader(io.BytesIO(signed), strict=False).xrefs.total_revisions + 1
    assert {trusting.cert_der("tsa"), trusting.cert_der("seal-good")} <= dss_certs(delivered)
    timestamper.url = trusting.tsa_url("tsa2")  # same kept timestamper, new certificate
    with app.app_context():
        rolled = archive.make_lta(signed, roots, timestamper)
    assert trusting.cert_der("tsa2") in dss_certs(rolled)


def test_revocation_is_fetched_only_where_certificates_point_and_never_redirected():
    """SSRF-safe like the TSA list: http(s) only, hosts named by trusted or registered
    certificates (or configured), the rewrite map for VGCA's internal responder name, no
    redirects."""
    import http.server
    import threading

    import requests

    from modules.signing.revocation import FetchPolicy, _PolicyHttp

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    policy = FetchPolicy(frozenset({"ocsp.ca.gov.vn", f"127.0.0.1:{server.server_port}"}),
                         (("ocsp.ca.ptc", "ocsp.ca.gov.vn"),), seconds=2, cache_seconds=0)
    try:
        assert policy.address("http://ocsp.ca.ptc/ocsp") == "http://ocsp.ca.gov.vn/ocsp"
        for refused in ("http://10.0.0.1/crl", "file:///etc/passwd", "gopher://ocsp.ca.gov.vn/",
                        "http://user@evil.example/"):
            with pytest.raises(ValueError):
                policy.address(refused)
        fetcher = type("Fetcher", (_PolicyHttp,), {"policy": policy})()
        with pytest.raises(requests.RequestException):
            fetcher._call("GET", f"http://127.0.0.1:{server.server_port}/crl")
    finally:
        server.shutdown()


def test_outside_a_demo_a_copy_that_cannot_be_b_lta_is_not_delivered(
        app, api, client, db_session, trusting, monkeypatch):
    """Every delivered copy is B-LTA: with no timestamp service configured a real
    deployment refuses delivery (503, said in Vietnamese, the copy stays sealed and
    undelivered, its file unchanged) and /health/ reports the missing service."""
    from app.storage import file_store
    from modules.copies.models import CopyRequest

    pk, register_id = _forwarded_in(app, db_session, api, "A")
    with signing_with(db_session, _office(db_session, OFFICE_A), None,
                      _seal_key(app, db_session, trusting, "seal-good")):
        assert _seal(api, pk, register_id).status_code == 200
    monkeypatch.setitem(app.config, "TSA_URL", None)
    monkeypatch.setitem(app.config, "ARCHIVE_REQUIRED", True)
    db_session.expire_all()
    before = db_session.get(CopyRequest, pk).document.current_sha256
    clerk, headers = api("clerk.a")
    assert clerk.post(f"/api/v1/copy/{pk}/pay", headers=headers,
                      json={"receipt_number": "BL-9"}).status_code == 200
    refused = clerk.post(f"/api/v1/copy/{pk}/deliver",
                         headers={**headers, "Accept-Language": "vi"}, json={})
    assert refused.status_code == 503, refused.get_json()
    assert "dịch vụ cấp dấu thời gian" in refused.get_json()["message"]
    assert state_of(db_session, pk).state.value == "sealed"
    db_session.expire_all()
    assert db_session.get(CopyRequest, pk).document.current_sha256 == before
    with app.app_context():
        assert file_store().read_bytes(before)
    health = client.get("/health/").get_json()
    assert health["archive"]["timestamp_service"] == "missing"
    assert health["status"] != "ok"


def test_the_archive_command_reports_what_it_did(app, monkeypatch):
    """``saoy archive renew``: with no timestamp service configured nothing can be
    stamped, and it says so (copies are skipped, not failed)."""
    monkeypatch.setitem(app.config, "TSA_URL", None)
    result = app.test_cli_runner().invoke(args=["saoy", "archive", "renew", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("renewed 0, skipped") and "failed 0" in result.output


class _StampedAt:
    """The test TSA asked to stamp as of another time (certomancer's fake-time header):
    a signature proven to exist before its certificate was revoked."""

    def __new__(cls, url: str, when: str):
        from pyhanko.sign.timestamps import HTTPTimeStamper

        return HTTPTimeStamper(url, headers={"X-Certomancer-Fake-Time": when})


def _signed_with(pki, label: str, *, revocation_in_file: bool,
                 stamped_at: str | None = None, stamped_by=None) -> bytes:
    """A PDF signed (with a timestamp, by ``stamped_by``'s TSA, else the same PKI's) by the
    test PKI's ``label`` certificate, signed outside SaoY; its issuing CA's CRL (and the
    root's) added to the /DSS when asked."""
    import io

    import requests
    from asn1crypto import crl as asn1_crl
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    from modules.signing.signers import load_pkcs12
    from modules.signing.tsa import AllowedTimeStamper
    from tests.pdfs import scan_pdf

    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Sig1", md_algorithm="sha256"),
                      signer=load_pkcs12(pki.p12(label), b"test"),
                      timestamper=_StampedAt((stamped_by or pki).tsa_url(), stamped_at)
                      if stamped_at else AllowedTimeStamper((stamped_by or pki).tsa_url(),
                                                            timeout=10)).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(scan_pdf())), output=out)
    if not revocation_in_file:
        return out.getvalue()
    crls = [asn1_crl.CertificateList.load(requests.get(
        pki.crl_url(issuer), timeout=10).content)
        for issuer in ("interm", "root")]
    DocumentSecurityStore.add_dss(out, None, crls=crls, certs=[])
    return out.getvalue()


def test_the_verifier_reports_revocation_from_the_file(app, client, trusting):
    """Revoked before the signature's proven time: never valid; revoked after it (the
    older copy, timestamped before the revocation): still valid, and said; the revocation
    answers in the file: "good" and the copy stays valid offline; a certificate that names
    a responder and a file with no answer: said so ("revocation_unknown")."""
    import io

    def verify(data: bytes) -> dict:
        return client.post("/api/v1/verify", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), "x.pdf")}).get_json()

    revoked = _signed_with(trusting, "seal-revoked", revocation_in_file=True)
    # Signed and stamped in 2025, before the certificate was revoked (2 January 2026).
    older = _signed_with(trusting, "seal-revoked", revocation_in_file=True,
                         stamped_at="2025-06-02T08:00:00+0000")
    good = _signed_with(trusting, "seal-good", revocation_in_file=True)
    bare = _signed_with(trusting, "seal-good", revocation_in_file=False)
    trusting.stop()  # the responders are silent: the verifier has the file only
    forget_answers()
    try:
        answers = {name: verify(data) for name, data in
                   (("revoked", revoked), ("good", good), ("bare", bare), ("older", older))}
    finally:
        trusting.start()
    (signature,) = [s for s in answers["revoked"]["signatures"] if s["kind"] == "signature"]
    assert signature["revocation"] == "revoked" and not signature["trusted"]
    assert answers["revoked"]["verdict"] not in ("valid", "valid_with_later_changes")
    (signature,) = [s for s in answers["good"]["signatures"] if s["kind"] == "signature"]
    assert signature["revocation"] == "good" and answers["good"]["verdict"] == "valid"
    assert signature["proven_at"]
    (signature,) = [s for s in answers["bare"]["signatures"] if s["kind"] == "signature"]
    assert signature["revocation"] == "unknown"
    assert "revocation_unknown" in answers["bare"]["notes"]
    (signature,) = [s for s in answers["older"]["signatures"] if s["kind"] == "signature"]
    assert signature["revocation"] == "revoked_since" and signature["trusted"], signature
    assert answers["older"]["verdict"] == "valid"
    assert "revoked_since_signing" in answers["older"]["notes"]
    page = client.post("/verify/", content_type="multipart/form-data",
                       headers={"Accept-Language": "vi"},
                       data={"file": (io.BytesIO(revoked), "x.pdf")}).get_data(as_text=True)
    assert 'data-revocation="revoked"' in page and "THU HỒI" in page.upper()


def _verify(client, data: bytes, language: str = "en") -> dict:
    import io

    return client.post("/api/v1/verify", content_type="multipart/form-data",
                       headers={"Accept-Language": language},
                       data={"file": (io.BytesIO(data), "x.pdf")}).get_json()


def _signature(answer: dict) -> dict:
    (signature,) = [s for s in answer["signatures"] if s["kind"] == "signature"]
    return signature


def test_the_verifier_asks_the_responder_when_the_file_carries_no_answer(app, client,
                                                                        trusting):
    """Files that carry no revocation answer (most signed PDFs): the public verifier asks
    the certificate's responder now — good, revoked before the proven time (not valid),
    revoked since (valid) — and says the answer was fetched, not carried."""
    import io

    forget_answers()
    good = _signed_with(trusting, "seal-good", revocation_in_file=False)
    revoked = _signed_with(trusting, "seal-revoked", revocation_in_file=False)
    older = _signed_with(trusting, "seal-revoked", revocation_in_file=False,
                         stamped_at="2025-06-02T08:00:00+0000")
    answers = {name: _verify(client, data) for name, data in
               (("good", good), ("revoked", revoked), ("older", older))}
    signature = _signature(answers["good"])
    assert (signature["revocation"], signature["revocation_source"]) == ("good", "fetched")
    assert answers["good"]["verdict"] == "valid"
    assert "revocation_unknown" not in answers["good"]["notes"]
    assert "path" not in signature  # the certificates stay inside
    signature = _signature(answers["revoked"])
    assert (signature["revocation"], signature["revocation_source"]) == ("revoked", "fetched")
    assert not signature["trusted"] and answers["revoked"]["verdict"] == "untrusted"
    signature = _signature(answers["older"])
    assert (signature["revocation"], signature["revocation_source"]) == \
        ("revoked_since", "fetched")
    assert answers["older"]["verdict"] == "valid"
    assert "revoked_since_signing" in answers["older"]["notes"]
    page = client.post("/verify/", content_type="multipart/form-data",
                       headers={"Accept-Language": "vi"},
                       data={"file": (io.BytesIO(good), "x.pdf")}).get_data(as_text=True)
    assert 'data-source="fetched"' in page and "vừa hỏi" in page


def test_the_verifier_asks_no_address_an_uploader_wrote(app, client, trusting, tmp_path):
    """SSRF: a file signed by a certificate no trusted authority issued, whose OCSP and
    CRL addresses point at a server here — the verifier never knocks (the answer stays
    "unknown"); only the responders of a path validated to the anchors are asked."""
    import http.server
    import threading

    knocks: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            knocks.append(self.path)
            self.send_response(404)
            self.end_headers()

        def do_POST(self):
            self.do_GET()

        def log_message(self, *args):
            pass

    port = free_port()
    stranger = make_pki(tmp_path, port, "UBND Giả Mạo", "Kẻ Lạ", "UBND Giả Mạo")
    data = _signed_with(stranger, "seal-good", revocation_in_file=False, stamped_by=trusting)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = _verify(client, data)
    finally:
        server.shutdown()
        server.server_close()
    signature = _signature(answer)
    assert not signature["trusted"] and signature["revocation_source"] is None
    assert answer["verdict"] != "valid"
    assert knocks == []
