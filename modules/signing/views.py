"""Public verification (page, upload, JSON API) and the staff's signer profiles."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import asdict
from pathlib import Path

import qrcode
import qrcode.image.svg
from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    send_file,
    session,
    url_for,
)
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectField

from app import params
from app.crud import Datamodel, DatedRuleView, ServiceFormViewMixin
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.params import large_body
from app.records import DatedRuleService
from app.scope import scoped
from app.scoping import OFFICE_SCOPE, ScopedModelView
from app.timeutil import to_local, utcnow
from app.transactions import atomic
from app.web import authorised_by_token
from modules.signing import keys, remote, second_factor, services
from modules.signing.models import (
    AttestationWording,
    SecondFactor,
    SignedDocument,
    SignerProfile,
    SigningKey,
)
from modules.signing.verification import Explanation, takeaway

VERDICTS = {
    "valid": _l("Valid: every signature is intact and trusted, and nothing changed after "
                "signing."),
    "valid_with_later_changes": _l(
        "Valid, with later changes: every signature is intact and trusted; content was "
        "added after the first signature — each change covered by a later signature, or a "
        "form field left empty when signed and filled in afterwards, as the signer allowed "
        "(shown below)."),
    "tampered": _l("Invalid: the file was modified after signing (a change that no "
                   "signature covers, or a signature that no longer matches)."),
    "untrusted": _l("Not trusted: the signatures are intact but do not chain to a trusted "
                    "root."),
    "indeterminate": _l("Cannot be determined: the signatures could not be checked "
                        "completely."),
    "unreadable": _l("This file is not a PDF we can read."),
}
NO_SIGNATURE = _l("This file carries no digital signature.")
CHANGE_KINDS = {
    "form_filling": _l("form filled in"), "signature_appearance": _l("signature appearance"),
    "annotation": _l("annotation"), "page_content": _l("page content"),
    "page_added": _l("page added"), "page_removed": _l("page removed"),
    "hidden_content": _l("what was shown when signed, hidden or replaced by a form field"),
    "unrendered": _l("a page that could not be drawn to compare: what changed is unknown"),
    "unattributed": _l("a difference on the page; the file's structure could not be read "
                       "to tell what made it"),
    "regenerated": _l("form fields a reader redraws from their values when opening the "
                      "file: what they will show cannot be compared"),
}
NOTES = {
    "timestamps_out_of_order": _l("A timestamp is earlier than that of an earlier "
                                  "revision."),
    "revision_analysis_failed": _l("The revisions could not be compared."),
    "sha1_signature": _l("The signature uses SHA-1, which is no longer considered secure."),
    "sha1_timestamp": _l("The timestamp uses SHA-1, which is no longer considered secure."),
    "signer_not_bound": _l("A signature was not made with the key registered for this "
                           "office's leader or seal."),
    "revocation_unknown": _l("Whether a signer's certificate was revoked cannot be checked: "
                             "the file carries no answer from the certificate's revocation "
                             "service and the service did not answer now."),
    "revoked_since_signing": _l("A signer's certificate was revoked after the signature "
                                "was made: the signature stays valid, as its timestamp "
                                "proves it existed before."),
    "docmdp_violated": _l("A later change goes beyond what the first signer allowed (only "
                          "filling in forms, or also adding notes)."),
    "content_unchecked": _l("Part of the file could not be read to look for content that "
                            "acts when it is opened: it cannot be ruled out."),
    "active_content": _l("The file carries content that can act when it is opened "
                         "(scripts, links that launch programs, embedded files)."),
    "byte_range_digest_mismatch": _l("The signed bytes were changed after signing."),
    "signature_dictionary_rewritten": _l("The signature's own data was rewritten after "
                                         "signing."),
    "signature_value_invalid": _l("The signature does not belong to the document: the "
                                  "content is as signed, but the signature value is not "
                                  "the signer's."),
    "signature_algorithm_unknown": _l("The signature uses an algorithm that cannot be "
                                      "checked here."),
    "checked_by_hand": _l("This signature could not be read completely; the signed bytes "
                          "were checked and are unchanged."),
    "timestamp_mislabelled": _l("The timestamp's content is labelled unusually by its "
                                "authority; it was checked by what it contains."),
    "timestamp_unusable": _l("The timestamp does not match this signature: the time of "
                             "signing is not proven."),
}

#: Identifiers a certificate may carry that are an organisation's and public (tax
#: code); a person's identity number (CCCD, CMND, passport) is never shown to the public.
PUBLIC_IDENTIFIERS = ("MST:",)


def public_identity(identity: str | None) -> str | None:
    """The organisation identifiers of a certificate's UID, without personal numbers."""
    kept = [part.strip() for part in (identity or "").split(",")
            if part.strip().upper().startswith(PUBLIC_IDENTIFIERS)]
    return ", ".join(kept) or None
