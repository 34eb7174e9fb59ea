"""Sessions kept by the server, shared by every server process: the browser holds only a
random key.  Logging out deletes the session (a cookie copied before is worth nothing),
a password change deletes every session of that user, and signing in starts a new one
(a key planted before sign-in is worth nothing either).

The row is keyed by the SHA-256 of the cookie: whoever reads the table cannot become
anyone.  Reads and writes go through the engine, outside the request's unit of work: the
session is the request's envelope, not part of what it changes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from flask_appbuilder import Model
from sqlalchemy import DateTime, Integer, String, Text, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.datastructures import CallbackDict

from app.extensions import db
from app.timeutil import utcnow

#: An open session is written back at most this often when nothing in it changed.
TOUCH_EVERY = dt.timedelta(minutes=5)
KEY_LENGTH = 43  # secrets.token_urlsafe(32)


class ServerSession(Model):
    __tablename__ = "auth_session"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)


class KeptSession(CallbackDict, SessionMixin):
    """What a request sees as ``flask.session``; ``rotate()`` gives it a new key."""

    def __init__(self, initial: dict | None = None, key: str | None = None,
                 expires_at: dt.datetime | None = None):
        def on_update(session: KeptSession) -> None:
            session.modified = True

        super().__init__(initial, on_update)
        self.key, self.expires_at = key, expires_at
        self.modified = self.rotated = False

    def rotate(self) -> None:
        """Sign-in and sign-out: the old key dies with the old session."""
        self.rotated = True
        self.modified = True


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DatabaseSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    def open_session(self, app: Flask, request: Request) -> KeptSession:
        key = request.cookies.get(self.get_cookie_name(app))
        static = request.path.startswith(app.static_url_path or "/static")
        if not key or len(key) != KEY_LENGTH or static:  # static files need no session
            return KeptSession()
        with db.engine.connect() as connection:
            row = connection.execute(
                select(ServerSession.data, ServerSession.expires_at)
                .where(ServerSession.key_hash == _hash(key))).first()
        if row is None or row.expires_at <= utcnow():
            return KeptSession()
        return KeptSession(self.serializer.loads(row.data), key, row.expires_at)

    def save_session(self, app: Flask, session: KeptSession, response: Response) -> None:
        name, domain, path = (self.get_cookie_name(app), self.get_cookie_domain(app),
                              self.get_cookie_path(app))
        if session.key and (session.rotated or not session):
            _delete(_hash(session.key))
            session.key = None
        if not session:
            if session.modified or session.rotated:
                response.delete_cookie(name, domain=domain, path=path)
            return
        now = utcnow()
        expires = now + app.permanent_session_lifetime
        data = self.serializer.dumps(dict(session))
        user_id = _user_id(session)
        if session.key is None:
            session.key = secrets.token_urlsafe(32)  # KEY_LENGTH characters
            with db.engine.begin() as connection:
                connection.execute(ServerSession.__table__.insert().values(
                    key_hash=_hash(session.key), user_id=user_id, data=data, created_at=now,
                    expires_at=expires))
        elif session.modified or session.expires_at - now < \
                app.permanent_session_lifetime - TOUCH_EVERY:
            with db.engine.begin() as connection:
                changed = connection.execute(
                    update(ServerSession).where(ServerSession.key_hash == _hash(session.key))
                    .values(data=data, user_id=user_id, expires_at=expires)).rowcount
            if not changed:  # revoked while this request ran: revocation wins
                response.delete_cookie(name, domain=domain, path=path)
                return
        else:
            return  # nothing to write, nothing to set
        response.set_cookie(
            name, session.key, expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app), domain=domain, path=path,
            secure=self.get_cookie_secure(app), samesite=self.get_cookie_samesite(app))


def _user_id(session: KeptSession) -> int | None:
    value = session.get("_user_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _delete(key_hash: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(delete(ServerSession).where(ServerSession.key_hash == key_hash))


def end_sessions_of(session: Session, user_id: int) -> None:
    """Every session of the user (a password change, a disabled account): part of the
    caller's unit of work."""
    session.execute(delete(ServerSession).where(ServerSession.user_id == user_id))


def purge_expired() -> int:
    """The job: sessions past their time are deleted (they open nothing already), and
    wrong-password counts a day old with no lock running."""
    from app.users import LoginFailure

    now = utcnow()
    with db.engine.begin() as connection:
        connection.execute(delete(LoginFailure).where(
            LoginFailure.last_at < now - dt.timedelta(days=1),
            (LoginFailure.locked_until.is_(None)) | (LoginFailure.locked_until < now)))
        return connection.execute(
            delete(ServerSession).where(ServerSession.expires_at <= now)).rowcount


def rotate_current(*_args: Any, **_kwargs: Any) -> None:
    """Flask-Login's signals: a new key at sign-in and sign-out."""
    from flask import session

    if isinstance(session, KeptSession):
        session.rotate()


def register(app: Flask) -> None:
    from flask_login import user_logged_in, user_logged_out

    app.session_interface = DatabaseSessionInterface()
    user_logged_in.connect(rotate_current, app)
    user_logged_out.connect(_clear_on_logout, app)


def _clear_on_logout(*_args: Any, **_kwargs: Any) -> None:
    from flask import session

    session.clear()
    rotate_current()
