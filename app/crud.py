"""FAB's data interface with user-safe errors.

FAB flashes ``str(exception)`` when a database write fails, which would show SQL
to the user.  This interface logs the real error and raises one whose text is a
plain translated sentence.  Every view and API of SaoY uses it.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import jsonify, request
from flask_appbuilder.api import BaseApi
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.errors import DomainError

log = logging.getLogger(__name__)


class FriendlyDatabaseError(DomainError):
    """str() is a sentence for the user; the cause is in the log."""


class Datamodel(SQLAInterface):
    def _safely(self, operation, item, commit: bool):
        try:
            operation(item, commit)
        except (SQLAlchemyError, DatabaseException) as exc:
            log.warning("database write refused: %s", exc)
            self.session.rollback()
            if isinstance(exc, IntegrityError) or isinstance(exc.__cause__, IntegrityError):
                raise FriendlyDatabaseError(_(
                    "This record conflicts with existing data (a duplicate code or name, or "
                    "records that still depend on it).")) from None
            raise FriendlyDatabaseError(_("The record could not be saved. Please try again."))\
                from None

    def add(self, item, commit: bool = True) -> None:
        self._safely(super().add, item, commit)

    def edit(self, item, commit: bool = True) -> None:
        self._safely(super().edit, item, commit)

    def delete(self, item, commit: bool = True) -> None:
        self._safely(super().delete, item, commit)


class DomainErrorAnswers:
    """FAB's ``@safe`` turns every exception into a 500; a broken business rule
    (DomainError) is the client's 4xx with the rule's message, as JSON, instead."""

    def answer(self, call, *args):
        try:
            return call(*args)
        except DomainError as exc:
            return jsonify(message=exc.message, **exc.details), exc.status


class DomainErrorResponses(DomainErrorAnswers):
    """For ModelRestApi: its write endpoints answer broken rules with 4xx."""

    def post_headless(self):
        return self.answer(super().post_headless)

    def put_headless(self, pk):
        return self.answer(super().put_headless, pk)

    def delete_headless(self, pk):
        return self.answer(super().delete_headless, pk)


class ServiceApi(DomainErrorAnswers, BaseApi):
    """A BaseApi whose endpoints each call one service through ``answer``."""

    @staticmethod
    def json(status: int, payload: dict):
        """``BaseApi.response`` takes ``code`` as the status: our payloads may have a code."""
        return jsonify(payload), status


def query_date(name: str, default: dt.date | None = None) -> dt.date | None:
    """An ISO date from the query string; a clear 422 when it is not one."""
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise DomainError(_("The date %(value)s is not valid (use YYYY-MM-DD).",
                            value=raw)) from None