REVOCATION_SOURCES = {
    "embedded": _l("answer carried in the file"),
    "fetched": _l("answer asked just now of the certification authority"),
}
REVOCATION = {
    "good": _l("not revoked"),
    "revoked": _l("REVOKED before the signature is proven to exist: the signature is not "
                  "valid"),
    "revoked_since": _l("revoked after signing (the signature stays valid)"),
    "unknown": _l("cannot be checked: the file carries no answer and the certification "
                  "authority's revocation service did not answer"),
    "not_declared": _l("the certificate names no revocation service"),
}


def summary(explanation: Explanation) -> dict[str, str]:
    """The verdict in Vietnamese first, English second (whatever the page language)."""
    text = NO_SIGNATURE if explanation.error == "no-signature" else \
        VERDICTS[explanation.verdict]
    out = {}
    for locale in ("vi", "en"):
        with force_locale(locale):
            out[locale] = str(text)
    return out


def copy_summary(doc: SignedDocument | None) -> dict | None:
    if doc is None:
        return None
    return {
        "office": doc.office.name, "number": doc.number, "book": doc.book,
        # The day of sealing in Vietnam, as the signatures and the attestation say it.
        "date": to_local(doc.sealed_at).date().isoformat() if doc.sealed_at else None,
        "document_type": doc.document_type, "pages": doc.pages,
        "verify_code": doc.verify_code,
    }


def report_json(explanation: Explanation, data: bytes, doc: SignedDocument | None,
                *, previews: bool = False) -> dict:
    """The verification contract: verdict, summary, signatures, revisions and changes."""
    result = explanation.to_dict(previews=previews)
    roles = services.roles_of(doc)
    for signature in result["signatures"]:
        signature["role"] = roles.get(signature["field"], "other")
        signature["identity"] = public_identity(signature.get("identity"))
    if doc is not None:  # one of our copies: its leader and seal must be this office's
        _check_binding(explanation, result, doc)
    result.update(
        valid=explanation.verdict in ("valid", "valid_with_later_changes"),
        modified_after_signing=explanation.verdict == "tampered",
        summary=summary(explanation), sha256=hashlib.sha256(data).hexdigest(),
        copy=copy_summary(doc))
    return result


REPORT_FORMATS = {"pdf": "application/pdf", "xml": "application/xml"}


def report_file(result: dict, form: str) -> tuple[bytes, str, str]:
    """The validation report to take away (``takeaway``): bytes, media type, file name."""
    if form not in REPORT_FORMATS:
        raise params.ParamError(_("The report comes as pdf or xml."))
    when, anchors = utcnow(), services.trust_anchor_names()
    if form == "xml":
        data = takeaway.xml_report(result, when, anchors)
    else:
        data = takeaway.pdf_report(result, when, anchors, services.fonts(), {
            "notes": NOTES, "kinds": CHANGE_KINDS,
            "revocation": REVOCATION})
    return data, REPORT_FORMATS[form], f"bao-cao-xac-minh-{result['sha256'][:12]}.{form}"


def _inline_reports(result: dict | None) -> dict | None:
    """An uploaded file is kept nowhere: its reports travel in the page itself."""
    if not result or (result.get("copy") or {}).get("verify_code"):
        return None
    pdf, _media, name = report_file(result, "pdf")  # the reports never read the previews
    xml, _media, _name = report_file(result, "xml")
    return {"pdf": base64.b64encode(pdf).decode(), "xml": base64.b64encode(xml).decode(),
            "name": name.rsplit(".", 1)[0]}


