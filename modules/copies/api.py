"""``/api/v1/copy/``: the same services and workflow as the web pages, as JSON."""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets

from flask import Response, current_app, jsonify, request, send_file, stream_with_context
from flask_appbuilder import expose
from flask_appbuilder.api import permission_name, protect
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from app import params
from app.crud import ServiceApi
from app.errors import DomainError
from app.extensions import db
from app.params import large_body
from app.timeutil import to_local
from app.transactions import atomic
from app.web import current_user
from modules.copies import services, workflow
from modules.copies.forms import BATCH_MAX, params_from, read_upload, too_large_message
from modules.copies.models import CopyRequest, State
from modules.signing import services as signing

log = logging.getLogger(__name__)


def _iso(value: dt.datetime | None) -> str | None:
    return to_local(value).isoformat() if value else None


def copy_json(c: CopyRequest, user=None, *, full: bool = False) -> dict:
    data = {
        "id": c.id, "state": c.state.value, "office_id": c.office_id,
        "requester_name": c.requester_name, "requester_identity": c.requester_identity,
        "requester_email": c.requester_email, "document_type_id": c.document_type_id,
        "document_type": c.document_type.name_vi, "copies": c.copies, "pages": c.pages,
        "fee": c.fee, "fee_paid": c.fee_paid, "received_at": _iso(c.received_at),
        "due_at": _iso(c.due_at), "overdue": c.overdue, "number": c.number, "book": c.book,
        "reason": c.reason, "version": c.version,
    }
    if full:
        data.update(
            verify_code=c.document.verify_code, scan_dpi=c.scan_dpi,
            receipt_number=c.receipt_number, delivered_at=_iso(c.delivered_at),
            allowed_events=[e.value for e in workflow.allowed_events(c, user)],
            history=[{"time": _iso(e.created_at), "event": e.event, "from": e.from_state,
                      "to": e.to_state, "user_id": e.user_id, "reason": e.reason}
                     for e in services.history(db.session, c)])
    return data


