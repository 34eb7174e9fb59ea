"""Jinja filters for Vietnamese display: dd/mm/yyyy, Vietnam time, đồng."""
from __future__ import annotations

from flask import Flask

from app.timeutil import format_date, format_datetime


def format_money(amount: int | None) -> str:
    """200000 → "200.000 đ" (Vietnamese thousands separator)."""
    if amount is None:
        return ""
    return f"{amount:,}".replace(",", ".") + " đ"


def register(app: Flask) -> None:
    app.jinja_env.filters["vn_date"] = format_date
    app.jinja_env.filters["vn_datetime"] = format_datetime
    app.jinja_env.filters["vn_money"] = format_money
