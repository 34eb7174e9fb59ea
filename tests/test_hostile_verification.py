"""A verifier that cannot be fooled and cannot be knocked over: the hostile signed corpus
(tests/hostile_signed.py), budgets, privacy of the public page, active content."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.browser import click, requires_chromium
from tests.hostile_signed import (
    ACTIVE_CLASSES,
    CORPUS,
    Document,
    sign,
    unused_stream_rewritten,
)
from tests.keys import demo_token
from tests.pdfs import scan_pdf
from tests.test_copies import CITIZEN_IDENTITY, upload


@pytest.fixture(scope="module")
def attacker(app):
    """A signer the demo root vouches for: only the attack decides the verdict."""
    signer, _ = demo_token(app, "hostile-signer", "Người Ký Thử", "Công ty Thử")
    return signer


@pytest.fixture(scope="module")
def corpus(attacker):
    return {name: build(attacker) for name, (build, _verdicts) in CORPUS.items()}


def verify(client, data: bytes, **environ):
    return client.post("/api/v1/verify", data={"file": (io.BytesIO(data), "x.pdf")},
                       content_type="multipart/form-data", environ_base=environ or {})


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_file_gets_its_verdict_and_never_a_server_error(client, corpus, name):
    r = verify(client, corpus[name])
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    result = r.get_json()
    assert result["verdict"] in CORPUS[name][1], (result["verdict"], result.get("error"),
                                                  result.get("notes"))
    if CORPUS[name][1] == {"tampered"}:
        assert result["valid"] is False and result["modified_after_signing"]


def test_the_explanations_say_why(client, corpus):
    def result(name):
        return verify(client, corpus[name]).get_json()

    partial = result("coverage_partial")["signatures"][0]
    assert partial["coverage"] == "UNCLEAR" and not partial["intact"]
    rewritten = result("signature_dictionary_rewritten")["signatures"][0]
    assert "signature_dictionary_rewritten" in rewritten["warnings"]
    assert result("modified_and_unparseable")["notes"] == ["byte_range_digest_mismatch"]
    pages = result("shadow_hide_and_replace_pages")["revisions"][-1]["changes"]
    assert pages[0]["page"] == 1 and pages[0]["bbox"]  # the swapped page, boxed
    assert "docmdp_violated" in result("docmdp_p2_then_annotation")["notes"]
    assert "active_content" in result("active_javascript")["notes"]
    for name in ACTIVE_CLASSES:  # never plain valid, and the page says why
        found = result(f"signed_{name}")
        assert "active_content" in found["notes"] and found["content"], (name, found)
    assert result("many_empty_updates")["error"] == "too_complex:revisions"


def test_a_rewritten_stream_no_page_draws_renders_nothing(app, attacker, monkeypatch):
    """200 pages, three updates rewriting an old stream nothing draws: the old verifier
    rendered every page of every revision (54 s); nothing changed that anyone can see."""
    from modules.signing.verification import rendering

    renders = []
    real = rendering.render_page
    monkeypatch.setattr(rendering, "render_page", lambda *a, **k: renders.append(1) or real(
        *a, **k))
    data = unused_stream_rewritten(attacker, pages=200, updates=3)
    with app.app_context():
        from modules.signing.services import explain_bytes

        result = explain_bytes(data)
    assert result.verdict == "valid" and renders == []


def test_more_pages_to_compare_than_the_budget_is_indeterminate(app, attacker):
    from modules.signing.services import roots
    from modules.signing.verification import Limits, explain

    data = shadow_replace_many_pages(attacker, pages=50)
    with app.app_context():
        result = explain(data, roots(), limits=Limits(max_render_pages=20))
    assert result.verdict == "indeterminate" and result.error == "too_complex:pages"


def shadow_replace_many_pages(signer, pages: int) -> bytes:
    from tests.hostile_signed import _rewrite_xobject, update

    doc = Document(pages=pages)  # every page shares the resources the update rewrites
    return update(sign(doc.data, signer), _rewrite_xobject(doc, "/X1", doc.fake))


def test_an_analysis_failure_is_indeterminate_not_a_500(app, client, corpus, monkeypatch):
    """A bug inside the analysis (it runs in the sandbox's child: called here in-process)
    and a child that dies: each an answer, never a 500."""
    from app import sandbox
    from modules.signing import verification
    from modules.signing.services import roots

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    with app.app_context():
        anchors = roots()
    monkeypatch.setattr(verification, "structural_changes", broken)
    result = verification.explain(corpus["isa_page_content"], anchors)
    assert result.verdict in ("indeterminate", "tampered")
    monkeypatch.setattr(verification, "check_signature", broken)
    assert verification.explain(corpus["untouched"], anchors).verdict == "indeterminate"

    def crashed(*args, **kwargs):
        raise sandbox.SandboxError("crashed")

    monkeypatch.setattr(sandbox, "run", crashed)
    r = verify(client, corpus["untouched"])
    assert r.status_code == 200 and r.get_json()["verdict"] == "indeterminate"
    assert r.get_json()["summary"]["vi"]


def test_a_body_over_the_limit_is_refused_while_streaming(client, app):
    big = b"%PDF-1.7\n" + b"0" * ((app.config["VERIFY_MAX_MB"] + 2) * 2**20)
    r = verify(client, big)
    assert r.status_code == 413 and "MB" in r.get_json()["message"]


def test_uploads_and_access_codes_are_limited_per_address(app, client, corpus, monkeypatch,
                                                         sealed_code):
    monkeypatch.setitem(app.config, "VERIFY_RATE_LIMIT", "3 per minute")
    codes = [verify(client, corpus["untouched"], REMOTE_ADDR="10.7.7.7").status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    guesses = [client.post(f"/verify/{sealed_code}", data={"access_code": f"GUESS{n}"},
                           environ_base={"REMOTE_ADDR": "10.7.7.8"}).status_code
               for n in range(4)]
    assert guesses[-1] == 429 and 429 not in guesses[:3]
    assert verify(client, corpus["untouched"], REMOTE_ADDR="10.7.7.9").status_code == 200


def test_the_page_and_the_api_share_one_bucket_per_address(app, client, corpus, monkeypatch):
    """The issue measured 30 API + 30 web uploads per address: one budget now."""
    monkeypatch.setitem(app.config, "VERIFY_RATE_LIMIT", "3 per minute")
    where = {"REMOTE_ADDR": "10.7.8.1"}
    codes = [verify(client, corpus["untouched"], **where).status_code,
             client.post("/verify/", data={"file": (io.BytesIO(corpus["untouched"]), "x.pdf")},
                         content_type="multipart/form-data", environ_base=where).status_code,
             verify(client, corpus["untouched"], **where).status_code]
    page = client.post("/verify/", data={"file": (io.BytesIO(corpus["untouched"]), "x.pdf")},
                       content_type="multipart/form-data", environ_base=where)
    assert codes == [200, 200, 200] and page.status_code == 429


@pytest.fixture(scope="module")
def sealed_code(app):
    """A delivered certified copy of office A (its public code and its access code)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.offices.services import offered_document_types
    from app.transactions import atomic
    from modules.copies import workflow
    from modules.registers.models import Register, RegisterStatus
    from modules.signing.models import SignedDocument
    from tests.conftest import user_named
    from tests.test_copies import _submitted

    with app.app_context():
        session = db.session
        officer = user_named(session, "officer.a")
        pk = _submitted(app, session, offered_document_types(session, officer.office_id)[0])
        register = session.scalars(select(Register).where(
            Register.office_id == officer.office_id,
            Register.status == RegisterStatus.open)).first()
        with app.test_request_context():
            for user, event, params in (("leader.a", "sign", {}), ("leader.a", "forward", {}),
                                        ("clerk.a", "seal", {"register_id": register.id})):
                with atomic(session):
                    workflow.apply(session, user_named(session, user), pk, event,
                                   workflow.Params(**params))
        doc = session.scalars(select(SignedDocument).join(
            workflow.CopyRequest, workflow.CopyRequest.document_id == SignedDocument.id)
            .where(workflow.CopyRequest.id == pk)).one()
        code, access = doc.verify_code, doc.access_code
        session.remove()
    return code, access


def test_the_public_page_shows_no_page_image_without_the_access_code(client, sealed_code):
    code, access = sealed_code
    public = client.get(f"/verify/{code}").get_data(as_text=True)
    assert "data:image/png" not in public and 'id="access-form"' in public
    wrong = client.post(f"/verify/{code}", data={"access_code": "WRONG123"}).get_data(
        as_text=True)
    assert "data:image/png" not in wrong and "alert-danger" in wrong
    opened = client.post(f"/verify/{code}", data={"access_code": access}).get_data(
        as_text=True)
    assert "data:image/png" in opened and 'id="download-pdf"' in opened
    pdf = client.post(f"/verify/{code}/file", data={"access_code": access})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_a_scan_with_active_content_is_refused_at_intake(api, db_session, office, app,
                                                        attacker):
    from app.offices.services import offered_document_types
    from tests.hostile_signed import update

    def add_js(writer):
        from pyhanko.pdf_utils import generic
        from pyhanko.pdf_utils.generic import pdf_name

        writer.root[pdf_name("/OpenAction")] = writer.add_object(generic.DictionaryObject({
            pdf_name("/S"): pdf_name("/JavaScript"),
            pdf_name("/JS"): generic.pdf_string("app.launchURL('http://evil.example')")}))
        writer.update_root()

    client, headers = api("officer.a")
    doc_type = offered_document_types(db_session, office("A").id)[0]
    r = client.post("/api/v1/copy/", headers={**headers, "Accept-Language": "en"},
                    content_type="multipart/form-data", data={
                        "scan": upload(update(scan_pdf(), add_js), "js.pdf"),
                        "document_type_id": doc_type.id, "identity_number": CITIZEN_IDENTITY})
    assert r.status_code == 422 and "active content" in r.get_json()["message"]


def _visible(page: str) -> str:
    """The page as a visitor reads it before opening any "technical details"."""
    import re

    return re.sub(r"<details.*?</details>", "", page, flags=re.S)


def test_the_public_page_speaks_plainly_and_shows_no_personal_number(client, sealed_code,
                                                                     corpus):
    """A bank clerk reads people and plain words: no identity number of the leader (the
    certificate carries it), no field names, no coordinates, no raw codes — the details
    folded away for whoever wants them."""
    import re

    code, _access = sealed_code
    page = client.get(f"/verify/{code}").get_data(as_text=True)
    answer = client.get(f"/api/v1/verify/{code}").get_json()
    for seen in (page, str(answer)):
        assert "079190000011" not in seen and "CCCD" not in seen
    shown = _visible(page)
    assert "ChuKyLanhDao" not in shown and "DauCoQuan" not in shown
    assert "Chi tiết kỹ thuật" in page
    assert not re.search(r"\[\d+(\.\d+)?, \d+(\.\d+)?, \d+", shown)  # no coordinates
    tampered = _visible(client.post("/verify/", data={"file": (
        io.BytesIO(corpus["docmdp_p2_then_annotation"]), "x.pdf")},
        content_type="multipart/form-data").get_data(as_text=True))
    assert "docmdp_violated" not in tampered and "first signer allowed" not in tampered
    assert "vượt quá những gì người ký đầu tiên cho phép" in tampered
    hidden = _visible(client.post("/verify/", data={"file": (
        io.BytesIO(corpus["replace_via_overlay"]), "x.pdf")},
        content_type="multipart/form-data").get_data(as_text=True))
    assert "hidden_content" not in hidden and "bị một ô biểu mẫu che hoặc thay thế" in hidden


def _printout(app, code: str) -> dict:
    """What the paper printout of the copy ``code`` says: number, day (dd/mm/yyyy) and
    access code under its attestation."""
    from app.extensions import db
    from app.timeutil import to_local
    from modules.signing.services import document_by_code

    with app.app_context():
        doc = document_by_code(db.session, code)
        printed = {"number": doc.number, "date": to_local(doc.sealed_at).strftime("%d/%m/%Y"),
                   "access_code": doc.access_code, "sha256": doc.current_sha256,
                   "office": doc.office.name}
        db.session.remove()
    return printed


def test_a_printout_is_verified_by_number_date_and_access_code(app, client, sealed_code):
    """Austria's model: no upload, no QR scanner — the three things printed on the paper
    show the register entry, the signers and the document's hash; anything else, a clear
    refusal that does not say which of the three was wrong."""
    code, _access = sealed_code
    printed = _printout(app, code)
    form = {k: printed[k] for k in ("number", "date", "access_code")}
    page = client.post("/verify/printout", data=form).get_data(as_text=True)
    assert printed["sha256"] in page and printed["office"] in page
    assert f"<td>{printed['number']}</td>" in page and printed["date"] in page
    assert "Trần Thị Bình" in page  # office A's leader signed
    answer = client.post("/api/v1/verify/printout", json=form).get_json()
    assert answer["sha256"] == printed["sha256"] and answer["copy"]["number"] == form["number"]
    for wrong in ({**form, "access_code": "WRONG123"}, {**form, "number": "999999"},
                  {**form, "date": "01/01/2020"}):
        r = client.post("/verify/printout", data=wrong)
        assert r.status_code == 404 and "kiểm tra lại với bản in" in r.get_data(as_text=True)
        assert printed["sha256"] not in r.get_data(as_text=True)
        assert client.post("/api/v1/verify/printout", json=wrong).status_code == 404
    r = client.post("/verify/printout", data={**form, "date": "32/13/2026"})
    assert r.status_code == 422 and "dd/mm/yyyy" in r.get_data(as_text=True)
    assert client.post("/api/v1/verify/printout", json=["x"]).status_code == 422


@requires_chromium
def test_a_citizen_verifies_a_printout_in_the_browser(app, live, browser, sealed_code):
    from selenium.webdriver.common.by import By

    code, _access = sealed_code
    printed = _printout(app, code)
    browser.get(f"{live}/verify/")
    browser.find_element(By.ID, "printout-number").send_keys(printed["number"])
    browser.find_element(By.ID, "printout-date").send_keys(printed["date"])
    browser.find_element(By.ID, "printout-code").send_keys(printed["access_code"])
    click(browser, "#printout-submit")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert printed["office"] in text and printed["sha256"] in text
    assert browser.find_element(By.ID, "verdict").get_attribute("data-verdict") in (
        "valid", "valid_with_later_changes", "untrusted")


def test_the_validation_report_downloads_and_validates_against_its_schema(
        app, client, sealed_code, corpus, tmp_path):
    """What was checked, when, against which roots — to take away: XML in the shape of ETSI
    TS 119 102-2 (validated against the XSD shipped beside it) and a PDF in Vietnamese and
    English, from the page and the API; an uploaded file's reports travel in the page."""
    import base64
    import re
    import subprocess

    from lxml import etree

    from modules.signing.verification.takeaway import NAMESPACE, SCHEMA

    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    ns = {"r": NAMESPACE}
    code, _access = sealed_code
    answer = client.get(f"/api/v1/verify/{code}").get_json()
    assert 'id="report-xml"' in client.get(f"/verify/{code}").get_data(as_text=True)
    for r in (client.get(f"/verify/{code}/report.xml"),
              client.get(f"/api/v1/verify/{code}/report?format=xml")):
        assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
        report = etree.fromstring(r.data)
        schema.assertValid(report)
        assert report.findtext("r:DocumentValidationStatus/r:Verdict", namespaces=ns) == \
            answer["verdict"]
        assert report.findtext("r:SignersDocument/r:DigestAlgAndValue/r:DigestValue",
                               namespaces=ns) == answer["sha256"]
        assert report.findtext("r:ValidationContext/r:ValidationTime", namespaces=ns)
        assert "SaoY Demo Root CA" in [a.text for a in report.findall(
            "r:ValidationContext/r:TrustAnchor", namespaces=ns)]
        signed = report.findall("r:SignatureValidationReport", namespaces=ns)
        assert len(signed) == len(answer["signatures"])
        leader = [s for s in signed if s.findtext("r:SignatureIdentifier/r:Role",
                                                  namespaces=ns) == "leader"][0]
        assert leader.findtext("r:SignatureValidationStatus/r:MainIndication", namespaces=ns) \
            == "urn:etsi:019102:mainindication:total-passed"
        assert b"079190000011" not in r.data  # no personal number in a report either
    pdf = client.get(f"/verify/{code}/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "report.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(tmp_path / "report.pdf"), "-"],
                          capture_output=True, text=True).stdout
    assert "Báo cáo xác minh chữ ký số" in text and "Signature validation report" in text
    assert answer["sha256"] in text.replace("\n", "") and "Trần Thị Bình" in text
    assert "SaoY Demo Root CA" in text
    assert client.get(f"/api/v1/verify/{code}/report?format=doc").status_code == 422
    page = client.post("/verify/", data={"file": (io.BytesIO(corpus["hide_via_form"]),
                                                  "x.pdf")},
                       content_type="multipart/form-data").get_data(as_text=True)
    inline = re.search(r'data:application/xml;base64,([A-Za-z0-9+/=]+)', page).group(1)
    report = etree.fromstring(base64.b64decode(inline))
    schema.assertValid(report)
    assert report.findtext("r:DocumentValidationStatus/r:MainIndication", namespaces=ns) == \
        "urn:etsi:019102:mainindication:total-failed"
    assert 'data:application/pdf;base64,JVBER' in page


