"""What a request to the copies pages and API carries, read once: the uploaded scan
(refused while streaming past the limit), a workflow event's parameters (typed and
bounded), the attestation's placement.  The pages and the API both use these."""
from __future__ import annotations

from flask import current_app, request
from flask_babel import gettext as _

from app import params
from app.extensions import csrf
from modules.copies import services, workflow
from modules.signing import pdf as signing_pdf


def upload_limit() -> int:
    return current_app.config["MAX_UPLOAD_MB"] * 2**20


def too_large_message() -> str:
    return _("The file is larger than %(mb)s MB.", mb=current_app.config["MAX_UPLOAD_MB"])


def read_upload(field: str = "scan") -> services.Upload | None:
    """The uploaded scan; the body is refused while streaming past the limit (+ form)."""
    request.max_content_length = upload_limit() + 256 * 1024
    stored = request.files.get(field)
    if stored is None or not stored.filename:
        return None
    return services.Upload(stored.stream, stored.filename)


def check_csrf() -> None:
    """The upload forms are exempt from the global CSRF hook (it would parse the body
    before the size limit is set) and check the token here instead."""
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


#: A page of a scan is at most 200 inches (14,400 points) on a side.
MAX_POINTS = 14_400


def placement_from(values) -> signing_pdf.Placement | None:
    """Optional page and rectangle (points) for the attestation, from a form or JSON."""
    page = params.integer(values.get("page"), _("Page"), low=1, high=100_000)
    box = params.numbers(values.get("rect"), _("Area"), count=4, low=0, high=MAX_POINTS)
    if page is None and box is None:
        return None
    return signing_pdf.Placement(page=page - 1 if page else None, rect=box)


#: Copies a leader signs in one go (a morning's queue: about a hundred).
BATCH_MAX = 200


def params_from(values) -> workflow.Params:
    """The parameters of a workflow event, typed and bounded (form or JSON object)."""
    reason = params.text(values.get("reason"), _("Reason"), max_length=1000) or ""
    ground = params.integer(values.get("ground"), _("Refusal ground"), low=1,
                            high=len(workflow.REFUSAL_GROUNDS))
    if ground:
        reason = f"{workflow.REFUSAL_GROUNDS[ground - 1]} {reason}".strip()
    register = values.get("register_id")
    register_id = params.as_id(register)
    if register not in (None, "") and register_id is None:
        raise params.ParamError(_("Choose the register that gives the number."))
    receipt = values.get("receipt_number", values.get("receipt"))
    return workflow.Params(
        reason=reason, ground=ground, placement=placement_from(values), register_id=register_id,
        seal_key_id=params.as_id(values.get("seal_key_id")),
        receipt_number=params.text(receipt, _("Receipt number"), max_length=64),
        otp=params.text(values.get("otp"), _("Authentication code"), max_length=16),
        pin=params.text(values.get("pin"), _("PIN of the remote signing service"),
                        max_length=64))