def copy_report(doc: SignedDocument, *, previews: bool = False) -> dict:
    """The answer for one of our copies, from its current file."""
    return report_json(services.explain_document(doc, previews=previews),
                       services.read_current(doc), doc, previews=previews)


def _check_binding(explanation: Explanation, result: dict, doc: SignedDocument) -> None:
    roles = [s for s in result["signatures"] if s["role"] in ("leader", "seal")]
    fingerprints = {s["fingerprint"] for s in roles if s.get("fingerprint")}
    bound = keys.bound_purposes(db.session, doc.office_id, fingerprints)
    custody = keys.custody(db.session, doc.office_id, fingerprints)
    for signature in roles:
        signature["bound"] = bound.get(signature.get("fingerprint")) == signature["role"]
        if signature["role"] == "leader" and signature.get("fingerprint") in custody:
            signature["custody"], signature["custody_since"] = \
                custody[signature["fingerprint"]]
    if any(not s["bound"] for s in roles):
        result["notes"].append("signer_not_bound")
        if explanation.verdict in ("valid", "valid_with_later_changes"):
            explanation.verdict = result["verdict"] = "untrusted"


def _read_upload() -> bytes:
    """The uploaded PDF, refused while streaming past the verification size limit."""
    limit = current_app.config["VERIFY_MAX_MB"] * 2**20
    request.max_content_length = limit + 256 * 1024
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise DomainError(_("The file is larger than %(mb)s MB.",
                            mb=current_app.config["VERIFY_MAX_MB"]), 413) from None
    if upload is None:
        raise DomainError(_("Choose the PDF file to check."), 400)
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise DomainError(_("The file is larger than %(mb)s MB.",
                            mb=current_app.config["VERIFY_MAX_MB"]), 413)
    return data


def _sealed(code: str) -> SignedDocument:
    doc = services.document_by_code(db.session, code)
    if doc is None or doc.stage.value != "sealed":
        raise NotFoundError()
    return doc


def printed_copy(values) -> SignedDocument:
    """The sealed copy a paper printout names: number, day and access code as printed on
    its attestation (the page and the API alike); 404 when the three do not match one."""
    number = params.text(values.get("number"), _("Certification number"), max_length=32,
                         required=True)
    day = params.date(values.get("date"), _("Date of certification"))
    code = params.text(values.get("access_code"), _("Access code"), max_length=32,
                       required=True)
    if day is None:
        raise params.ParamError(_("%(name)s is required.", name=_("Date of certification")))
    doc = services.document_by_printout(db.session, number, day, code)
    if doc is None:
        raise NotFoundError(_("No certified copy has this number, date and access code: "
                              "check them against the printout."))
    return doc


def _with_access_code(doc: SignedDocument) -> bool:
    given = (request.form.get("access_code") or "").strip()
    return bool(given) and _same(given, doc.access_code)


