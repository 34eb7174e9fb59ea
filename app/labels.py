"""Labels for every coded value a person reads — the enum members of the models — in one
registry, so lists, filters, exports and charts show "Chờ ký", never ``awaiting_signature``.

A model module registers its enum's labels once (``labelled({...})``); everything that
shows a value asks ``label(value)``.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

_REGISTRY: dict[type[enum.Enum], Mapping[enum.Enum, Any]] = {}


def labelled(labels: Mapping[enum.Enum, Any]) -> Mapping[enum.Enum, Any]:
    """Register the (lazy, translated) labels of one enum; returns them."""
    enum_class = type(next(iter(labels)))
    missing = [member for member in enum_class if member not in labels]
    if missing:
        raise ValueError(f"{enum_class.__name__}: no label for {missing}")
    _REGISTRY[enum_class] = labels
    return labels


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
