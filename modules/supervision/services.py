"""The dashboard and the statistics report: figures from the copies, appointments and
registers modules, for the offices the user may see (an office id outside them is a
404, like every other door)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app import params
from app.errors import NotFoundError
from app.offices.models import DocumentType, Office
from app.offices.services import certifying_offices, document_types
from app.timeutil import Period, to_local, utcnow
from modules.appointments import reports as appointments
from modules.copies import reports as copies
from modules.registers import reports as registers

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class Choice:
    """What the user asked to see, checked: the period, the offices, a document type."""

    period: Period
    offices: list[Office]  # the offices shown (all the user may see, or the one chosen)
    office: Office | None  # the one chosen, if any
    document_type: DocumentType | None
    all_offices: list[Office]
    all_types: list[DocumentType]

    @property
    def filter(self) -> copies.Filter:
        return copies.Filter(self.period, [o.id for o in self.offices],
                             self.document_type.id if self.document_type else None)


def choose(session: Session, user: Any, args: Mapping[str, Any]) -> Choice:
    """The dashboard's filters from a query string (``from``, ``to``, ``office``,
    ``document_type``), defaulting to the last 30 days over every office in scope."""
    today = to_local(utcnow()).date()
    last = params.date(args.get("to"), _("To"), today)
    first = params.date(args.get("from"), _("From"), last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise params.ParamError(_("The period must start before it ends."))
    if (last - first).days >= MAX_DAYS:
        raise params.ParamError(_("Choose a period of at most %(n)s days.", n=MAX_DAYS))
    offices = certifying_offices(session, user)
    office = None
    if args.get("office") not in (None, ""):
        office_id = params.as_id(args.get("office"))
        office = next((o for o in offices if o.id == office_id), None)
        if office is None:
            raise NotFoundError()  # another province's office: it does not exist for you
    types = document_types(session)
    document_type = None
    if args.get("document_type") not in (None, ""):
        type_id = params.as_id(args.get("document_type"))
        document_type = next((t for t in types if t.id == type_id), None)
        if document_type is None:
            raise params.ParamError(_("Unknown document type."))
    return Choice(Period(first, last), [office] if office else offices, office,
                  document_type, offices, types)


@dataclass
class Series:
    """One chart's data: labels and one or more named series, shown as a table too."""

    labels: list[str]
    datasets: list[tuple[str, list[int | float]]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"labels": self.labels,
                "datasets": [{"label": name, "data": data} for name, data in self.datasets]}

    @property
    def rows(self) -> list[tuple[str, list[int | float]]]:
        return [(lab, [data[i] for _name, data in self.datasets])
                for i, lab in enumerate(self.labels)]


@dataclass
class Dashboard:
    choice: Choice
    by_state: Series
    per_day: Series
    appointments: Series
    returns: Series
    top_types: Series
    delivery: copies.DeliveryTimes
    overdue: int
    fees_count: int
    fees_total: int
    received_total: int
    delivered_total: int


#: Appointments are booked ahead: a period that reaches today shows the coming days too.
APPOINTMENTS_AHEAD_DAYS = 14


def appointment_period(period: Period) -> Period:
    """The days of the appointments chart: the period, and when it reaches today the
    next two weeks as well (by default the period ends today, and a chart of past days
    only was empty although the office's mornings were booked)."""
    today = to_local(utcnow()).date()
    if period.first <= today <= period.last:
        return Period(period.first, today + dt.timedelta(days=APPOINTMENTS_AHEAD_DAYS))
    return period


def dashboard(session: Session, user: Any, choice: Choice) -> Dashboard:
    flt = choice.filter
    days = choice.period.days
    day_labels = [d.strftime("%d/%m") for d in days]
    states = copies.by_state(session, user, flt)
    received = copies.received_per_day(session, user, flt)
    delivered = copies.delivered_per_day(session, user, flt)
    booked = appointment_period(choice.period)
    appts = appointments.outcomes_per_day(session, user, booked, flt.office_ids) \
        if choice.document_type is None else [(name, [0] * len(booked.days)) for name, _s
                                              in appointments.OUTCOMES]
    returns = copies.returns_by_ground(session, user, flt)
    names = {t.id: t.name_vi for t in choice.all_types}
    fees_count, fees_total = copies.fees_collected(session, user, flt)
    return Dashboard(
        choice=choice,
        by_state=Series([name for name, _n in states], [(_("Requests"),
                                                          [n for _name, n in states])]),
        per_day=Series(day_labels, [(_("Received"), [received.get(d, 0) for d in days]),
                                    (_("Delivered"), [delivered.get(d, 0) for d in days])]),
        appointments=Series([d.strftime("%d/%m") for d in booked.days],
                            [(str(name), counts) for name, counts in appts]),
        returns=Series([name for name, _n in returns],
                       [(_("Returned"), [n for _name, n in returns])]),
        top_types=Series(*_top(copies.top_document_types(session, user, flt), names)),
        delivery=copies.delivery_times(session, user, flt),
        overdue=copies.overdue(session, user, flt),
        fees_count=fees_count, fees_total=fees_total,
        received_total=sum(received.values()), delivered_total=sum(delivered.values()),
    )


def _top(rows: list[tuple[int, int]], names: Mapping[int, str]):
    return [names.get(type_id, str(type_id)) for type_id, _n in rows], \
        [(_("Requests"), [n for _type_id, n in rows])]


@dataclass(frozen=True)
class StatisticsRow:
    office: str
    certifications: int
    copies: int
    pages: int
    fees: int


def statistics(session: Session, user: Any, choice: Choice) -> list[StatisticsRow]:
    """One row per office shown (offices with nothing in the period included: a report
    upward lists every office), from the register books."""
    figures = {f.office_id: f for f in registers.certified_per_office(
        session, user, choice.period, [o.id for o in choice.offices],
        choice.document_type.name_vi if choice.document_type else None)}
    rows = []
    for office in choice.offices:
        found = figures.get(office.id)
        rows.append(StatisticsRow(office.name, found.certifications if found else 0,
                                  found.copies if found else 0, found.pages if found else 0,
                                  found.fees if found else 0))
    return rows