@pytest.mark.parametrize("fails", ["both", "after"])
def test_a_page_that_cannot_be_drawn_is_never_a_pass(app, attacker, corpus, monkeypatch, fails):
    """A change after signing on a page poppler cannot draw (an attacker's page that
    times out or crashes the renderer, before or after the change) was judged "valid":
    what changed there is unknown, so the answer is indeterminate."""
    from modules.signing import verification
    from modules.signing.services import roots
    from modules.signing.verification import rendering

    data = corpus["isa_page_content"]
    real = rendering.render_page

    def failing(source, *args, **kwargs):
        later = len(source) == len(data)  # the file as it stands after the change
        return None if fails == "both" or later else real(source, *args, **kwargs)

    with app.app_context():
        anchors = roots()
    monkeypatch.setattr(rendering, "render_page", failing)
    result = verification.explain(data, anchors)
    assert result.verdict == "indeterminate", result
    assert any(c.kind == "unrendered" for r in result.revisions for c in r.changes)


@pytest.fixture(scope="module")
def tsa(app):
    """The demo PKI's time-stamping authority (its certificate carries timeStamping)."""
    from modules.signing.pki import DemoPki
    from modules.signing.signers import load_pkcs12

    pki = DemoPki(Path(app.config["DATA_DIR"]) / "pki")
    return load_pkcs12(pki.issue_tsa("hostile-tsa").p12_path.read_bytes(), pki.passphrase)


