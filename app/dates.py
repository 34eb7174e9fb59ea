"""Dates typed the Vietnamese way on every form: dd/mm/yyyy in a text box (digits on a
phone's keypad), parsed and checked on the server, with a calendar whose month and day
names come from the page's language (Babel) — FAB's own picker is English and writes
yyyy-mm-dd, and typing 05/12/2026 into it became 11-06-18.

``ReadableViewMixin`` gives every date column of every FAB form this field; our own
forms use ``parse_date`` and ``date_input`` alike.
"""
from __future__ import annotations

import datetime as dt
import json

from babel.dates import get_day_names, get_month_names
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import DateField
from wtforms.widgets import html_params

#: What is accepted: the Vietnamese way first (shown), ISO too (what APIs and old links send).
FORMATS = ("%d/%m/%Y", "%Y-%m-%d")
PLACEHOLDER = _l("dd/mm/yyyy")


def parse_date(text: str | None) -> dt.date | None:
    """``05/12/2026`` (or ``5/12/2026``, or ISO) → a date; None when blank; ValueError with
    a sentence for the user otherwise."""
    text = (text or "").strip()
    if not text:
        return None
    for pattern in FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(_("Type the date as dd/mm/yyyy, for example 05/12/2026."))


def calendar_names() -> str:
    """The calendar's words in the page's language, for the date picker (JSON)."""
    locale = get_locale() or "vi"
    days = get_day_names("wide", locale=locale)  # 0 = Monday
    short = get_day_names("short", locale=locale)
    narrow = get_day_names("abbreviated", locale=locale)
    months = get_month_names("wide", locale=locale)
    months_short = get_month_names("abbreviated", locale=locale)
    order = [6, 0, 1, 2, 3, 4, 5]  # the picker counts from Sunday
    return json.dumps({
        "days": [days[i] for i in order], "daysShort": [short[i] for i in order],
        "daysMin": [narrow[i] for i in order],
        "months": [months[i][:1].upper() + months[i][1:] for i in range(1, 13)],
        "monthsShort": [months_short[i] for i in range(1, 13)],
        "today": _("Today"), "clear": _("Clear"), "format": "dd/mm/yyyy", "weekStart": 1,
    }, ensure_ascii=False)


class DateInput:
    """A text box for dd/mm/yyyy with the calendar beside it (saoy/forms.js)."""

    def __call__(self, field, **kwargs) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("class", "form-control")
        params = html_params(type="text", name=field.name, value=field._value(),
                             inputmode="numeric", autocomplete="off",
                             placeholder=str(PLACEHOLDER), data_calendar=calendar_names(),
                             **kwargs)
        return Markup(f'<div class="input-group saoy-date"><input {params}>'
                      '<span class="input-group-addon" aria-hidden="true">'
                      '<i class="fa fa-calendar"></i></span></div>')


class VietnameseDateField(DateField):
    """A date form field that reads and shows dd/mm/yyyy and says how to type it."""

    widget = DateInput()

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("format", list(FORMATS))
        super().__init__(label, validators, **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        try:
            self.data = parse_date(" ".join(valuelist))
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None
