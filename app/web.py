"""Who acts, for the web layer (views, APIs, FAB's filters): the request's signed-in
user, or the user a background job acts for (``acting_as``: an export written by the
worker sees exactly what its owner's list showed, without anyone signing in).
Services never read this: they take the acting user as an argument."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from flask import g, has_app_context

_ACTING: contextvars.ContextVar[Any] = contextvars.ContextVar("saoy_acting_user", default=None)


def current_user() -> Any:
    acting = _ACTING.get()
    if acting is not None:
        return acting
    return getattr(g, "user", None) if has_app_context() else None


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Within the block, the web layer's scope and permissions are ``user``'s."""
    token = _ACTING.set(user)
    try:
        yield
    finally:
        _ACTING.reset(token)


def checks_csrf_itself(func):
    """Marks an upload view that checks the CSRF token itself, after its body limit is set
    (the global check would parse the whole body first); ``create_app`` exempts it."""
    func.saoy_own_csrf = True
    return func


def authorised_by_token(func):
    """Marks a door authorised by a one-time token in its address, not by a session (the
    signing plugin's upload): no cookie, so nothing for a CSRF token to protect."""
    func.saoy_own_csrf = True
    return func


def identity_lookups() -> Any:
    """What one staff member may look up about citizens by identity number (name, phone
    tail, a counter code sent): IDENTITY_LOOKUP_RATE_LIMIT per user, then 429.  A context
    manager of Flask-Limiter's, shared by every door that looks someone up."""
    from flask import current_app

    return current_app.appbuilder.sm.limiter.shared_limit(
        lambda: current_app.config["IDENTITY_LOOKUP_RATE_LIMIT"], scope="identity_lookups",
        key_func=lambda: f"user:{getattr(current_user(), 'id', None)}")
