"""The validation report to take away — what a bank clerk or a court files beside the copy:
an XML report in the shape of ETSI TS 119 102-2 (the report EU DSS produces; schema
``validation-report.xsd`` beside this file) and a PDF in Vietnamese and English.  Both say
what was checked, when, against which trust anchors, and with what result — from the
public answer (``report_json``), so they show no more than the verification page."""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from lxml import etree

from app.i18n import format_instant
from app.timeutil import to_local

SCHEMA = Path(__file__).with_name("validation-report.xsd")
NAMESPACE = "urn:saoy:validation-report:1"
MAIN, SUB = "urn:etsi:019102:mainindication:", "urn:etsi:019102:subindication:"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
POLICY = ("SaoY: PAdES (ETSI EN 319 142-1) signatures and document timestamps, their "
          "certificate paths to the trust anchors, revocation, and every revision after the "
          "first signature (what changed, where, and which signature covers it)")
POLICY_WORDS = _l("PAdES signatures and document timestamps, their certificate paths to the "
                  "trust anchors, revocation, and every revision after the first signature "
                  "(what changed, where, and which signature covers it)")
#: The document's answer as an ETSI main indication.
DOCUMENT_INDICATION = {"valid": "total-passed", "valid_with_later_changes": "total-passed",
                       "untrusted": "indeterminate", "indeterminate": "indeterminate",
                       "tampered": "total-failed", "unreadable": "total-failed"}


def indication(  # noqa: PLR0911 - one answer per rule, in order, as the verdict
        signature: Mapping[str, Any]) -> tuple[str, str | None]:
    """ETSI's main indication and sub-indication for one signature of the answer."""
    warnings = signature.get("warnings") or []
    if not signature.get("error") and not signature.get("intact"):
        return "total-failed", "HASH_FAILURE"
    if "signature_value_invalid" in warnings:
        return "total-failed", "SIG_CRYPTO_FAILURE"
    if signature.get("revocation") == "revoked":
        return "total-failed", "REVOKED"
    if signature.get("error"):
        return "indeterminate", None
    if "signature_algorithm_unknown" in warnings:
        return "indeterminate", "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    if not signature.get("trusted"):
        return "indeterminate", "NO_CERTIFICATE_CHAIN_FOUND"
    if signature.get("revocation") == "unknown":
        return "indeterminate", "TRY_LATER"
    return "total-passed", None


