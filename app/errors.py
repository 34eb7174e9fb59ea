"""Friendly error pages in the user's language; never a stack trace or SQL text.

API paths get JSON ``{"message": ...}``; pages get a small template.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule refused the request; ``message`` is for the user (translated).

    Raised by services; answered with ``status`` (422 bad input, 409 wrong state)
    and the message, as JSON on the API and as a page or flash on the web.
    """

    status = 422

    def __init__(self, message: str, status: int | None = None, **details):
        super().__init__(message)
        self.message = str(message)
        if status is not None:
            self.status = status
        self.details = details

    def __reduce__(self):
        """Whole across a process boundary (the sandbox hands refusals back)."""
        return (_restore, (type(self), self.message, self.status, self.details))


def _restore(cls: type[DomainError], message: str, status: int, details: dict) -> DomainError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.message, error.status, error.details = message, status, details
    return error


class NotFoundError(DomainError):
    """Not there, or not in the user's offices: the same 404 either way (ids leak nothing)."""

    status = 404

    def __init__(self, message: str | None = None, **details):
        super().__init__(message or _("The page or record you asked for does not exist."),
                         **details)


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Please check what you entered."),
        403: _("You do not have permission to do this."),
        404: _("The page or record you asked for does not exist."),
        405: _("This action is not allowed here."),
        409: _("This record was changed by someone else. Reload and try again."),
        413: _("The file is too large."),
        422: _("The data you sent is not valid."),
        429: _("Too many attempts. Please wait a few minutes and try again."),
        500: _("Something went wrong on our side. The error has been logged."),
    }


def database_message() -> str:
    return _("The database is not answering right now. Nothing was changed; please try "
             "again in a moment.")


def storage_message() -> str:
    return _("The server cannot reach its file storage or a service it needs right now. "
             "Nothing was changed; please try again later.")


def _respond(code: int, message: str | None = None):
    text = message or _messages().get(code) or _messages()[500]
    if request.path.startswith("/api/"):
        return jsonify(message=text), code
    if not hasattr(g, "user"):  # errors raised before FAB's before_request (CSRF)
        g.user = current_user
    return (
        render_template(
            "saoy/error.html", code=code, message=text,
            appbuilder=current_app.appbuilder,
            base_template=current_app.appbuilder.base_template,
        ),
        code,
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        # Messages we raised ourselves (abort(409, description=...)) are user text.
        custom = exc.description if getattr(exc, "saoy_user_message", False) else None
        return _respond(code, custom)

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if request.path.startswith("/api/"):
            return jsonify(message=exc.message, **exc.details), exc.status
        return _respond(exc.status, exc.message)

    @app.errorhandler(PermissionError)
    def not_permitted(exc: PermissionError):
        """Rules like "your account belongs to no office": a 403 that says why.  An
        operating-system permission error (a read-only disk) is ours, not the user's:
        it is logged, and the answer names no path."""
        if exc.errno is not None or exc.filename is not None:
            log.error("storage refused on %s %s: %s", request.method, request.path, exc)
            return _respond(503, storage_message())
        return _respond(403, str(exc) or None)

    @app.errorhandler(OSError)
    def storage_failed(exc: OSError):
        log.error("storage failed on %s %s: %s", request.method, request.path, exc)
        return _respond(503, storage_message())

    @app.errorhandler(SQLAlchemyError)
    def database_failed(exc: SQLAlchemyError):
        """The database went away (restarted, connection killed): the unit of work rolled
        back, the pool reconnects on the next request (pre-ping).  A 503 that says so."""
        if not _is_outage(exc):
            log.exception("database error on %s %s", request.method, request.path)
            return _respond_safely(500)
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  str(exc).splitlines()[0][:300])
        return _respond_safely(503, database_message())

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        """A bug: logged, and the request's unit of work ended before the page is drawn
        (a write half done must not keep SQLite locked for every other writer)."""
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond_safely(500)


def _is_outage(exc: Exception) -> bool:
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _respond_safely(code: int, message: str | None = None):
    """The error page, after forgetting the failed transaction; if drawing it needs the
    database that is gone (the menu reads the user's roles), a plain page instead."""
    from app.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
        pass
    try:
        return _respond(code, message)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        text = message or _messages()[500]
        if request.path.startswith("/api/"):
            return jsonify(message=text), code
        return (f"<!doctype html><html lang=\"vi\"><meta charset=\"utf-8\"><title>SaoY</title>"
                f"<p>{escape(text)}</p></html>", code, {"Content-Type": "text/html; charset=utf-8"})
