"""Users with an office, the security manager and the platform's roles.

Roles live in code (FAB_ROLES): the platform declares the base, modules add
fragments through their ModuleSpec.  The security manager seeds role rows when
the schema exists and never creates tables (Alembic owns the schema).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import current_app, g, has_request_context, request, session
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.filters import FilterInFunction
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    AuthDBView,
    ResetPasswordView,
    RoleModelView,
    UserDBModelView,
    UserGroupModelView,
)
from flask_appbuilder.widgets import ListWidget, ShowWidget
from flask_babel import lazy_gettext as _l
from flask_login import user_logged_in
from sqlalchemy import delete, inspect

from app import audit
from app.crud import Datamodel, ReadableViewMixin, ServiceFormViewMixin
from app.errors import NotFoundError
from app.params import as_id
from app.records import RecordService
from app.scope import ADMIN_ROLE, is_admin, role_names, scoped, staff_office_id
from app.scoping import OFFICE_SCOPE
from app.sessions import end_sessions_of
from app.timeutil import utcnow
from app.transactions import atomic
from app.users import LoginFailure, StaffUser

STAFF_ROLES = ("OfficeAdmin", "Officer", "Leader", "Clerk", "Supervisor")
CITIZEN_ROLE = "Citizen"
ALL_ROLES = (ADMIN_ROLE, *STAFF_ROLES, CITIZEN_ROLE)


def is_staff(user: Any) -> bool:
    """An administrator or anyone working in an office (not a citizen, not a visitor)."""
    return is_admin(user) or bool(role_names(user) & set(STAFF_ROLES))

#: What each role is called on the screens (the names stay in English in code and data).
ROLE_LABELS = {
    ADMIN_ROLE: _l("System administrator"), "OfficeAdmin": _l("Office administrator"),
    "Officer": _l("Intake officer"), "Leader": _l("Leader (signs)"),
    "Clerk": _l("Clerk (numbers and seals)"), "Supervisor": _l("Supervisor"),
    CITIZEN_ROLE: _l("Citizen"), "Public": _l("Visitor"),
}


def _show_role(role: Any) -> str:
    return str(ROLE_LABELS.get(role.name, role.name))


def _label_roles() -> None:
    from flask_appbuilder.security.sqla.models import Role

    from app.labels import shown_as

    shown_as(Role, _show_role)


_label_roles()

_SELF_SERVICE = [
    ["^StaffUserView$", "^(can_userinfo|resetmypassword|userinfoedit)$"],
    ["^UserInfoEditView$", "^can_this_form_(get|post)$"],
    ["^ResetMyPasswordView$", "^can_this_form_(get|post)$"],
]

#: The security part of FAB_ROLES (the administrator, everyone's own account); the
#: other parts and the modules merge their fragments into it (``ModuleSpec.roles``).
PLATFORM_ROLES: dict[str, list[list[str]]] = {
    ADMIN_ROLE: [["^.*$", "^.*$"]],
    **{role: list(_SELF_SERVICE) for role in (*STAFF_ROLES, CITIZEN_ROLE)},
    "Public": [],
}


def grantable_role_names() -> list[str]:
    """Roles the acting user may hand out: never Admin unless they are Admin."""
    user = getattr(g, "user", None)
    if is_admin(user):
        return list(ALL_ROLES)
    return [r for r in ALL_ROLES if r not in (ADMIN_ROLE, CITIZEN_ROLE)]


class StaffUserView(ServiceFormViewMixin, UserDBModelView):
    """Admin's user management (FAB's security menu), with the office column."""

    list_columns = ["first_name", "last_name", "username", "email", "office", "active", "roles"]
    search_columns = ["first_name", "last_name", "username", "email", "office", "active", "roles"]
    add_columns = [
        "first_name", "last_name", "username", "active", "email", "office", "roles",
        "password", "conf_password",
    ]
    edit_columns = ["first_name", "last_name", "username", "active", "email", "office", "roles"]
    show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "office", "roles", "login_count"]}),
        (_l("Personal Info"), {"fields": ["first_name", "last_name", "email"], "expanded": True}),
        (_l("Audit Info"), {"fields": ["last_login", "fail_login_count", "created_on",
                                       "changed_on"], "expanded": False}),
    ]
    user_show_fieldsets = [
        (_l("User info"), {"fields": ["username", "office", "roles"]}),
        (_l("Personal Info"), {"fields": ["first_name", "last_name", "email"], "expanded": True}),
    ]
    label_columns = {**UserDBModelView.label_columns, "office": _l("Office")}
    validators_columns = {}


class OfficeStaffView(StaffUserView):
    """An OfficeAdmin's user management: their office's staff only, never Admin.

    The office is not a form field: new users take the OfficeAdmin's office.
    """

    route_base = "/staff"
    base_filters = OFFICE_SCOPE
    list_columns = ["first_name", "last_name", "username", "email", "active", "roles"]
    search_columns = ["first_name", "last_name", "username", "email", "active", "roles"]
    add_columns = [
        "first_name", "last_name", "username", "active", "email", "roles",
        "password", "conf_password",
    ]
    edit_columns = ["first_name", "last_name", "username", "active", "email", "roles"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "roles": [["name", FilterInFunction, grantable_role_names]],
    }
    list_title = _l("Staff of my office")

    def _check_grants(self, item: Any) -> None:
        allowed = set(grantable_role_names())
        if not item.roles or any(role.name not in allowed for role in item.roles):
            raise PermissionError(_l("You cannot grant this role."))

    def pre_add(self, item: Any) -> None:
        self._check_grants(item)
        item.office_id = staff_office_id(g.user)
        super().pre_add(item)

    def pre_update(self, item: Any) -> None:
        self._check_grants(item)
        item.office_id = staff_office_id(g.user)
        super().pre_update(item)


class ScopedResetPasswordView(ResetPasswordView):
    """FAB's reset-password form takes any ``pk``: only users in scope, never an Admin."""

    def form_post(self, form):
        session = self.appbuilder.sm.session
        target = scoped(session, g.user, StaffUser).get(request.args.get("pk"))
        if target is None or (is_admin(target) and not is_admin(g.user)):
            raise NotFoundError()
        # Written by the commit of FAB's reset_password, with the new hash.
        audit.record(session, g.user, "user_password_reset", obj=target)
        return super().form_post(form)