def _iso(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0, tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def _when(value: str | None) -> str | None:
    """A time of the answer (ISO, maybe naive UTC) as xs:dateTime in UTC."""
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return _iso(moment)


def _el(parent, name: str, text: Any = None, **attributes: str):
    node = etree.SubElement(parent, f"{{{NAMESPACE}}}{name}", attributes)
    if text is not None:
        node.text = str(text)
    return node


def _digest(parent, name: str, value: str) -> None:
    node = _el(parent, name)
    _el(node, "DigestMethod", SHA256)
    _el(node, "DigestValue", value)


def xml_report(result: Mapping[str, Any], when: dt.datetime, anchors: Iterable[str]) -> bytes:
    """The answer as XML (``validation-report.xsd``); ``when`` naive UTC."""
    root = etree.Element(f"{{{NAMESPACE}}}ValidationReport", nsmap={None: NAMESPACE})
    context = _el(root, "ValidationContext")
    _el(context, "ValidationTime", _iso(when))
    _el(context, "Validator", "SaoY")
    _el(context, "Policy", POLICY)
    for anchor in anchors:
        _el(context, "TrustAnchor", anchor)
    document = _el(root, "SignersDocument")
    _digest(document, "DigestAlgAndValue", result["sha256"])
    if result.get("pages") is not None:
        _el(document, "Pages", result["pages"])
    _document_status(root, result)
    if result.get("copy"):
        copy = _el(root, "CertifiedCopy")
        _el(copy, "Office", result["copy"]["office"])
        for key, name in (("number", "Number"), ("book", "Book"), ("date", "Date"),
                          ("document_type", "DocumentType")):
            if result["copy"].get(key):
                _el(copy, name, result["copy"][key])
    ids = {}
    for n, signature in enumerate(result.get("signatures") or (), start=1):
        ids[signature["field"]] = f"S-{n}"
        _signature_report(root, f"S-{n}", signature, when)
    for revision in result.get("revisions") or ():
        node = _el(root, "Revision", index=str(revision["index"]))
        for key, name in (("signature", "SignedBy"), ("covered_by", "CoveredBy")):
            if revision.get(key) in ids:
                _el(node, name, ids[revision[key]])
        for change in revision.get("changes") or ():
            _el(node, "Change", page=str(change["page"]), kind=change["kind"],
                visible=str(bool(change.get("bbox"))).lower())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _document_status(root, result: Mapping[str, Any]) -> None:
    status = _el(root, "DocumentValidationStatus")
    _el(status, "Verdict", result["verdict"])
    _el(status, "MainIndication", MAIN + DOCUMENT_INDICATION[result["verdict"]])
    for lang in ("vi", "en"):
        _el(status, "Summary", result["summary"][lang], lang=lang)
    if result.get("long_term"):
        _el(status, "LongTermLevel", result["long_term"])
    for note in result.get("notes") or ():
        _el(status, "Note", note, code=note)


def _signature_report(root, ident: str, signature: Mapping[str, Any],
                      when: dt.datetime) -> None:
    report = _el(root, "SignatureValidationReport")
    identifier = _el(report, "SignatureIdentifier", id=ident)
    _el(identifier, "Kind", signature["kind"])
    _el(identifier, "Role", signature.get("role") or "other")
    _el(identifier, "Revision", signature["revision"])
    times = _el(report, "ValidationTimeInfo")
    _el(times, "ValidationTime", _iso(when))
    if proven := _when(signature.get("timestamp_time")):
        _el(times, "BestSignatureTime", proven)
    signer = _el(report, "SignerInformation")
    _el(signer, "Signer", signature.get("signer") or "?")
    if signature.get("organisation"):
        _el(signer, "Organisation", signature["organisation"])
    if signature.get("fingerprint"):
        _digest(signer, "CertificateDigest", signature["fingerprint"])
    for name in signature.get("chain") or ():
        _el(signer, "CertificateChain", name)
    attributes = _el(report, "SignatureAttributes")
    for key, name in (("signing_time", "SigningTime"), ("timestamp_time", "SignatureTimeStamp")):
        if moment := _when(signature.get(key)):
            _el(attributes, name, moment)
    if signature.get("certification_level"):
        _el(attributes, "CertificationLevel", signature["certification_level"])
    if signature.get("revocation"):
        source = signature.get("revocation_source")
        _el(report, "Revocation", signature["revocation"], **({"source": source} if source
                                                              else {}))
    main, sub = indication(signature)
    checked = _el(report, "SignatureValidationStatus")
    _el(checked, "MainIndication", MAIN + main)
    if sub:
        _el(checked, "SubIndication", SUB + sub)
    _el(checked, "Intact", str(bool(signature.get("intact"))).lower())
    _el(checked, "Trusted", str(bool(signature.get("trusted"))).lower())
    for warning in signature.get("warnings") or ():
        _el(checked, "Note", warning, code=warning)


def pdf_report(result: Mapping[str, Any], when: dt.datetime, anchors: Iterable[str],
               fonts: Any, labels: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The answer on A4, each statement in Vietnamese then in English; ``labels``:
    ``notes``, ``kinds`` and ``revocation`` (code → lazy text) as the page shows them."""
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    fonts.register_for_reportlab()
    body = ParagraphStyle("body", fontName="SaoY-Serif", fontSize=10, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8.5, leading=11)
    heading = ParagraphStyle("heading", parent=body, fontName="SaoY-Serif-Bold", fontSize=12,
                             leading=16, spaceBefore=8)
    story: list[Any] = []

    def both(render) -> None:
        """One statement in both languages: Vietnamese, then English (smaller)."""
        for locale, style in (("vi", body), ("en", small)):
            with force_locale(locale):
                text = render()
            if text:
                story.append(Paragraph(text, style))

    def head(render) -> None:
        for locale, size in (("vi", 12), ("en", 10)):
            with force_locale(locale):
                story.append(Paragraph(escape(render()), ParagraphStyle(
                    f"h-{locale}", parent=heading, fontSize=size,
                    spaceBefore=8 if locale == "vi" else 0)))

    local = to_local(when)
    head(lambda: _("Signature validation report"))
    both(lambda: escape(_("Validated at %(when)s (Vietnam time) by SaoY.",
                          when=local.strftime("%d/%m/%Y %H:%M:%S"))))
    both(lambda: escape(_("File (SHA-256): %(sha)s", sha=result["sha256"])))
    story.append(Spacer(1, 3 * mm))
    head(lambda: _("Result"))
    story.append(Paragraph(escape(result["summary"]["vi"]), body))
    story.append(Paragraph(escape(result["summary"]["en"]), small))
    for note in result.get("notes") or ():
        both(lambda note=note: escape(str(labels["notes"].get(note, note))))
    if result.get("copy"):
        copy = result["copy"]
        head(lambda: _("Certified copy"))
        day = copy.get("date")
        both(lambda: escape(_("Office: %(office)s — number %(number)s, book %(book)s, date "
                              "%(date)s", office=copy["office"], number=copy.get("number") or
                              "", book=copy.get("book") or "",
                              date=f"{day[8:10]}/{day[5:7]}/{day[0:4]}" if day else "")))
    for signature in result.get("signatures") or ():
        head(lambda s=signature: _("Signature: %(who)s", who=s.get("signer") or "?"))
        for line in _signature_lines(signature, labels):
            both(line)
    revisions = [r for r in result.get("revisions") or () if r.get("changes")]
    if revisions:
        head(lambda: _("Changes after the first signature"))
        for revision in revisions:
            both(lambda r=revision: escape(_(
                "Revision %(n)s: %(changes)s — %(covered)s", n=r["index"],
                changes="; ".join(_("page %(p)s, %(what)s", p=c["page"],
                                    what=str(labels["kinds"].get(c["kind"], c["kind"])))
                                  for c in r["changes"]),
                covered=_("signed afterwards") if r.get("covered_by")
                else _("covered by no signature"))))
    head(lambda: _("What was checked"))
    both(lambda: escape(_("Policy: %(policy)s", policy=str(POLICY_WORDS))))
    both(lambda: escape(_("Trust anchors: %(anchors)s", anchors="; ".join(anchors) or "—")))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                      topMargin=16 * mm, bottomMargin=16 * mm,
                      title="Báo cáo xác minh chữ ký số — Signature validation report",
                      author="SaoY", lang="vi").build(story)
    return out.getvalue()


def _signature_lines(signature: Mapping[str, Any], labels: Mapping[str, Mapping[str, Any]]):
    """What the report says of one signature, each a text made in the current language."""
    from xml.sax.saxutils import escape

    s = signature
    main, sub = indication(s)
    yield lambda: escape(_(
        "Intact: %(intact)s; trusted: %(trusted)s; ETSI indication: %(main)s%(sub)s",
        intact=_("yes") if s.get("intact") else _("no"),
        trusted=_("yes") if s.get("trusted") else _("no"), main=main,
        sub=f" / {sub}" if sub else ""))
    if s.get("organisation"):
        yield lambda: escape(_("Organisation: %(org)s", org=s["organisation"]))
    if s.get("signing_time") or s.get("timestamp_time"):
        yield lambda: escape(_("Signing time: %(signed)s; timestamp: %(stamped)s",
                               signed=format_instant(s.get("signing_time")) or "—",
                               stamped=format_instant(s.get("timestamp_time")) or "—"))
    if s.get("revocation"):
        yield lambda: escape(_("Revocation: %(status)s", status=str(
            labels["revocation"].get(s["revocation"], s["revocation"]))))
    if s.get("chain"):
        yield lambda: escape(_("Certificate chain: %(chain)s",
                               chain=" > ".join(reversed(s["chain"]))))
