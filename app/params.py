"""One way to read what a client sends: query and body parameters, typed and bounded.

Every door parses its input through these functions, so a value of the wrong type, a
number out of range, a date in year 1 or 9999, a JSON array where an object is due, or
a 50 MB note is a clear 4xx in the user's language — never a 500 from deep inside.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Request, request
from flask_babel import gettext as _
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, String, Text, inspect

from app.errors import DomainError

MAX_ID = 2**31 - 1  # ids and counts: 32-bit integers on every database
MAX_ID_DIGITS = len(str(MAX_ID))
MAX_NUMBER_DIGITS = 12  # a whole number typed anywhere (fees included) fits in 64 bits
MAX_TIME_TEXT = 40  # an ISO date-time with its zone is about 32 characters
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_TEXT = 10_000  # a Text column: notes, reasons, templates
SMALL_BODY = 1024 * 1024  # JSON and forms without a file


def large_body(func):
    """Marks a view that takes a file: its body may reach the upload limit (every other
    request body is refused past ``SMALL_BODY`` before anything parses it)."""
    func.saoy_large_body = True
    return func


def bound_request_body() -> None:
    """Before every other hook (the CSRF check parses forms): small bodies by default."""
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "saoy_large_body", False):
        request.max_content_length = SMALL_BODY


class ParamError(DomainError):
    """A parameter has the wrong type or is out of range; the message names it."""


def _digits(value: Any) -> str | None:
    """ASCII digits only ("１２" and "10³⁰" are digits to str.isdigit, not to us)."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(
        value, bool) else None
    return text if text and text.isascii() and text.isdigit() else None


def as_id(value: Any) -> int | None:
    """A primary key from a URL, form or JSON value; None when it cannot be one."""
    digits = _digits(value)
    if digits is None or len(digits) > MAX_ID_DIGITS:
        return None
    number = int(digits)
    return number if 0 < number <= MAX_ID else None


def ids(value: Any, name: str, *, max_count: int) -> list[int]:
    """Distinct primary keys, in order, from a JSON list or text "1,2,3"; at most
    ``max_count`` of them."""
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ParamError(_("%(name)s must be a list of record numbers.", name=name))
    found = [as_id(v) for v in items if not (isinstance(v, str) and not v.strip())]
    if None in found:
        raise ParamError(_("%(name)s must be a list of record numbers.", name=name))
    if len(found) > max_count:
        raise ParamError(_("At most %(n)s records at a time.", n=max_count))
    return list(dict.fromkeys(found))


def integer(value: Any, name: str, *, low: int = 0, high: int = MAX_ID,
            default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    negative = isinstance(value, str) and value.strip().startswith("-")
    digits = _digits(value.strip()[1:] if negative else value)
    number = int(digits) * (-1 if negative else 1) \
        if digits and len(digits) <= MAX_NUMBER_DIGITS else None
    if number is None or not low <= number <= high:
        raise ParamError(_("%(name)s must be a whole number from %(low)s to %(high)s.",
                           name=name, low=low, high=high))
    return number


def text(value: Any, name: str, *, max_length: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ParamError(_("%(name)s is required.", name=name))
        return None
    if not isinstance(value, str):
        raise ParamError(_("%(name)s must be text.", name=name))
    value = value.strip()
    if len(value) > max_length:
        raise ParamError(_("%(name)s is longer than %(n)s characters.", name=name,
                           n=max_length))
    return value


def numbers(value: Any, name: str, *, count: int, low: float, high: float
            ) -> tuple[float, ...] | None:
    """``count`` finite numbers in [low, high] (a list, or text "1,2,3,4")."""
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",") if v.strip()]
    try:
        items = tuple(float(v) for v in value if not isinstance(v, bool))
    except (TypeError, ValueError):
        items = ()
    if len(items) != count or not all(math.isfinite(v) and low <= v <= high for v in items):
        raise ParamError(_("%(name)s must be %(count)s numbers from %(low)s to %(high)s.",
                           name=name, count=count, low=low, high=high))
    return items


def date(value: Any, name: str, default: dt.date | None = None) -> dt.date | None:
    """dd/mm/yyyy as people write it, or YYYY-MM-DD as forms and APIs send it."""
    if value in (None, ""):
        return default
    day = None
    if isinstance(value, str) and len(value) <= len("dd/mm/yyyy"):
        for form in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                day = dt.datetime.strptime(value.strip(), form).date()
                break
            except ValueError:
                continue
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ParamError(_("The date %(value)s is not valid (use dd/mm/yyyy, years %(first)s "
                           "to %(last)s).", value=str(value)[:40], first=FIRST_YEAR,
                           last=LAST_YEAR))
    return day