class VerifyView(BaseView):
    """Anyone, no login: the verdict for a QR code, or for an uploaded PDF.

    By code, the page says what the attestation says and what each signature and each
    revision is — but shows no image of a page's content: only the access code printed
    for the requester opens the previews and the file."""

    route_base = "/verify"
    default_view = "upload"

    @expose("/", methods=["GET", "POST"])
    @large_body
    def upload(self):
        result = None
        if request.method == "POST":
            data = _read_upload()  # whoever uploads it has the file: previews are theirs
            sha = hashlib.sha256(data).hexdigest()
            result = report_json(services.explain_bytes(data, previews=True), data,
                                 services.document_by_sha(db.session, sha), previews=True)
        return self.render_template("signing/verify_upload.html", result=result, notes=NOTES,
                                    revocation=REVOCATION, sources=REVOCATION_SOURCES,
                                    kinds=CHANGE_KINDS, reports=_inline_reports(result))

    @expose("/<code>", methods=["GET", "POST"])
    def by_code(self, code: str):
        doc = _sealed(code)
        opened = request.method == "POST" and _with_access_code(doc)
        if request.method == "POST" and not opened:
            flash(_("This access code does not open this copy."), "danger")
        result = copy_report(doc, previews=opened)
        return self.render_template("signing/verify.html", result=result, doc=doc,
                                    notes=NOTES, revocation=REVOCATION,
                                    sources=REVOCATION_SOURCES, kinds=CHANGE_KINDS,
                                    opened=opened,
                                    access_code=request.form.get("access_code", "")
                                    if opened else "")

    @expose("/printout", methods=["POST"])
    def printout(self):
        """Someone holding a paper printout (no file, no QR scanner) types the number, the
        date and the access code printed on it: the register entry, the signers and the
        document's hash, as the QR code would show them."""
        try:
            doc = printed_copy(request.form)
        except DomainError as exc:
            flash(exc.message, "danger")
            return self.render_template("signing/verify_upload.html", result=None,
                                        notes=NOTES, revocation=REVOCATION,
                                        sources=REVOCATION_SOURCES, kinds=CHANGE_KINDS,
                                        printout=request.form), exc.status
        result = copy_report(doc, previews=True)
        return self.render_template("signing/verify.html", result=result, doc=doc,
                                    notes=NOTES, revocation=REVOCATION,
                                    sources=REVOCATION_SOURCES, kinds=CHANGE_KINDS,
                                    opened=True, access_code=doc.access_code)

    @expose("/<code>/report.<form>")
    def report(self, code: str, form: str):
        """The validation report of a copy, to take away (PDF in Vietnamese and English, or
        XML in the shape of ETSI TS 119 102-2): no more than the public page says."""
        doc = _sealed(code)
        result = copy_report(doc)
        data, media, name = report_file(result, form)
        return Response(data, mimetype=media, headers={
            "Content-Disposition": f"attachment; filename={name}"})

    @expose("/<code>/file", methods=["POST"])
    def download(self, code: str):
        """The PDF itself, only with the secret second code printed for the citizen."""
        doc = _sealed(code)
        if not _with_access_code(doc):
            raise NotFoundError()
        return send_file(services.pdf_stream(doc), mimetype="application/pdf",
                         as_attachment=True, download_name=f"ban-sao-{doc.verify_code}.pdf")


#: SaoY's own signer, served to leaders from the plugin page.
SIGNER_PROGRAM = Path(__file__).resolve().parents[2] / "signer" / "saoy_signer.py"

#: What the plugin's upload handler answers (VGCA's contract): 0 taken, 4 refused.
TAKEN, REFUSED = 0, 4


def _signed_upload() -> bytes:
    """The plugin's signed file: the first file part of a multipart body (whatever its
    name: the plugin's is not published) or a raw PDF body, within the upload limit."""
    limit = (current_app.config["MAX_UPLOAD_MB"] + 5) * 2**20
    request.max_content_length = limit + 256 * 1024
    if request.files:
        return next(iter(request.files.values())).stream.read(limit + 1)
    return request.get_data(cache=False)[:limit + 1]


class SignerFilesView(BaseView):
    """The doors of the leader's signing plugin, which carries no session: the prepared
    file, once, and the signed file back — each authorised by a one-time token in its
    address (``external``), nothing else."""

    route_base = "/signing"

    @expose("/plugin")
    def help(self):
        """How to install and start the signing plugin (a leader's page says when none
        answers); a signed-in leader registers the token's certificate here."""
        leader = self.appbuilder.sm.has_access("can_post", "LeaderKeyApi")
        return self.render_template("signing/plugin_help.html",
                                    signer_url=current_app.config["SIGNER_URL"],
                                    base_url=request.host_url.rstrip("/"), leader=leader)

    @expose("/saoy_signer.py")
    def signer_program(self):
        """SaoY's own signer, the one file a leader's computer runs (signer/)."""
        return send_file(SIGNER_PROGRAM, mimetype="text/x-python", as_attachment=True,
                         download_name="saoy_signer.py")

    @expose("/file/<token>")
    def file(self, token: str):
        with atomic(db.session):
            data = services.prepared_for_download(db.session, token)
        return Response(data, mimetype="application/pdf", headers={
            "Cache-Control": "no-store",
            "Content-Disposition": "attachment; filename=ban-sao-de-ky.pdf"})

    @expose("/upload/<token>", methods=["POST"])
    @large_body
    @authorised_by_token
    def upload(self, token: str):
        try:
            data = _signed_upload()
            with atomic(db.session):
                doc = services.accept_signed_upload(db.session, token, data)
        except RequestEntityTooLarge:
            return _plugin_answer(REFUSED, _("The signed file is too large."), 413)
        except NotFoundError:
            return _plugin_answer(REFUSED, _("This signing link does not exist."), 404)
        except DomainError as exc:  # refused: nothing of it is kept, but the refusal is
            with atomic(db.session):
                services.record_refused_upload(db.session, token, exc.message)
            return _plugin_answer(REFUSED, exc.message, exc.status)
        return _plugin_answer(TAKEN, _("The signed copy was received."), 200,
                              FileName=f"ban-sao-{doc.id}.pdf",
                              FileServer=current_app.config["BASE_URL"])