class CopyApi(ServiceApi):
    resource_name = "copy"
    scoped_model = CopyRequest
    openapi_spec_tag = "Copy requests"
    allow_browser_login = True  # the bulk-sign page calls /sign with the session cookie

    def answer(self, call):
        try:
            return super().answer(call)
        except RequestEntityTooLarge:
            return jsonify(message=too_large_message()), 413

    @expose("/", methods=["POST"])
    @protect()
    @permission_name("post")
    @large_body
    def post(self):
        """Intake a walk-in request (draft); submit it with ``/submit``.
        ---
        post:
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema:
                  type: object
                  required: [scan, document_type_id]
                  properties:
                    scan: {type: string, format: binary, description: "PDF, ≤ SAOY_MAX_UPLOAD_MB"}
                    document_type_id: {type: integer}
                    copies: {type: integer, default: 1}
                    identity_number: {type: string, description: requester's DVCQG account}
                    verify_identity: {type: boolean, description: "the officer compared the
                      identity card with the account (counter verification)"}
                    counter_code: {type: string, description: "with verify_identity: the code
                      sent to the account (POST /counter-code) as the requester reads it out"}
                    email: {type: string, description: "where the copy goes unless the
                      account is verified (required without an account)"}
                    name: {type: string}
                    phone: {type: string}
                    note: {type: string}
                    appointment_code: {type: string}
          responses:
            201: {description: "{id, state, fee, pages, dpi, warning}"}
            404: {description: No account with this identity number / no such appointment}
            413: {description: File too large (refused while streaming)}
            422: {description: "Bad file or data: {message}"}
        """
        return self.answer(self._intake)

    def _intake(self):
        upload = read_upload()
        if upload is None:
            raise DomainError(_("Attach the scanned PDF of the original."))
        form = request.form
        with atomic(db.session):
            copy, info = services.intake(
                db.session, current_user(), upload=upload,
                document_type_id=form.get("document_type_id"), copies=form.get("copies"),
                requester=services.Requester(
                    identity_number=form.get("identity_number"),
                    no_account=not form.get("identity_number"),
                    email=form.get("email"), name=form.get("name"), phone=form.get("phone"),
                    verify_identity=form.get("verify_identity") in ("1", "true", "on"),
                    counter_code=form.get("counter_code")),
                note=form.get("note"), appointment_code=form.get("appointment_code"))
        low = info.dpi is not None and info.dpi < current_app.config["MIN_SCAN_DPI"]
        return jsonify(id=copy.id, state=copy.state.value, fee=copy.fee, pages=copy.pages,
                       dpi=info.dpi, warning=_("The scan resolution is below %(min)s dpi.",
                                               min=current_app.config["MIN_SCAN_DPI"])
                       if low else None), 201

    @expose("/counter-code", methods=["POST"])
    @protect()
    @permission_name("post")
    def counter_code(self):
        """Send the counter check's one-time code to the account of an identity number.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [identity_number]
                  properties:
                    identity_number: {type: string}
          responses:
            200: {description: "{sent_to}: the phone's last digits or the masked e-mail"}
            404: {description: No account with this identity number}
            409: {description: Already verified, or no phone or e-mail to send to}
        """
        return self.answer(self._counter_code)

    def _counter_code(self):
        body = params.json_object()
        with atomic(db.session):
            sent_to = services.send_code_for_identity(db.session, current_user(),
                                                      body.get("identity_number"))
        return jsonify(sent_to=sent_to)

    @expose("/<int:pk>/<event>", methods=["POST"])
    @protect()
    @permission_name("transition")
    def transition(self, pk: int, event: str):
        """Apply a workflow event: submit, sign (``request_signature`` for a leader who
        signs on their own computer), return, forward, seal, deliver, cancel, resume (and
        ``pay`` to record the fee receipt).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: event, required: true, schema: {type: string, enum: [submit,
              sign, request_signature, return, forward, seal, deliver, cancel, resume,
              pay]}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    reason: {type: string, description: return / cancel}
                    ground: {type: integer, minimum: 1, maximum: 6, description: "return:
                      the Decree 23/2015 art. 22 ground (1–6), before the reason"}
                    register_id: {type: integer, description: seal}
                    seal_key_id: {type: integer, description: "seal: another of the office's seal
                      certificates (default: the seal's own)"}
                    page: {type: integer, description: "sign: 1-based page of the attestation"}
                    rect: {type: array, items: {type: number}, description: "sign: x1,y1,x2,y2"}
                    receipt_number: {type: string, description: pay}
          responses:
            200: {description: The request after the event}
            403: {description: Your role cannot do this}
            404: {description: Not found in your offices}
            409: {description: "Wrong state: {message, allowed_events, state}"}
            422: {description: Missing reason / register, bad placement}
        """
        def run():
            asked = params_from(params.json_object())
            with signing.counting_wrong_codes(db.session, current_user()), atomic(db.session):
                copy = workflow.apply(db.session, current_user(), pk, event, asked)
            answer = copy_json(copy, current_user(), full=True)
            if asked.opened is not None:  # request_signature: the plugin's one-time links
                answer["signing"] = signing.job_json(asked.opened, copy.id)
            return jsonify(answer), 200

        return self.answer(run)

    @expose("/request-signature", methods=["POST"])
    @protect()
    @permission_name("transition")
    def request_signature(self):
        """Prepare several copies for the leader's signing plugin at once (one batch, one
        approval in SaoY's own signer): each request is its own unit of work.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [ids]
                  properties:
                    ids: {type: array, items: {type: integer}, maxItems: 200}
                    page: {type: integer, description: "one copy: 1-based page of the block"}
                    rect: {type: array, items: {type: number}}
          responses:
            200: {description: "{batch, jobs: [{request_id, download_url, upload_url, sha256,
              field, doc_number, expires_at}], refused: [{id, status, message}]}"}
            422: {description: "ids is not a list of record numbers, or too many"}
        """
        def run():
            body = params.json_object()
            ids = params.ids(body.get("ids"), "ids", max_count=BATCH_MAX)
            if not ids:
                raise params.ParamError(_("Choose the requests to sign."))
            batch, jobs, refused = secrets.token_urlsafe(12), [], []
            for pk in ids:
                asked = params_from(body if len(ids) == 1 else {})
                asked.batch = batch
                try:
                    with atomic(db.session):
                        copy = workflow.apply(db.session, current_user(), pk,
                                              workflow.Event.request_signature, asked)
                    jobs.append(signing.job_json(asked.opened, copy.id))
                except DomainError as exc:
                    refused.append({"id": pk, "status": exc.status, "message": exc.message})
            if not jobs and refused:
                return jsonify(message=refused[0]["message"], refused=refused), \
                    refused[0]["status"]
            return jsonify(batch=batch, jobs=jobs, refused=refused), 200

        return self.answer(run)

    @expose("/sign-batch", methods=["POST"])
    @protect()
    @permission_name("transition")
    def sign_batch(self):
        """Sign many requests with one opening of the leader's key (one token login): each
        copy is its own unit of work; the answer streams one JSON line per copy, in order,
        as it is signed (a progress bar reads them).
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [ids]
                  properties:
                    ids: {type: array, items: {type: integer}, maxItems: 200}
          responses:
            200:
              description: "application/x-ndjson: {id, ok, state} or {id, ok: false,
                status, message} per request"
            422: {description: "ids is not a list of record numbers, or too many"}
        """
        def run():
            body = params.json_object()
            ids = params.ids(body.get("ids"), "ids", max_count=BATCH_MAX)
            if not ids:
                raise params.ParamError(_("Choose the requests to sign."))
            otp = params.text(body.get("otp"), _("Authentication code"), max_length=16)
            pin = params.text(body.get("pin"), _("PIN of the remote signing service"),
                              max_length=64)
            return Response(stream_with_context(_signed_one_by_one(ids, otp, pin)),
                            mimetype="application/x-ndjson",
                            headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"})

        return self.answer(run)

    @expose("/", methods=["GET"])
    @protect()
    @permission_name("get")
    def get_list(self):
        """Requests of your offices, newest first.
        ---
        get:
          parameters:
          - {in: query, name: state, schema: {type: string}}
          - {in: query, name: date_from, schema: {type: string, format: date}}
          - {in: query, name: date_to, schema: {type: string, format: date}}
          - {in: query, name: document_type_id, schema: {type: integer}}
          - {in: query, name: q, schema: {type: string}, description: identity, name or number}
          - {in: query, name: page, schema: {type: integer}}
          responses:
            200: {description: "{count, result: [request]}"}
        """
        return self.answer(self._list)

    def _list(self):
        state = request.args.get("state")
        try:
            state = State(state) if state else None
        except ValueError:
            raise DomainError(_("Unknown status %(value)s.", value=state)) from None
        rows = services.search(db.session, current_user(), services.Search(
            state=state, date_from=params.query_date("date_from"),
            date_to=params.query_date("date_to"),
            document_type_id=params.query_int("document_type_id"),
            text=params.text(request.args.get("q"), "q", max_length=100)),
            params.query_page())
        return jsonify(count=len(rows), result=[copy_json(c) for c in rows]), 200

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @permission_name("get")
    def get(self, pk: int):
        """One request: state, number, book, allowed events and history.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The request}
            404: {description: Not found in your offices}
        """
        return self.answer(lambda: (jsonify(copy_json(
            workflow.get_visible(db.session, current_user(), pk), current_user(),
            full=True)), 200))

    @expose("/<int:pk>/document", methods=["GET"])
    @protect()
    @permission_name("get")
    def document(self, pk: int):
        """The current PDF (scan, then signed, then sealed).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: PDF, content: {application/pdf: {}}}
            404: {description: Not found in your offices}
        """
        def send():
            copy = workflow.get_visible(db.session, current_user(), pk)
            return send_file(signing.pdf_stream(copy.document), mimetype="application/pdf",
                             download_name=f"ho-so-{copy.id}.pdf")

        return self.answer(send)

    @expose("/<int:pk>/validation", methods=["GET"])
    @protect()
    @permission_name("get")
    def validation(self, pk: int):
        """Validate the current PDF now (pyHanko, bundled Vietnamese roots).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: "The validation report: valid, signatures[…]"}
            404: {description: Not found in your offices}
        """
        def report():
            copy = workflow.get_visible(db.session, current_user(), pk)
            result = signing.validate_bytes(signing.read_current(copy.document), copy.document)
            return jsonify(request_id=copy.id, state=copy.state.value,
                           **result.to_dict()), 200

        return self.answer(report)


def _signed_one_by_one(ids: list[int], otp: str | None, pin: str | None = None):
    """Each request signed in its own unit of work (one refusal stops no other), the
    leader's key opened once for all of them; the one-time code opens the day's signing
    session with the first copy (a remote provider: one authorisation for the batch where
    the credential allows it)."""
    user = current_user()
    with signing.one_signer_session(len(ids)):
        for pk in ids:
            try:
                with signing.counting_wrong_codes(db.session, user), atomic(db.session):
                    copy = workflow.apply(db.session, user, pk, workflow.Event.sign,
                                          workflow.Params(otp=otp, pin=pin))
                line = {"id": pk, "ok": True, "state": copy.state.value}
            except (signing.SecondFactorError, signing.RemoteRefusalError) as exc:
                # the code, or the provider's refusal: no further copy can be signed
                yield json.dumps({"id": pk, "ok": False, "status": exc.status,
                                  "message": exc.message}, ensure_ascii=False) + "\n"
                return
            except DomainError as exc:  # 404 for another office's request, 409 signed…
                line = {"id": pk, "ok": False, "status": exc.status, "message": exc.message}
            except Exception:
                log.exception("sign-batch stopped at request %s", pk)
                yield json.dumps({"id": pk, "ok": False, "status": 500, "message": _(
                    "Signing stopped because of an error on the server; the copies above "
                    "are signed.")}, ensure_ascii=False) + "\n"
                return
            yield json.dumps(line, ensure_ascii=False) + "\n"
