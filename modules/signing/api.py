"""``/api/v1/verify``: the public verdict for a code or an uploaded PDF; and the
endpoints of the leader's own signer (jobs to sign, signatures back)."""
from __future__ import annotations

import base64
import hashlib

from flask import g
from flask_appbuilder import expose
from flask_appbuilder.api import BaseApi, permission_name, protect
from flask_babel import gettext as _

from app import params
from app.crud import DomainErrorAnswers
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.params import large_body
from app.transactions import atomic
from modules.signing import services
from modules.signing.models import ExternalSigningJob
from modules.signing.views import _read_upload, _sealed, report_json


class VerifyApi(DomainErrorAnswers, BaseApi):
    """``GET /api/v1/verify/<code>`` and ``POST /api/v1/verify`` (multipart ``file``)."""

    resource_name = "verify"
    openapi_spec_tag = "Verification"

    @expose("/<code>", methods=["GET"])
    def by_code(self, code: str):
        """Verdict for a certified copy's public code.
        ---
        get:
          parameters:
          - in: path
            name: code
            schema: {type: string}
          responses:
            200: {description: "{verdict, summary {vi, en}, valid, signatures[], revisions:
              [{index, signature, covered_by, changes: [{page, kind, bbox}]}], sha256, copy}"}
            404: {description: Unknown code}
        """
        def answer():
            doc = _sealed(code)
            return self.response(200, **report_json(services.explain_document(doc),
                                                    services.read_current(doc), doc))

        return self.answer(answer)

    @expose("", methods=["POST"])
    @expose("/", methods=["POST"])
    @large_body
    def by_upload(self):
        """Verdict for an uploaded PDF (at most SAOY_VERIFY_MAX_MB; rate-limited per address).
        ---
        post:
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
          responses:
            200: {description: "{verdict, summary {vi, en}, valid, signatures[], revisions:
              [{index, signature, covered_by, changes: [{page, kind, bbox}]}], sha256, copy}"}
            400: {description: No file}
            413: {description: Too large}
            429: {description: Too many verifications from this address}
        """
        def answer():
            data = _read_upload()
            sha = hashlib.sha256(data).hexdigest()
            return self.response(200, **report_json(services.explain_bytes(data), data,
                                                    services.document_by_sha(db.session, sha)))

        return self.answer(answer)


class SigningJobApi(BaseApi):
    """For the leader's signing agent: jobs to sign, signatures back, the certificate."""

    resource_name = "signing_job"
    scoped_model = ExternalSigningJob
    openapi_spec_tag = "Signing agent"
    allow_browser_login = True

    @expose("/", methods=["GET"])
    @protect()
    @permission_name("get")
    def pending(self):
        """Pending jobs of the logged-in leader.
        ---
        get:
          responses:
            200: {description: "{result: [{id, document_id, data_to_sign (base64 DER)}]}"}
        """
        jobs = services.pending_jobs(db.session, g.user)
        return self.response(200, result=[
            {"id": j.id, "document_id": j.document_id, "data_to_sign": j.signed_attrs,
             "mechanism": "SHA256_RSA_PKCS"} for j in jobs])

    @expose("/<int:pk>/signature", methods=["POST"])
    @protect()
    @permission_name("post")
    def signature(self, pk: int):
        """The token's signature over ``data_to_sign`` (base64).
        ---
        post:
          parameters:
          - in: path
            name: pk
            schema: {type: integer}
          responses:
            200: {description: The document is signed}
            404: {description: Not your job}
            409: {description: "The job was cancelled (its request was returned, cancelled
              or sent again), or its document no longer waits for this signature"}
            422: {description: The signature does not match}
        """
        value = params.json_object().get("signature", "")
        try:
            signature = base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            return self.response_400(message=_("The signature is not valid base64."))
        try:
            with atomic(db.session):
                doc = services.finish_external_signature(db.session, g.user, pk, signature)
        except NotFoundError:
            raise
        except DomainError as exc:  # refused: nothing of it is kept, but the refusal is
            with atomic(db.session):
                services.record_refused_signature(db.session, g.user, pk, exc.message)
            return self.response(exc.status, message=exc.message)
        return self.response(200, document_id=doc.id, stage=doc.stage.value)

    @expose("/certificate", methods=["POST"])
    @protect()
    @permission_name("post")
    def certificate(self):
        """Register the token's certificate (DER, base64) for the logged-in leader.
        ---
        post:
          responses:
            200: {description: Registered}
        """
        value = params.json_object().get("certificate", "")
        try:
            der = base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            return self.response_400(message=_("The certificate is not valid base64."))
        with atomic(db.session):
            services.register_agent_certificate(db.session, g.user, der)
        return self.response(200, message="ok")
