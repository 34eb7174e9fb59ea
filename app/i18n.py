"""Jinja filters for Vietnamese display: dd/mm/yyyy, Vietnam time, đồng."""
from __future__ import annotations

import datetime as dt

from flask import Flask, has_request_context, request

from app.timeutil import VN_TZ, format_date, format_datetime


def format_number(value: int | float | None) -> str:
    """1234567 → "1.234.567" (Vietnamese thousands separator, decimal comma)."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{int(value):,}".replace(",", ".")


def format_money(amount: int | None) -> str:
    """200000 → "200.000 đ"."""
    if amount is None:
        return ""
    return format_number(amount) + " đ"


def format_instant(iso: str | None, as_written: bool = False) -> str:
    """An ISO timestamp → dd/mm/yyyy HH:MM:SS in Vietnam time (``as_written``: the wall
    clock as the signer wrote it, for software that labels Vietnam time as UTC)."""
    if not iso:
        return ""
    try:
        value = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if not as_written:
        value = value.astimezone(VN_TZ) if value.tzinfo else value
    return value.strftime("%d/%m/%Y %H:%M:%S")


def _api_aware(page_selector):
    """API clients keep no session: their language comes from Accept-Language
    (Vietnamese unless they prefer English); pages keep FAB's session choice."""

    def select():
        if (has_request_context() and request.path.startswith("/api/")
                and "_l_" not in request.args):
            return request.accept_languages.best_match(["vi", "en"], default="vi")
        return page_selector()

    return select


def _wtforms_translations():
    """WTForms' messages ("Not a valid integer value.") from our catalog: it ships no
    Vietnamese, so its strings are extracted into ours (translations/catalog.py)."""
    from flask_babel import get_translations

    return get_translations() if has_request_context() else None


def register(app: Flask) -> None:
    import flask_wtf.i18n

    flask_wtf.i18n._get_translations = _wtforms_translations
    babel = app.extensions["babel"]
    babel.locale_selector = _api_aware(babel.locale_selector)
    app.jinja_env.filters["vn_date"] = format_date
    app.jinja_env.filters["vn_datetime"] = format_datetime
    app.jinja_env.filters["vn_money"] = format_money
    app.jinja_env.filters["vn_instant"] = format_instant
    app.jinja_env.filters["vn_number"] = format_number
    from app.labels import label

    app.jinja_env.filters["label"] = label
