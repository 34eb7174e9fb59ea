"""``/api/v1/verify``: the public verdict for a code or an uploaded PDF; and the
endpoints of the leader's own signer (jobs to sign, signatures back)."""
from __future__ import annotations

import base64
import hashlib

from flask import Response, g, request
from flask_appbuilder import expose
from flask_appbuilder.api import BaseApi, permission_name, protect
from flask_babel import gettext as _

from app import params
from app.crud import DomainErrorAnswers
from app.errors import DomainError
from app.extensions import db
from app.params import large_body
from app.transactions import atomic
from modules.signing import services
from modules.signing.views import (
    _read_upload,
    _sealed,
    copy_report,
    printed_copy,
    report_file,
    report_json,
)


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
            return self.response(200, **copy_report(doc))

        return self.answer(answer)

    @expose("/<code>/report", methods=["GET"])
    def report(self, code: str):
        """The validation report of a copy, to take away.
        ---
        get:
          parameters:
          - in: path
            name: code
            schema: {type: string}
          - in: query
            name: format
            schema: {type: string, enum: [pdf, xml]}
          responses:
            200: {description: "PDF (Vietnamese and English) or XML in the shape of ETSI TS
              119 102-2 (modules/signing/verification/validation-report.xsd)"}
            404: {description: Unknown code}
            422: {description: Neither pdf nor xml}
        """
        def answer():
            doc = _sealed(code)
            result = copy_report(doc)
            data, media, name = report_file(result, request.args.get("format", "pdf"))
            return Response(data, mimetype=media, headers={
                "Content-Disposition": f"attachment; filename={name}"})

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


    @expose("/printout", methods=["POST"])
    def by_printout(self):
        """Verdict for a paper printout: the number, date and access code printed on it.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [number, date, access_code]
                  properties:
                    number: {type: string, maxLength: 32}
                    date: {type: string, description: "dd/mm/yyyy or YYYY-MM-DD"}
                    access_code: {type: string, maxLength: 32}
          responses:
            200: {description: "the same answer as for the copy's code, its register entry
              in ``copy``"}
            404: {description: No copy has this number, date and access code}
            422: {description: A value is missing or malformed}
            429: {description: Too many verifications from this address}
        """
        def answer():
            body = request.get_json(silent=True)
            doc = printed_copy(body if isinstance(body, dict) else {})
            return self.response(200, **copy_report(doc))

        return self.answer(answer)


class LeaderKeyApi(BaseApi):
    """The leader's plugin tells SaoY the token's certificate (``GetCertInfo``): it is
    registered for that leader and signs nothing until the system administrator approves
    it.  The private key never leaves the token."""

    resource_name = "leader_key"
    openapi_spec_tag = "Signing plugin"
    allow_browser_login = True

    @expose("/certificate", methods=["POST"])
    @protect()
    @permission_name("post")
    def certificate(self):
        """Announce the token's certificate (DER, base64) for the signed-in leader.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {certificate: {type: string}}}
          responses:
            200: {description: "Registered, waiting for the administrator's approval"}
            400: {description: Not base64}
            409: {description: The certificate is registered for someone else}
        """
        value = params.json_object().get("certificate", "")
        try:
            der = base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            return self.response_400(message=_("The certificate is not valid base64."))
        try:
            with atomic(db.session):
                key = services.register_agent_certificate(db.session, g.user, der)
        except DomainError as exc:
            return self.response(exc.status, message=exc.message)
        return self.response(200, id=key.id, active=key.active, fingerprint=key.fingerprint)
