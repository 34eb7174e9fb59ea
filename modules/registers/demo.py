"""Demo: one open e-copy register for the current year in each demo commune."""
from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import select

from app.demo import OFFICE_A, OFFICE_B
from app.extensions import db
from app.offices.models import Office
from modules.registers.models import Register, RegisterStatus
from modules.registers.services import today_vn


def load() -> int:
    year = today_vn().year
    symbol = current_app.config["REGISTER_TYPE_SYMBOL"]
    created = 0
    for code in (OFFICE_A, OFFICE_B):
        office = db.session.scalars(select(Office).where(Office.code == code)).one()
        exists = db.session.scalars(select(Register.id).where(
            Register.office_id == office.id, Register.year == year)).first()
        if exists:
            continue
        db.session.add(Register(
            office_id=office.id, name=f"Sổ chứng thực bản sao điện tử năm {year}",
            book_number=f"01/{year}", type_symbol=symbol, year=year, start_number=1,
            next_number=1, opening_date=dt.date(year, 1, 1), status=RegisterStatus.open,
        ))
        created += 1
    db.session.flush()
    return created
