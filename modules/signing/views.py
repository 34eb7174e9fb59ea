"""Public verification (page, upload, JSON API) and the staff's signer profiles."""
from __future__ import annotations

import hashlib

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectField

from app.crud import Datamodel
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.params import large_body
from app.scope import scoped
from app.scoping import OFFICE_SCOPE, ScopedModelView
from app.timeutil import to_local
from app.transactions import atomic
from modules.signing import keys, services
from modules.signing.explain import Explanation
from modules.signing.models import SignedDocument, SignerProfile, SigningKey

VERDICTS = {
    "valid": _l("Valid: every signature is intact and trusted, and nothing changed after "
                "signing."),
    "valid_with_later_changes": _l(
        "Valid, with later changes: every signature is intact and trusted; content was "
        "added after the first signature, and a later signature covers each change."),
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
}
NOTES = {
    "timestamps_out_of_order": _l("A timestamp is earlier than that of an earlier "
                                  "revision."),
    "revision_analysis_failed": _l("The revisions could not be compared."),
    "sha1_signature": _l("The signature uses SHA-1, which is no longer considered secure."),
    "sha1_timestamp": _l("The timestamp uses SHA-1, which is no longer considered secure."),
    "signer_not_bound": _l("A signature was not made with the key registered for this "
                           "office's leader or seal."),
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
    for signature in result["signatures"]:
        signature["role"] = services.ROLES.get(signature["field"], "other")
    if doc is not None:  # one of our copies: its leader and seal must be this office's
        _check_binding(explanation, result, doc)
    result.update(
        valid=explanation.verdict in ("valid", "valid_with_later_changes"),
        modified_after_signing=explanation.verdict == "tampered",
        summary=summary(explanation), sha256=hashlib.sha256(data).hexdigest(),
        copy=copy_summary(doc))
    return result


def _check_binding(explanation: Explanation, result: dict, doc: SignedDocument) -> None:
    roles = [s for s in result["signatures"] if s["role"] in ("leader", "seal")]
    bound = keys.bound_purposes(db.session, doc.office_id,
                                {s["fingerprint"] for s in roles if s.get("fingerprint")})
    for signature in roles:
        signature["bound"] = bound.get(signature.get("fingerprint")) == signature["role"]
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
                                    kinds=CHANGE_KINDS)

    @expose("/<code>", methods=["GET", "POST"])
    def by_code(self, code: str):
        doc = _sealed(code)
        opened = request.method == "POST" and _with_access_code(doc)
        if request.method == "POST" and not opened:
            flash(_("This access code does not open this copy."), "danger")
        result = report_json(services.explain_document(doc, previews=opened),
                             services.read_current(doc), doc, previews=opened)
        return self.render_template("signing/verify.html", result=result, doc=doc,
                                    notes=NOTES, kinds=CHANGE_KINDS, opened=opened,
                                    access_code=request.form.get("access_code", "")
                                    if opened else "")

    @expose("/<code>/file", methods=["POST"])
    def download(self, code: str):
        """The PDF itself, only with the secret second code printed for the citizen."""
        doc = _sealed(code)
        if not _with_access_code(doc):
            raise NotFoundError()
        return send_file(services.pdf_stream(doc), mimetype="application/pdf",
                         as_attachment=True, download_name=f"ban-sao-{doc.verify_code}.pdf")


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
    }
    list_columns = ["user", "key", "title", "tsa_name", "active"]
    show_columns = ["user", "key", "title", "tsa_name", "active", "office"]
    add_columns = edit_columns = ["user", "key", "title", "tsa_name", "active"]
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
    base_permissions = ["can_list", "can_show", "can_register", "approve", "deactivate"]
    list_title = _l("Registered signing keys")
    show_title = _l("Signing key")
    label_columns = {
        "name": _l("Name"), "office": _l("Office"), "user": _l("Leader (empty: office seal)"),
        "kind": _l("Key kind"), "subject": _l("Certificate issued to"),
        "organisation": _l("Organisation"), "identity": _l("Identity (UID)"),
        "fingerprint": _l("SHA-256 fingerprint"), "not_before": _l("Valid from"),
        "not_after": _l("Valid until"), "active": _l("Active"), "token_label": _l("Token"),
        "key_label": _l("Key label"), "registered_at": _l("Registered at"),
        "approved_at": _l("Approved at"),
    }
    list_columns = ["name", "office", "user", "kind", "subject", "not_after", "active"]
    show_columns = ["name", "office", "user", "kind", "subject", "organisation", "identity",
                    "fingerprint", "not_before", "not_after", "token_label", "key_label",
                    "active", "registered_at", "approved_at"]
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

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected keys? They sign "
                                               "nothing afterwards."), "fa-ban")
    def deactivate(self, items):
        with atomic(db.session):
            for item in items if isinstance(items, list) else [items]:
                keys.set_active(db.session, g.user, item, False)
        flash(_("Keys deactivated."), "success")
        return redirect(self.get_redirect())
