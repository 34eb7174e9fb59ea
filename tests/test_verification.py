"""Verification that explains, on real documents signed by others (tests/samples,
described in tests/samples/README.md): Vietnamese decrees and the EU reference
validator's hard cases, each through the public API and page."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"
ROOT_TRUST = Path(__file__).parent.parent / "trust"


def verify(client, name: str) -> dict:
    data = (SAMPLES / name).read_bytes()
    r = client.post("/api/v1/verify", data={"file": (io.BytesIO(data), name)},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.get_json()


def government_root(signature: dict) -> bool:
    return bool(signature["chain"]) and "Chính phủ G2" in signature["chain"][0]


@pytest.mark.parametrize("name", ["vn-decree-49-2026-org-signature.pdf",
                                  "vn-decree-199-2026-portal-signature.pdf"])
def test_decrees_signed_once_are_valid_through_the_government_root(client, name):
    result = verify(client, name)
    assert result["verdict"] == "valid" and result["valid"]
    (signature,) = result["signatures"]
    assert signature["intact"] and signature["trusted"] and government_root(signature)
    assert signature["certification_level"] == 2
    assert "CHÍNH PHỦ" in signature["signer"]
    assert result["summary"]["vi"].startswith("Hợp lệ") and result["summary"]["en"]


def test_decree_49_notes_local_time_written_as_utc(client):
    (signature,) = verify(client, "vn-decree-49-2026-org-signature.pdf")["signatures"]
    assert signature["local_time_as_utc"] is True
    assert signature["timestamp_time"].startswith("2026-01-31T15:32")


def test_decree_199_shows_the_tax_code_and_the_sha1_timestamp(client):
    (signature,) = verify(client, "vn-decree-199-2026-portal-signature.pdf")["signatures"]
    assert "MST:0102357802" in signature["identity"]
    assert "sha1_timestamp" in signature["warnings"]


def test_decree_50_leader_then_seal_is_valid_with_later_changes_on_pages_1_and_30(client):
    result = verify(client, "vn-decree-50-2026-leader-then-seal.pdf")
    assert result["verdict"] == "valid_with_later_changes"
    signatures = result["signatures"]
    assert len(signatures) == 6
    assert all(s["intact"] and s["trusted"] and government_root(s) for s in signatures)
    assert signatures[0]["signer"] == "Trần Hồng Hà" and signatures[0]["certification_level"] == 2
    changed_pages = {c["page"] for r in result["revisions"] for c in r["changes"]}
    assert changed_pages == {1, 30}
    assert all(r["covered_by"] for r in result["revisions"] if r["changes"])
    page_1 = [c for r in result["revisions"] for c in r["changes"] if c["page"] == 1]
    assert all(c["bbox"] and c["bbox"][1] > 650 for c in page_1)  # the number/date line
    assert "timestamps_out_of_order" in result["notes"]


def test_decree_50_page_shows_cards_revisions_and_renders(client):
    data = (SAMPLES / "vn-decree-50-2026-leader-then-seal.pdf").read_bytes()
    page = client.post("/verify/", data={"file": (io.BytesIO(data), "d.pdf")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert 'data-verdict="valid_with_later_changes"' in page
    assert page.count("signature-card") == 6 and page.count('class="panel panel-default '
                                                             'revision"') == 5
    assert page.count("data:image/png;base64,") >= 10  # before/after of each changed page
    assert "Trần Hồng Hà" in page and "RootCA chuyên dùng Chính phủ G2" in page
    assert "31/01/2026 20:54:28" in page  # signing time, Vietnam time, dd/mm/yyyy
    assert "31/01/2026 20:54:33" in page  # its timestamp (13:54:33 UTC)


def test_page_added_after_signing_is_tampered(client):
    result = verify(client, "eu-dss-pdf-signed-added-page.pdf")
    assert result["verdict"] == "tampered" and not result["valid"]
    last = result["revisions"][-1]
    assert last["covered_by"] is None
    assert {"page": 2, "kind": "page_added"}.items() <= last["changes"][0].items()


@pytest.mark.parametrize("name", ["eu-dss-pdf-spoofing-attack.pdf", "eu-dss-dss-2236_hide.pdf",
                                  "eu-dss-pades-5-signatures-and-1-document-timestamp.pdf"])
def test_attack_and_broken_files_are_never_valid_and_never_a_server_error(client, name):
    result = verify(client, name)
    assert result["verdict"] not in ("valid", "valid_with_later_changes")
    assert result["valid"] is False and result["summary"]["vi"]


def test_hidden_content_after_signing_is_tampered_with_its_region(client):
    result = verify(client, "eu-dss-dss-2236_hide.pdf")
    assert result["verdict"] == "tampered"
    (change,) = result["revisions"][-1]["changes"]
    assert change["page"] == 1 and change["bbox"]


@pytest.mark.parametrize("name", [
    "eu-dss-dss-2554_certified-changes-permitted.pdf",
    "eu-dss-dss-2554_certified-no-change-permitted.pdf",
    "eu-dss-dss-2058_dss-2058-LTA-test.pdf",
    # a combo box moved from its prompt to a choice after signing: a fill, not an overwrite
    "eu-dss-pades-signed-filled-form.pdf",
])
def test_foreign_test_roots_are_untrusted_but_intact(client, name):
    result = verify(client, name)
    assert result["verdict"] == "untrusted"
    assert all(s["intact"] and not s["trusted"] for s in result["signatures"])


def test_every_sample_gets_an_answer_in_both_languages(client):
    for path in sorted(SAMPLES.glob("*.pdf")):
        result = verify(client, path.name)
        assert result["verdict"] in {"valid", "valid_with_later_changes", "tampered",
                                     "untrusted", "indeterminate", "unreadable"}
        assert result["summary"]["vi"] and result["summary"]["en"]
        assert result["summary"]["vi"] != result["summary"]["en"]


@pytest.mark.parametrize(("name", "level"), [
    ("eu-dss-dss-2058_dss-2058-LTA-test.pdf", "B-LTA"),
    ("vn-decree-199-2026-portal-signature.pdf", "B-T"),
    ("eu-dss-pdf-signed-added-page.pdf", "B-B")])
def test_the_long_term_level_is_reported(client, name, level):
    """How long a file stays verifiable: PAdES B-B, B-T, B-LT, B-LTA (said on the page)."""
    assert verify(client, name)["long_term"] == level


@pytest.mark.parametrize("name", ["vn-decree-50-2026-leader-then-seal.pdf",
                                  "eu-dss-pades-signed-filled-form.pdf"])
def test_the_indexed_reader_reads_every_object_as_pyhanko_does(name):
    """Object streams indexed once (the policy's walk over a 30-page decree went from 13 s
    to under 3 s) must not change a single object read."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    from app.pdf_reader import read_pdf

    data = (SAMPLES / name).read_bytes()
    ours, theirs = read_pdf(data), PdfFileReader(io.BytesIO(data), strict=False)
    refs = {ref for revision in range(theirs.xrefs.total_revisions)
            for ref in theirs.xrefs.explicit_refs_in_revision(revision)}
    for ref in sorted(refs, key=lambda r: (r.idnum, r.generation)):
        mine, pyhanko = ours.get_object(ref), theirs.get_object(ref)
        assert type(mine) is type(pyhanko) and _written(mine) == _written(pyhanko), ref
    assert len(refs) > 100 and any(ours._object_streams.values())  # the index was used