CREDENTIALS_KEY = "_saoy_credentials"
CREDENTIALS_CLAIM = "cred"


def _credentials_stamp(user: Any) -> str:
    changed = getattr(user, "credentials_changed_at", None)
    return changed.isoformat() if changed else ""


def _stamp_session(_app, user, **_extra) -> None:
    session[CREDENTIALS_KEY] = _credentials_stamp(user)


class SaoyAuthDBView(AuthDBView):
    """FAB's login; logging out is a POST (a link or an image elsewhere cannot do it)."""

    @expose("/logout/", methods=["GET", "POST"])
    def logout(self):
        if request.method == "GET":
            return self.render_template("saoy/logout.html", appbuilder=self.appbuilder)
        return super().logout()


class RoleView(ReadableViewMixin, RoleModelView):
    """Roles are declared in code (FAB_ROLES) and written by ``saoy init``: here they are
    read, by their Vietnamese names, with who holds them."""

    list_widget, show_widget = ListWidget, ShowWidget
    base_permissions = ["can_list", "can_show"]
    list_columns = ["name"]
    show_columns = ["name", "user"]
    label_columns = {"name": _l("Role"), "user": _l("Users")}
    formatters_columns = {"name": lambda name: str(ROLE_LABELS.get(name, name))}


class GroupView(ReadableViewMixin, UserGroupModelView):
    label_columns = {"name": _l("Group name"), "label": _l("Label"),
                     "description": _l("Description"), "users": _l("Users"),
                     "roles": _l("Roles")}