def moment(value: Any, name: str) -> dt.datetime:
    """An ISO time (a datetime passes through) within the sane years."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")) \
                if isinstance(value, str) and len(value) < MAX_TIME_TEXT else None
        except ValueError:
            parsed = None
    if parsed is None or not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ParamError(_("%(name)s is not a valid time.", name=name))
    return parsed


def query_int(name: str, **bounds: Any) -> int | None:
    return integer(request.args.get(name), name, **bounds)


def query_date(name: str, default: dt.date | None = None) -> dt.date | None:
    return date(request.args.get(name), name, default)


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object (an empty body is ``{}``)."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ParamError(_("Send a JSON object."), 400)
    return body


def _fits_column(column_type: Any, value: Any) -> bool:
    """Whether a JSON value may go into a column of this type (checked before FAB's schema
    or the database sees it)."""
    if isinstance(column_type, Boolean):
        return isinstance(value, bool)
    if isinstance(column_type, Integer):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ID
    if isinstance(column_type, (Date, DateTime)):
        return isinstance(value, str) and len(value) <= MAX_TIME_TEXT
    if isinstance(column_type, (String, Text)):
        limit = getattr(column_type, "length", None) or MAX_TEXT
        return isinstance(value, str) and len(value) <= limit
    return isinstance(value, (str, int, float, bool))


def _fits_relation(relation: Any, value: Any) -> bool:
    if relation.uselist:
        return isinstance(value, list) and all(as_id(v) for v in value)
    return as_id(value) is not None


def check_record(model: Any, columns: Iterable[str], body: Mapping[str, Any]) -> None:
    """A generic REST body against the model's own columns: types, lengths, id ranges —
    before FAB's schema or the database sees it."""
    mapper = inspect(model)
    for name in columns:
        if body.get(name) is None:
            continue
        if name in mapper.relationships:
            ok = _fits_relation(mapper.relationships[name], body[name])
        elif name in mapper.columns:
            ok = _fits_column(mapper.columns[name].type, body[name])
        else:
            continue
        if not ok:
            raise ParamError(_("The value of %(name)s is not valid.", name=name))


def check_values(item: Any) -> None:
    """A record from any form or API, before the database sees it: text that fits its
    column and holds no control character, dates within the years a certification can
    name, whole numbers within their column."""
    mapper = inspect(type(item))
    for column in mapper.columns:
        value = getattr(item, column.key, None)
        if isinstance(value, str):
            limit = column.type.length if isinstance(column.type, String) and \
                column.type.length else MAX_TEXT
            if len(value) > limit:
                raise ParamError(_("%(name)s is longer than %(n)s characters.",
                                   name=column.key, n=limit))
            _refuse_control_characters(value, column.key)
        elif isinstance(value, (dt.date, dt.datetime)) and \
                not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ParamError(_("%(name)s must be a date between %(first)s and %(last)s.",
                               name=column.key, first=FIRST_YEAR, last=LAST_YEAR))
        elif isinstance(value, int) and not isinstance(value, bool) and isinstance(
                column.type, Integer) and abs(value) > _integer_limit(column.type):
            raise ParamError(_("The value of %(name)s is not valid.", name=column.key))


def _integer_limit(column_type: Any) -> int:
    return 2**63 - 1 if isinstance(column_type, BigInteger) else MAX_ID


# --- text at the door ----------------------------------------------------------------------

#: C0 controls but tab, newline and carriage return; DEL; C1 controls; lone surrogates
#: (a JSON "\ud800" is valid JSON and no valid text); the two non-characters U+FFFE/FFFF.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
MAX_JSON_DEPTH = 32  # SaoY's bodies nest two or three levels


def _refuse_control_characters(value: str, name: str) -> None:
    if CONTROL_CHARACTERS.search(value):
        raise ParamError(_("%(name)s contains characters that are not text (control "
                           "characters). Remove them and try again.", name=name))


def check_request_text() -> None:
    """Every query and JSON text of a request, refused at the door when it holds a
    control character (a NUL stored once broke every export of its list) or when its JSON
    is not text or nests absurdly.  Forms are checked as they are parsed (``TextRequest``),
    so an upload's form is read once, after its own size limit."""
    check_form_text(request.args)
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            raise ParamError(_("The JSON body nests too deeply."), 400) from None
        _check_json(body, 0)


class TextRequest(Request):
    """Flask's request whose form fields are checked for control characters when the
    body is parsed, wherever that happens (the CSRF hook, FAB's forms, an upload view)."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        check_form_text(self.form)


def check_form_text(values: Any) -> None:
    for name, value in values.items(multi=True):
        _refuse_control_characters(name, "?")
        _refuse_control_characters(value, name)


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ParamError(_("The JSON body nests too deeply."), 400)
    if isinstance(value, str):
        _refuse_control_characters(value, "JSON")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_control_characters(key, "JSON")
            _check_json(item, depth + 1)


#: Rows a list API answers per page.
API_PAGE_SIZE = 100


def query_page() -> int:
    """``?page=`` of a list API: 0 (the first) when absent."""
    return integer(request.args.get("page"), "page", low=0, high=100_000, default=0)


def page_of(session: Any, stmt: Any, page: int) -> list[Any]:
    """One page of a list API's statement (already scoped and ordered)."""
    return list(session.scalars(stmt.offset(page * API_PAGE_SIZE).limit(API_PAGE_SIZE)))
