"""Citizen self-registration: the portal page and ``POST /api/v1/citizen/`` (both public)."""
from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.citizens import services
from app.crud import ServiceApi
from app.extensions import db
from app.security import CITIZEN_ROLE
from app.transactions import atomic

FIELDS = ("full_name", "identity_number", "phone", "email", "password")


def _registration(values) -> services.Registration:
    return services.Registration(**{f: str(values.get(f) or "") for f in FIELDS})


def _citizen_role(appbuilder):
    return appbuilder.sm.find_role(CITIZEN_ROLE)


class CitizenRegisterView(BaseView):
    """Public sign-up page; the login name afterwards is the identity number."""

    route_base = "/citizen"
    default_view = "register"

    @expose("/register", methods=["GET", "POST"])
    def register(self):
        values, errors = {}, {}
        if request.method == "POST":
            values = request.form.to_dict()
            if values.get("password") != values.get("password_again"):
                errors["password_again"] = _("The two passwords are not the same.")
            else:
                try:
                    with atomic(db.session):
                        services.register_citizen(db.session, _registration(values),
                                                  _citizen_role(self.appbuilder))
                except services.CitizenError as exc:
                    errors = exc.details.get("errors") or {"full_name": exc.message}
                else:
                    flash(REGISTERED, "success")  # the same words for an existing account
                    return redirect(url_for(f"{self.appbuilder.sm.auth_view.endpoint}.login"))
        return self.render_template("saoy/register.html", values=values, errors=errors,
                                    fields=LABELS), 422 if errors else 200


REGISTERED = _l("Registration received. If the account is new, it is ready: sign in with "
                "your identity number. It receives certified copies once your identity is "
                "verified at the counter or through the national identity provider.")

LABELS = {
    "full_name": _l("Full name"), "identity_number": _l("Identity number (CCCD / CMND / MST)"),
    "phone": _l("Mobile number"), "email": _l("E-mail"), "password": _l("Password"),
    "password_again": _l("Password again"),
}


class CitizenApi(ServiceApi):
    resource_name = "citizen"
    openapi_spec_tag = "Citizens"

    @expose("/", methods=["POST"])
    def register(self):
        """Register a citizen account (public).  Log in afterwards through
        ``/api/v1/security/login`` with the identity number as username.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [full_name, identity_number, phone, password]
                  properties:
                    full_name: {type: string}
                    identity_number: {type: string, description: "CCCD (12), CMND (9), MST"}
                    phone: {type: string, description: "0912345678 or +84912345678"}
                    email: {type: string}
                    password: {type: string, minLength: 8}
          responses:
            202: {description: "Accepted: {message}; the same answer whether or not the
              identity number or e-mail already had an account"}
            422: {description: "Invalid data: {message, errors: {field: message}}"}
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=_("Send the registration as a JSON object."))

        def register():
            with atomic(db.session):
                services.register_citizen(db.session, _registration(body),
                                          _citizen_role(self.appbuilder))
            return self.json(202, {"message": str(REGISTERED)})  # new or not: same answer

        return self.answer(register)


def register(appbuilder) -> None:
    from app.citizens import oidc

    appbuilder.add_view_no_menu(CitizenRegisterView)
    appbuilder.add_api(CitizenApi)
    oidc.register(current_app._get_current_object(), appbuilder)