class SaoySecurityManager(SecurityManager):
    user_model = StaffUser
    userdbmodelview = StaffUserView
    resetpasswordview = ScopedResetPasswordView
    rolemodelview = RoleView
    groupmodelview = GroupView

    authdbview = SaoyAuthDBView

    def __init__(self, appbuilder):
        super().__init__(appbuilder)
        # Staff changes (roles above all) are audited like every other record.
        self.userdbmodelview.datamodel = Datamodel(StaffUser, service=RecordService("user"))
        user_logged_in.connect(_stamp_session, current_app._get_current_object())

    def register_views(self) -> None:
        super().register_views()
        for view in self.appbuilder.baseviews:  # the REST login: the same per-address limit
            if type(view).__name__ == "SecurityApi":
                self.limiter.limit(lambda: current_app.config["AUTH_RATE_LIMIT"],
                                   methods=["POST"])(view.blueprint)

    # --- credentials: lockout per account and address, stamps that void old sessions ---

    def _locked(self, user: Any) -> bool:
        """Locked for this request's address (or the whole account by an administrator)."""
        if user is None:
            return False
        if _account_locked(user):
            return True
        failure = self.session.get(LoginFailure, (user.id, _address()))
        return bool(failure and failure.locked_until and failure.locked_until > utcnow())

    def _count_failure(self, user: Any) -> None:
        """One more wrong password from this address: past LOGIN_LOCK_AFTER, this address
        waits 1, 2, 4 … minutes (up to LOGIN_LOCK_MAX_MINUTES) before it may try again.
        The account's owner, elsewhere, is not locked out by a stranger."""
        config = current_app.config
        with atomic(self.session):
            key = (user.id, _address())
            failure = self.session.get(LoginFailure, key) or LoginFailure(
                user_id=key[0], address=key[1], failures=0)
            failure.failures += 1
            failure.last_at = utcnow()
            self.session.add(failure)
            over = failure.failures - config["LOGIN_LOCK_AFTER"]
            if over >= 0:
                minutes = min(2 ** over, config["LOGIN_LOCK_MAX_MINUTES"])
                failure.locked_until = utcnow() + dt.timedelta(minutes=minutes)
                audit.record(self.session, user, "user_locked", obj=user,
                             reason=f"{failure.failures} failed logins from {key[1]}, "
                                    f"{minutes} min")

    def _forget_failures(self, user: Any) -> None:
        with atomic(self.session):
            failure = self.session.get(LoginFailure, (user.id, _address()))
            if failure is not None:
                self.session.delete(failure)

    def reset_password(self, userid, password) -> None:
        """Every password change voids the sessions and API tokens made before it."""
        with atomic(self.session):
            user = self.get_user_by_id(userid)
            if user is not None:
                user.credentials_changed_at = utcnow()
                user.locked_until, user.fail_login_count = None, 0
                self.session.execute(delete(LoginFailure).where(LoginFailure.user_id == user.id))
                end_sessions_of(self.session, user.id)
            super().reset_password(userid, password)

    # FAB's own writes of users (sign-in statistics, profile, new users) are edges of
    # their own: each is one unit of work, like every other write (``app.transactions``).
    def add_user(self, *args, **kwargs):
        with atomic(self.session):
            return super().add_user(*args, **kwargs)

    def update_user(self, user, commit: bool = True):
        with atomic(self.session):
            return super().update_user(user, commit)

    def delete_user(self, user_or_id, commit: bool = True) -> bool:
        with atomic(self.session):
            return super().delete_user(user_or_id, commit)

    def add_register_user(self, *args, **kwargs):
        with atomic(self.session):
            return super().add_register_user(*args, **kwargs)

    def load_user(self, pk: Any):
        """A session user, only while its credentials are the ones it signed in with."""
        user = super().load_user(pk)
        if user is not None and session.get(CREDENTIALS_KEY, "") != _credentials_stamp(user):
            return None
        return user

    def create_jwt_manager(self, app):
        """Each API token carries the credentials it was issued under (``cred``): a token
        from before a password change is void, one from just after it is not (comparing
        whole-second issue times with the change's instant refused those too)."""
        manager = super().create_jwt_manager(app)

        @manager.additional_claims_loader
        def _credentials(identity):
            user = self.get_user_by_id(as_id(identity))
            return {CREDENTIALS_CLAIM: _credentials_stamp(user) if user is not None else ""}

        return manager

    def load_user_jwt(self, _jwt_header, jwt_data):
        user = self.get_user_by_id(as_id(jwt_data.get("sub")))
        if user is None or not user.is_active or _account_locked(user):
            return None
        if jwt_data.get(CREDENTIALS_CLAIM, "") != _credentials_stamp(user):
            return None  # issued under a password since changed
        g.user = user
        return user

    def create_db(self) -> None:
        """Seed role rows when Alembic has made the tables; never create tables."""
        engine = self.session.get_bind(mapper=None, clause=None)
        if "ab_role" not in inspect(engine).get_table_names():
            return
        for name in [*self.builtin_roles, self.auth_role_public]:
            if self.find_role(name) is None:
                self.add_role(name)

    def auth_user_db(self, username: str, password: str):
        """Citizens sign in with their identity number (staff with their user name).

        The one place that maps a login name to an account; an OpenID Connect
        provider (VNeID) would map its identity claim here the same way.
        """
        from app.citizens.services import by_identity

        citizen = by_identity(self.session, username) if username else None
        if citizen is not None:
            username = citizen.user.username
        user = self.find_user(username=username) if username else None
        if self._locked(user):
            return None  # the same answer as a wrong password: nothing to learn
        found = super().auth_user_db(username, password)
        if found is None and user is not None:
            self._count_failure(user)
        elif found is not None:
            self._forget_failures(found)
        return found

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        """Public access is declared in code like every role (no database rows)."""
        return any(
            re.match(view, view_name) and re.match(perm, permission_name)
            for view, perm in self.builtin_roles.get(self.auth_role_public, ())
        )


def _account_locked(user: Any) -> bool:
    return bool(user.locked_until and user.locked_until > utcnow())


def _address() -> str:
    """The client's address (nginx's X-Forwarded-For, read by ProxyFix when deployed)."""
    return (request.remote_addr or "-")[:64] if has_request_context() else "-"


def builtin_roles_config(specs) -> dict[str, list[list[str]]]:
    from app.modules import merge_roles

    return merge_roles(PLATFORM_ROLES, specs)



UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _origin(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def guard_session_api_calls() -> None:
    """A state-changing REST call that a browser authenticates with the session cookie
    needs the CSRF token (``X-CSRFToken``) and an ``Origin`` of this site: another site's
    page cannot make a signed-in leader sign.  Bearer tokens are never sent by a browser
    on its own, so they stay as they are."""
    from flask import current_app, jsonify
    from flask_babel import gettext as _
    from flask_login import current_user
    from flask_wtf.csrf import ValidationError, validate_csrf

    if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
        return None
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return None
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return None
    if not getattr(current_user, "is_authenticated", False):
        return None  # nothing ambient to abuse: the endpoint's own rules apply
    allowed = {_origin(request.host_url), _origin(current_app.config.get("BASE_URL"))}
    origin = _origin(request.headers.get("Origin") or request.headers.get("Referer"))
    try:
        if origin not in allowed:
            raise ValidationError("cross-site")
        validate_csrf(request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token"))
    except ValidationError:
        return jsonify(message=_("This request must come from SaoY's own pages (missing or "
                                 "wrong security token). Reload the page and try again.")), 403
    return None