def _plugin_answer(status: int, message: str, http: int, **extra):
    return jsonify(Status=status, Message=message, FileName=extra.get("FileName", ""),
                   FileServer=extra.get("FileServer", "")), http


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _tsa_choices():
    return [("", _("Default of the server (or none)"))] + [
        (name, name) for name in sorted(services.allowed_tsas()) if name != "default"]


class SignerProfileView(ScopedModelView):
    """OfficeAdmin: for each leader and for the office seal, the registered key (among the
    keys the system administrator bound to them), the title, the image and the TSA."""

    datamodel = Datamodel(SignerProfile, service=services.SignerProfileService("signer_profile"))
    list_title = _l("Signers of my office")
    show_title = edit_title = add_title = _l("Signer")
    label_columns = {
        "user": _l("Leader (empty: office seal)"), "key": _l("Registered key"),
        "title": _l("Title"), "tsa_name": _l("Timestamp service"),
        "active": _l("Active"), "office": _l("Office"),
        "authority": _l("Authority to certify"), "authority_decision": _l("Decision number"),
        "authority_decision_date": _l("Decision date"),
        "authority_scope": _l("What the decision covers"),
        "authority_from": _l("Valid from"), "authority_until": _l("Valid until"),
    }
    AUTHORITY_COLUMNS = ["authority", "authority_decision", "authority_decision_date",
                         "authority_scope", "authority_from", "authority_until"]
    list_columns = ["user", "key", "title", "authority", "authority_until", "tsa_name", "active"]
    show_columns = ["user", "key", "title", *AUTHORITY_COLUMNS, "tsa_name", "active", "office"]
    add_columns = edit_columns = ["user", "key", "title", *AUTHORITY_COLUMNS, "tsa_name",
                                  "active"]
    search_columns = ["user", "active"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "user": OFFICE_SCOPE,
        "key": [*OFFICE_SCOPE, ["active", FilterEqual, True]],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "tsa_name": SelectField(_l("Timestamp service"), choices=_tsa_choices,
                                validate_choice=True),
    }
    description_columns = {
        "key": _l("Keys are registered and bound to a leader or to the seal by the system "
                  "administrator."),
        "tsa_name": _l("Only the services allowed by the system administrator."),
        "authority": _l("Decree 280/2025: the chairman, a vice-chairman, or an official the "
                        "chairman authorised or assigned by a decision. A leader with none "
                        "recorded cannot sign; the attestation prints it."),
        "authority_decision": _l("For an authorised official: the decision's number, e.g. "
                                 "15/QĐ-UBND (printed under the name)."),
        "authority_until": _l("Signing is refused after this day."),
    }

    @expose("/image/<int:pk>", methods=["GET", "POST"])
    @has_access
    @large_body
    def image(self, pk: int):
        """Upload the signature (leader) or seal (office) image, a transparent PNG."""
        profile = scoped(db.session, g.user, SignerProfile).get_or_404(pk)
        if request.method == "POST":
            upload = request.files.get("image")
            if upload is None:
                abort(400)
            with atomic(db.session):
                services.set_signer_image(db.session, g.user, pk,
                                          upload.stream.read(services.MAX_IMAGE_BYTES + 1))
            flash(_("Image saved."), "success")
            return redirect(url_for("SignerProfileView.show", pk=pk))
        return self.render_template("signing/signer_image.html", profile=profile)


