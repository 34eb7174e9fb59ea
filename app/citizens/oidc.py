"""Sign-in through a national identity provider (OpenID Connect, authorisation code +
PKCE: the shape VNeID and the national public-service portal use).

The provider's identity-number claim maps to the citizen account, which is then
verified: copies can reach it.  Configured with SAOY_OIDC_*; absent, nothing shows.
"""
from __future__ import annotations

import logging

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose
from flask_babel import gettext as _
from flask_login import login_user

from app.citizens import services
from app.extensions import db
from app.security import CITIZEN_ROLE
from app.transactions import atomic

log = logging.getLogger(__name__)
CLIENT = "national_id"


def _client():
    return current_app.extensions["saoy_oauth"].create_client(CLIENT)


def configured(app=None) -> bool:
    config = (app or current_app).config
    return bool(config.get("OIDC_ISSUER") and config.get("OIDC_CLIENT_ID"))


class ProviderLoginView(BaseView):
    route_base = "/login/provider"
    default_view = "start"

    @expose("/")
    def start(self):
        if not configured():
            return redirect(url_for(f"{self.appbuilder.sm.auth_view.endpoint}.login"))
        return _client().authorize_redirect(
            url_for(".callback", _external=True))

    @expose("/callback")
    def callback(self):
        login_page = url_for(f"{self.appbuilder.sm.auth_view.endpoint}.login")
        if not configured():
            return redirect(login_page)
        client = _client()
        try:
            token = client.authorize_access_token()
            claims = dict(token.get("userinfo") or {})  # the ID token's claims
            if current_app.config["OIDC_IDENTITY_CLAIM"] not in claims:
                claims.update(client.userinfo(token=token))
        except (OAuthError, ValueError, KeyError) as exc:
            log.warning("identity provider sign-in failed: %r", exc)
            flash(_("Sign-in with %(name)s did not succeed. Please try again.",
                    name=current_app.config["OIDC_NAME"]), "danger")
            return redirect(login_page)
        role = self.appbuilder.sm.find_role(CITIZEN_ROLE)
        try:
            with atomic(db.session):
                citizen = services.sign_in_from_provider(db.session, claims, role)
        except services.CitizenError as exc:
            flash(exc.message, "danger")
            return redirect(login_page)
        login_user(citizen.user, remember=False)
        self.appbuilder.sm.update_user_auth_stat(citizen.user, True)
        return redirect(self.appbuilder.get_url_for_index)


def register(app, appbuilder) -> None:
    app.jinja_env.globals["saoy_identity_provider"] = (
        lambda: current_app.config["OIDC_NAME"] if configured() else None)
    appbuilder.add_view_no_menu(ProviderLoginView)
    if not configured(app):
        return
    oauth = app.extensions["saoy_oauth"] = OAuth(app)  # one registry per app
    issuer = app.config["OIDC_ISSUER"].rstrip("/")
    oauth.register(
        CLIENT, client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config.get("OIDC_CLIENT_SECRET"),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": app.config["OIDC_SCOPE"], "code_challenge_method": "S256"})
