"""Labels for every coded value a person reads — the enum members of the models — in one
registry, so lists, filters, exports and charts show "Chờ ký", never ``awaiting_signature``.

A model module registers its enum's labels once (``labelled({...})``); everything that
shows a value asks ``label(value)``.
"""
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _

from app.timeutil import format_date, format_datetime

_REGISTRY: dict[type[enum.Enum], Mapping[enum.Enum, Any]] = {}
_CODES: dict[str, Any] = {}  # stored codes (audit states, event names, message kinds)
_SHOWN: dict[type, Callable[[Any], str]] = {}


def labelled(labels: Mapping[enum.Enum, Any]) -> Mapping[enum.Enum, Any]:
    """Register the (lazy, translated) labels of one enum; returns them."""
    enum_class = type(next(iter(labels)))
    missing = [member for member in enum_class if member not in labels]
    if missing:
        raise ValueError(f"{enum_class.__name__}: no label for {missing}")
    _REGISTRY[enum_class] = labels
    for member, text in labels.items():
        _CODES.setdefault(member.value, text)
    return labels


def code_labels(labels: Mapping[str, Any]) -> Mapping[str, Any]:
    """Labels of codes stored as plain text: event names, message kinds."""
    _CODES.update(labels)
    return labels


def code(value: str | None) -> str:
    """A stored code as a person reads it (the code itself when nobody labelled it)."""
    if not value:
        return ""
    text = _CODES.get(value)
    return str(text) if text is not None else value


def shown_as(cls: type, show: Callable[[Any], str]) -> None:
    """How objects of ``cls`` (another package's model: FAB's roles) are shown."""
    _SHOWN[cls] = show


def has_labels(enum_class: Any) -> bool:
    return enum_class in _REGISTRY


def label(value: Any) -> str:
    """What a person reads for ``value``: its label for a registered enum member, else the
    value itself as text ("" for None)."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        labels = _REGISTRY.get(type(value))
        return str(labels[value]) if labels else str(value.value)
    return str(value)


def choices(enum_class: type[enum.Enum]) -> list[tuple[str, str]]:
    """(member name, label) pairs for a select box, in declaration order."""
    return [(member.name, label(member)) for member in enum_class]


def _yes_no(value: bool) -> str:
    return _("Yes") if value else _("No")


#: How each kind of value is shown, the first that fits (bool before int, datetime
#: before date).
_DISPLAY: tuple[tuple[Any, Callable[[Any], Any]], ...] = (
    (bool, _yes_no),
    (enum.Enum, label),
    (dt.datetime, format_datetime),
    (dt.date, format_date),
    ((list, tuple, set), lambda items: ", ".join(str(display(item)) for item in items)),
)


def display(value: Any) -> Any:
    """A value as a list or a record page shows it: nothing for None, Có/Không, labels
    for codes, dd/mm/yyyy (HH:MM Vietnam time), lists joined."""
    if value is None:
        return ""
    for kind, show in _DISPLAY:
        if isinstance(value, kind):
            return show(value)
    show = _SHOWN.get(type(value))
    return show(value) if show else value