class SigningKeyView(ScopedModelView):
    """The system administrator registers key material and binds it to a leader or to an
    office's seal (office admins see their office's keys, nothing more)."""

    datamodel = Datamodel(SigningKey)
    base_permissions = ["can_list", "can_show", "can_register", "approve", "server_custody",
                        "deactivate"]
    list_title = _l("Registered signing keys")
    show_title = _l("Signing key")
    label_columns = {
        "name": _l("Name"), "office": _l("Office"), "user": _l("Leader (empty: office seal)"),
        "kind": _l("Key kind"), "subject": _l("Certificate issued to"),
        "organisation": _l("Organisation"), "identity": _l("Identity (UID)"),
        "fingerprint": _l("SHA-256 fingerprint"), "not_before": _l("Valid from"),
        "not_after": _l("Valid until"), "active": _l("Active"), "token_label": _l("Token"),
        "key_label": _l("Key label"), "registered_at": _l("Registered at"),
        "approved_at": _l("Approved at"), "server_custody_at": _l("Server custody since"),
    }
    list_columns = ["name", "office", "user", "kind", "subject", "not_after", "active",
                    "server_custody_at"]
    show_columns = ["name", "office", "user", "kind", "subject", "organisation", "identity",
                    "fingerprint", "not_before", "not_after", "token_label", "key_label",
                    "active", "registered_at", "approved_at", "server_custody_at"]
    search_columns = ["name", "office", "active"]
    base_order = ("registered_at", "desc")

    @expose("/register", methods=["GET", "POST"])
    @has_access
    @large_body
    def register(self):
        """Register a PKCS#12 file (imported into the keystore) or a key on a declared token."""
        values = request.form.to_dict() if request.method == "POST" else {}
        if request.method == "POST":
            upload = request.files.get("file")
            try:
                with atomic(db.session):
                    if values.get("kind") == "pkcs11":
                        key = keys.register_pkcs11(
                            db.session, g.user, office_id=values.get("office_id"),
                            user_id=values.get("user_id"), name=values.get("name", ""),
                            token_label=values.get("token_label", ""),
                            key_label=values.get("key_label", ""),
                            cert_label=values.get("cert_label") or None,
                            confirmed_fingerprint=values.get("confirm_fingerprint"))
                    else:
                        key = keys.register_pkcs12(
                            db.session, g.user, office_id=values.get("office_id"),
                            user_id=values.get("user_id"), name=values.get("name", ""),
                            data=upload.stream.read(1024 * 1024) if upload else b"",
                            passphrase=values.get("passphrase", ""),
                            confirmed_fingerprint=values.get("confirm_fingerprint"))
                flash(_("Key %(name)s registered.", name=key.name), "success")
                return redirect(url_for("SigningKeyView.show", pk=key.id))
            except DomainError as exc:
                flash(exc.message, "danger")
        values.pop("passphrase", None)
        offices, leaders = keys.key_owners(db.session, g.user)
        return self.render_template("signing/key_register.html", values=values,
                                    offices=offices, leaders=leaders,
                                    tokens=sorted(current_app.config["PKCS11_TOKENS"]))

    @action("approve", _l("Approve and bind"),
            _l("Approve the selected keys and make each the one its leader or seal signs "
               "with?"), "fa-check", multiple=False)
    def approve(self, item):
        with atomic(db.session):
            keys.approve_key(db.session, g.user, item.id)
        flash(_("Key %(name)s approved.", name=item.name), "success")
        return redirect(self.get_redirect())

    @action("server_custody", _l("Choose server custody"),
            _l("Let the server hold this leader's personal key? Each signing session will "
               "still need the leader's own one-time code, and the verification page will say "
               "that the server held the key."), "fa-server", multiple=False)
    def server_custody(self, item):
        try:
            with atomic(db.session):
                keys.choose_server_custody(db.session, g.user, item.id)
            flash(_("Server custody chosen for %(name)s.", name=item.name), "success")
        except DomainError as exc:
            flash(exc.message, "danger")
        return redirect(self.get_redirect())

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected keys? They sign "
                                               "nothing afterwards."), "fa-ban")
    def deactivate(self, items):
        with atomic(db.session):
            for item in items if isinstance(items, list) else [items]:
                keys.set_active(db.session, g.user, item, False)
        flash(_("Keys deactivated."), "success")
        return redirect(self.get_redirect())


