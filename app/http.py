"""HTTP hardening shared by every door: security headers, no server banner, and FAB's
generic action routes answering unknown action names with 404 (FAB itself fails on
them with a 500); and the server's own time of each answer and of its pieces
(``Server-Timing``, ``app.timing``), for monitoring and the benchmarks."""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from flask_babel import gettext as _

from app import timing
from app.errors import DomainError, NotFoundError

#: FAB's templates carry inline scripts and styles; everything else comes from here —
#: and the pages may talk to the leader's signing plugin on the leader's own computer.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
       "connect-src 'self' {signer}; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")


def content_security_policy() -> str:
    return CSP.format(signer=current_app.config.get("SIGNER_URL") or "")


def _view(blueprint: str):
    return next((v for v in current_app.appbuilder.baseviews
                 if getattr(getattr(v, "blueprint", None), "name", None) == blueprint), None)


def check_generic_doors() -> None:
    """What FAB's generic routes take from the URL, checked before FAB reads it: an
    unknown action name is a 404, a ``q`` that is not a Rison object a 400."""
    from flask_appbuilder.api import ModelRestApi
    from flask_appbuilder.baseviews import BaseCRUDView

    endpoint = request.endpoint or ""
    blueprint, _dot, function = endpoint.rpartition(".")
    view = _view(blueprint)
    if function == "download" and isinstance(view, BaseCRUDView):
        raise NotFoundError()  # FAB's file-column downloads: SaoY's files go by hash only
    if function == "chart" and (request.view_args or {}).get("group_by") not in \
            [str(c) for c in getattr(view, "group_by_columns", None) or []]:
        raise NotFoundError()
    if function in ("action", "action_post"):
        name = (request.view_args or {}).get("name") if function == "action" else \
            request.form.get("action")
        if view is None or name not in (getattr(view, "actions", None) or {}):
            raise NotFoundError()
    elif "q" in request.args and isinstance(view, ModelRestApi):
        import prison

        try:
            query = prison.loads(request.args["q"])
        except Exception:  # noqa: BLE001 - prison raises plain exceptions on bad input
            query = None
        if not isinstance(query, dict):
            raise DomainError(_("The q parameter must be a Rison object, e.g. "
                                "(page:0,page_size:25)."), 400)


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")  # the request page frames its PDF
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers["Server"] = "SaoY"  # set here, the server adds no banner of its own
    timing_header = timing.header(pieces=_shows_pieces())
    if timing_header:  # until the answer is ready (a stream's body comes after)
        headers["Server-Timing"] = timing_header
    return response


def _shows_pieces() -> bool:
    """Server-Timing's pieces for signed-in staff where the setting is on. ``g.user`` is
    FAB's: the session's user, or the bearer token's once the API door checked it."""
    from app.security import is_staff

    if not current_app.config.get("SERVER_TIMING_PIECES"):
        return False
    user = g.get("user")
    return bool(getattr(user, "is_authenticated", False)) and is_staff(user)


def register(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, timing.start_clock)
    app.before_request(check_generic_doors)
    app.after_request(security_headers)