def _written(obj) -> bytes:
    """An object as PDF syntax (references as "n g R"): comparable across readers."""
    import io

    out = io.BytesIO()
    obj.write_to_stream(out)
    return out.getvalue()


def _with_compressed(entries: list[bytes], compressed: bool = True) -> bytes:
    """A one-page PDF whose catalog leads, through structure elements, to one dictionary
    per entry — all of them in an object stream (or, not ``compressed``, each written
    out on its own), each entry's text exactly as given (escaped names stay escaped;
    NEXT refers to the next entry)."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import PdfFileWriter

    from tests.hostile_signed import hybrid_update

    writer = PdfFileWriter()
    writer.insert_page(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"), pdf_name("/MediaBox"): generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 595, 842)])}))
    out = io.BytesIO()
    writer.write(out)
    base = out.getvalue()
    trailer = PdfFileReader(io.BytesIO(base)).trailer
    root, pages = trailer.raw_get("/Root").idnum, trailer["/Root"].raw_get("/Pages").idnum
    first = int(trailer["/Size"]) + 10
    tree, elements = first, list(range(first + 1, first + 1 + 2 * len(entries), 2))
    bodies = {root: b"<< /Type /Catalog /Pages %d 0 R /StructTreeRoot %d 0 R >>" % (
        pages, tree), tree: b"<< /Type /StructTreeRoot /K [%s] >>" % b" ".join(
            b"%d 0 R" % e for e in elements)}
    for element, text in zip(elements, entries, strict=True):
        bodies[element] = b"<< /Type /StructElem /S /P /K %d 0 R >>" % (element + 1)
        bodies[element + 1] = text.replace(b"NEXT", b"%d 0 R" % (element + 3))
    if compressed:
        return hybrid_update(base, bodies)
    out = bytearray(base)
    offsets = {}
    for number, body in sorted(bodies.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = len(out)
    out += b"xref\n" + b"".join(b"%d 1\n%010d 00000 n \n" % (n, offsets[n]) for n in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        max(offsets) + 1, root, int(re.findall(rb"startxref\s+(\d+)", base)[-1]), table)
    return bytes(out)


#: What could hide in a tagged document's structure tree, as an object stream holds it.
HIDDEN_IN_STRUCTURE = [
    b"<< /S /JavaScript /JS (app.alert(1)) >>",
    b"<< /Type /Action /S /Launch /F (calc.exe) >>",
    b"<< /S /J#61vaScript /J#53 (app.alert(1)) >>",  # escaped names
    b"<< /AF [ << /Type /Filespec /F (x.exe) >> ] /ActualText (Dieu 1) >>",
    b"<< /Subtype /RichMedia >>",
    b"<< /A << /S /URI /URI (http://example.com) >> >>",
    b"<< /Alt (/JS in a string is only text) >>",
    # a string that holds the words an object's text is cut at, nested strings, a comment
    b"<< /Alt (see endobj) /S /JavaScript /JS (x) >>",
    b"<< /Alt (a (b stream\n) c) /S /Launch /F (calc.exe) >>",
    b"<< /Alt (100%) % a comment\n /S /URI /URI (http://example.com) >>",
]


def test_the_policy_reads_the_structure_tree_fast_and_misses_nothing(monkeypatch):
    """A tagged 30-page decree has 9,500 structure elements; the policy reads the text of
    those an object stream holds instead of parsing them — and finds exactly what the
    full parse finds, in the samples and in content hidden in such elements."""
    from app.pdf_reader import read_pdf
    from modules.signing import policy

    def outcome(data: bytes):  # the findings, or the failure (a damaged sample's)
        try:
            return policy.findings(read_pdf(data).trailer)
        except Exception as exc:  # noqa: BLE001
            return type(exc).__name__

    def both(data: bytes):
        fast = outcome(data)
        with monkeypatch.context() as patched:
            patched.setattr(policy, "_plain_refs", lambda reader, key: None)
            full = outcome(data)
        return fast, full

    for path in sorted(SAMPLES.glob("*.pdf")):
        fast, full = both(path.read_bytes())
        assert fast == full, path.name
    for text in HIDDEN_IN_STRUCTURE:
        for compressed in (True, False):
            fast, full = both(_with_compressed([text], compressed))
            assert fast == full, (text, compressed)
            assert policy.active(fast) or b"only text" in text, text
    # An action's type held by reference (its name in an object of its own): decided by
    # parsing, not by the names the action's own text shows.
    fast, full = both(_with_compressed([b"<< /S NEXT /F (calc.exe) >>", b"/Launch"]))
    assert fast == full and [f.code for f in policy.active(fast)] == ["action:Launch"]


def test_an_explanation_reads_back_as_it_was_kept():
    """Kept as JSON in the data folder for every server process: read back whole."""
    from modules.signing.validation import trust_roots
    from modules.signing.verification import Explanation, explain

    anchors = trust_roots(str(ROOT_TRUST))
    for name in ("vn-decree-50-2026-leader-then-seal.pdf", "eu-dss-pdf-signed-added-page.pdf"):
        explanation = explain((SAMPLES / name).read_bytes(), anchors, previews=True)
        assert Explanation.from_json(explanation.to_json()) == explanation, name


def test_a_delivered_copy_is_explained_before_its_first_scan_and_once_for_every_process(
        app, client, api, db_session, monkeypatch):
    """The first QR scan of a copy cost 0.5–0.7 s in each server process (its own
    verification child, its own memory).  The jobs worker now explains a delivered copy
    once and keeps it in the data folder: a process that never saw it answers from there."""
    import hashlib

    from sqlalchemy import select

    from app.offices.services import offered_document_types
    from modules.signing import services
    from modules.signing.models import SignedDocument
    from tests.conftest import user_named
    from tests.test_copies import _submitted
    from tests.test_trust import _to_delivery

    doc_type = offered_document_types(db_session, user_named(db_session, "officer.a")
                                      .office_id)[0]
    pk = _submitted(app, db_session, doc_type)
    assert _to_delivery(api, db_session, pk)["state"] == "delivered"
    clerk, headers = api("clerk.a")
    code = clerk.get(f"/api/v1/copy/{pk}", headers=headers).get_json()["verify_code"]

    explained = []  # (sha256 of the file, CPU priority) of every explanation made
    real = services.explain_bounded
    monkeypatch.setattr(services, "explain_bounded", lambda data, *a, **k: explained.append(
        (hashlib.sha256(data).hexdigest(), k.get("nice"))) or real(data, *a, **k))
    services._explained.cache_clear()
    with app.app_context():
        assert services.warm_explanations(db_session, limit=1) == 1  # the newest: this one
    sha = db_session.scalars(select(SignedDocument.current_sha256).where(
        SignedDocument.verify_code == code)).one()
    assert (sha, services.BACKGROUND_NICE) in explained  # in the background, making way
    services._explained.cache_clear()  # another process: nothing in its memory
    answer = client.get(f"/api/v1/verify/{code}")
    assert answer.status_code == 200 and answer.get_json()["verdict"] == "valid"
    assert [s for s, _nice in explained].count(sha) == 1  # read from the data folder