class MyCodeView(BaseView):
    """A leader whose key the server holds sets up their one-time codes here: scan the QR
    code with an authenticator app, type a code; the system administrator confirms it."""

    route_base = "/signing/code"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        user = g.user
        if request.method == "POST":
            try:
                with atomic(db.session):
                    second_factor.enrol(db.session, user, request.form.get("code"),
                                        session.get("saoy_new_code", ""))
                session.pop("saoy_new_code", None)
                flash(_("Your code is set up: the system administrator confirms it before "
                        "you sign."), "success")
                return redirect(url_for("MyCodeView.index"))
            except DomainError as exc:
                flash(exc.message, "danger")
        state = second_factor.state(db.session, user)
        secret = None
        if state == "none":
            secret = session.get("saoy_new_code") or second_factor.new_secret()
            session["saoy_new_code"] = secret
        return self.render_template(
            "signing/my_code.html", state=state, secret=secret,
            qr=_qr_svg(second_factor.provisioning_uri(secret, user.username)) if secret
            else None)


class RemoteCredentialView(BaseView):
    """A leader whose key is at a remote signing provider binds their credential here: the
    provider answers with its certificate and signs a challenge under the leader's PIN or
    code (or after the leader approves in its app); the system administrator then
    approves it, as an own token's key.  The leader's page also asks here what became of
    an approval it waits for."""

    route_base = "/signing/remote"
    default_view = "index"
    #: Asking about one's own waiting approval is part of signing remotely.
    method_permission_name = {"index": "index", "binding": "index", "job": "index"}
    _BINDING = "saoy_remote_binding"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        user = g.user
        if request.method == "POST":
            try:
                with atomic(db.session):
                    bound = keys.bind_remote_credential(
                        db.session, user, request.form.get("provider"),
                        request.form.get("credential"), remote.Approval(
                            pin=request.form.get("pin") or None,
                            otp=request.form.get("otp") or None), current_app.config)
                if isinstance(bound, keys.PendingBinding):
                    session[self._BINDING] = asdict(bound)
                    flash(_("Approve the binding in your provider's app on your phone."),
                          "info")
                else:
                    flash(_("Your remote signing credential is bound: the system administrator "
                            "approves it before you sign with it."), "success")
                return redirect(url_for("RemoteCredentialView.index"))
            except DomainError as exc:
                flash(exc.message, "danger")
        pending = session.get(self._BINDING)
        return self.render_template(
            "signing/remote_credential.html",
            providers=sorted(remote.providers(current_app.config)),
            bound=keys.remote_keys_of(db.session, user), pending=pending,
            seconds_left=_seconds_until(pending["expires_at"]) if pending else 0)

    @expose("/binding")
    @has_access
    def binding(self):
        """What became of the binding waiting in the provider's app (the page asks)."""
        stash = session.get(self._BINDING)
        if not stash:
            raise NotFoundError()
        try:
            with atomic(db.session):
                state = keys.finish_remote_binding(db.session, g.user,
                                                   keys.PendingBinding(**stash),
                                                   current_app.config)
        except DomainError as exc:
            session.pop(self._BINDING, None)
            return jsonify(state="failed", message=exc.message, seconds_left=0)
        if state != "pending":
            session.pop(self._BINDING, None)
            messages = {
                "bound": _("Your remote signing credential is bound: the system "
                           "administrator approves it before you sign with it."),
                "refused": _("You declined in your provider's app: the credential is not "
                             "bound."),
                "expired": _("The time to approve in your provider's app ran out: the "
                             "credential is not bound.")}
            flash(messages.get(state, messages["refused"]),
                  "success" if state == "bound" else "danger")
        return jsonify(state="done" if state == "bound" else state,
                       seconds_left=_seconds_until(stash["expires_at"]))

    @expose("/job/<int:job_id>")
    @has_access
    def job(self, job_id: int):
        """What became of the leader's approval of a signing (their own job only)."""
        with atomic(db.session):
            waiting = services.refresh_approval(db.session, g.user, job_id)
        return jsonify(state=waiting.state, seconds_left=waiting.seconds_left,
                       message=waiting.message)