def test_a_timestamp_labelled_as_plain_data_is_checked_by_its_content(client, attacker, tsa):
    """Some authorities label the token's TSTInfo as id-data: pyHanko refuses it and the
    verifier answered 'indeterminate' for an honest signature and an honest document
    timestamp.  Checked by its content, the answer is known — and a forged one is not
    believed."""
    from tests.hostile_signed import mislabelled_tsa, stamped

    doc = Document().data
    signature = verify(client, stamped(doc, attacker, mislabelled_tsa(tsa))).get_json()
    assert signature["verdict"] == "valid", (signature["verdict"], signature["signatures"])
    assert signature["signatures"][0]["timestamp_time"]  # the time it proves is shown
    document = verify(client, stamped(doc, attacker, mislabelled_tsa(tsa), document=True)
                      ).get_json()
    assert document["verdict"] == "valid", (document["verdict"], document["signatures"])
    assert [s["kind"] for s in document["signatures"]] == ["signature", "timestamp"]

    # Forged: the token stamps another document.
    forged_document = verify(client, stamped(doc, attacker, mislabelled_tsa(tsa, forged=True),
                                             document=True)).get_json()
    assert forged_document["verdict"] == "tampered"
    forged_stamp = verify(client, stamped(doc, attacker, mislabelled_tsa(tsa, forged=True))
                          ).get_json()
    proven = forged_stamp["signatures"][0]
    assert proven["timestamp_time"] is None  # the signature stands, no time is proven
    assert "timestamp_unusable" in proven["warnings"]