def _seconds_until(iso: str) -> int:
    left = dt.datetime.fromisoformat(iso) - utcnow()
    return max(0, int(left.total_seconds()))


class RemoteWebhookView(BaseView):
    """Where a remote provider that asks in its app says a signing moved on: the body
    authenticated by its HMAC, then SaoY asks the provider itself (idempotent)."""

    route_base = "/signing/remote/webhook"

    @expose("/<provider>", methods=["POST"])
    @authorised_by_token
    def notify(self, provider: str):
        body = request.get_data(cache=False)[:8192]
        with atomic(db.session):
            authentic = services.remote_webhook(db.session, provider, body,
                                                request.headers.get("X-SaoY-Signature"))
        if not authentic:
            return jsonify(ok=False, message="signature refused"), 403
        return jsonify(ok=True)


def _qr_svg(text: str) -> Markup:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return Markup(image.to_string(encoding="unicode"))


class SecondFactorView(ServiceFormViewMixin, ModelView):
    """The system administrator confirms a leader's code (in person: it is theirs) or
    removes it (a lost phone)."""

    datamodel = Datamodel(SecondFactor)
    base_permissions = ["can_list", "can_show", "confirm", "remove"]
    list_title = _l("Leaders' signing codes")
    show_title = _l("Signing code")
    label_columns = {"user": _l("Leader"), "enrolled_at": _l("Set up at"),
                     "confirmed_at": _l("Confirmed at"), "session_until": _l("Signing until"),
                     "locked_until": _l("Paused until")}
    list_columns = ["user", "enrolled_at", "confirmed_at", "session_until", "locked_until"]
    show_columns = list_columns
    search_columns = ["user"]

    @action("confirm", _l("Confirm"), _l("Did the leader show you this code set up on their "
                                        "own phone?"), "fa-check", multiple=False)
    def confirm(self, item):
        with atomic(db.session):
            second_factor.confirm(db.session, g.user, item.user_id)
        flash(_("Code confirmed."), "success")
        return redirect(self.get_redirect())

    @action("remove", _l("Remove"), _l("Remove this leader's code? They set up a new one."),
            "fa-trash", multiple=False)
    def remove(self, item):
        with atomic(db.session):
            second_factor.reset(db.session, g.user, item.user_id)
        flash(_("Code removed."), "success")
        return redirect(self.get_redirect())


class AttestationWordingView(DatedRuleView):
    """System administrator: the attestation's words by the date they take effect (the
    form annexed to the circular in force); a copy carries those in force on the day its
    request was received."""

    datamodel = Datamodel(AttestationWording, service=DatedRuleService("attestation_wording"))
    list_title = _l("Attestation wording")
    show_title = add_title = edit_title = _l("Attestation wording")
    label_columns = {
        **DatedRuleView.DATED_LABELS, "sentence": _l("Attestation sentence"),
        "signer_heading": _l("Heading of the signer"),
        "signer_note": _l("Note under the heading"),
    }
    list_columns = ["effective_from", "sentence", "legal_basis"]
    show_columns = add_columns = edit_columns = ["effective_from", "sentence",
                                                 "signer_heading", "signer_note",
                                                 "legal_basis"]
    description_columns = {
        "effective_from": DatedRuleView.effective_note(_l(
            "Without any version the built-in wording applies (Circular 01/2020/TT-BTP).")),
        "signer_heading": _l("e.g. NGƯỜI THỰC HIỆN CHỨNG THỰC"),
        "signer_note": _l("e.g. (Ký, ghi rõ họ tên và đóng dấu)"),
    }