def test_a_revision_the_structure_cannot_read_is_judged_by_its_pages(app, attacker, corpus,
                                                                      monkeypatch):
    """When a revision's structure cannot be walked, the answer was 'indeterminate' even
    where it is knowable: every page is drawn before and after instead — an honest later
    revision shows nothing new, a shadow attack shows its swap."""
    from modules.signing import verification
    from modules.signing.services import roots

    def unreadable(*args, **kwargs):
        raise RuntimeError("a structure pyHanko cannot walk")

    with app.app_context():
        anchors = roots()
    monkeypatch.setattr(verification, "structural_changes", unreadable)
    countersigned = verification.explain(sign(sign(Document(with_field=True).data, attacker),
                                              attacker, field="Sig2"), anchors)
    assert countersigned.verdict in ("valid", "valid_with_later_changes"), countersigned
    assert "revision_analysis_failed" not in countersigned.notes
    # Certified P=2 and a later change: a fill is allowed, page content is not — which one
    # it was is unknown without the structure, never tampered for an honest fill.
    certified = verification.explain(corpus["docmdp_p2_then_fill_and_sign"], anchors)
    assert certified.verdict == "indeterminate", certified
    shadow = verification.explain(corpus["shadow_replace"], anchors)
    assert shadow.verdict in ("tampered", "indeterminate")
    assert [c.bbox for r in shadow.revisions for c in r.changes if c.page == 1]  # boxed
    assert verification.explain(corpus["docmdp_p1_then_fill"], anchors).verdict == "tampered"


def test_content_the_policy_could_not_walk_is_never_nothing_found(app, corpus, monkeypatch):
    """When the walk for active content stopped (an object that cannot be read, over its
    budget), the verifier took that as "nothing found" and answered 'valid': an attacker
    who breaks one object hides a script behind it.  Now it says it could not look."""
    from modules.signing import policy, verification
    from modules.signing.services import roots

    def stopped(*args, **kwargs):
        raise policy.PolicyBudgetError("too many objects to check")

    with app.app_context():
        anchors = roots()
    assert verification.explain(corpus["untouched"], anchors).verdict == "valid"
    monkeypatch.setattr(policy, "findings", stopped)
    result = verification.explain(corpus["untouched"], anchors)
    assert result.verdict == "indeterminate" and "content_unchecked" in result.notes
