"""Time helpers: everything is stored as naive UTC and shown in Vietnam time."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def utcnow() -> dt.datetime:
    """Naive UTC now, the storage convention of every table."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def today_vn() -> dt.date:
    """Today in Vietnam (a day's rules, a register's year, a rule's effective date)."""
    return dt.datetime.now(VN_TZ).date()


def to_local(value: dt.datetime) -> dt.datetime:
    """Stored naive UTC → aware Asia/Ho_Chi_Minh."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ)


def to_utc(value: dt.datetime) -> dt.datetime:
    """Aware (or naive Vietnam-local) datetime → naive UTC for storage."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=VN_TZ)
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def format_date(value: dt.date | dt.datetime | None) -> str:
    """dd/mm/yyyy, in Vietnam time for datetimes."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = to_local(value)
    return value.strftime("%d/%m/%Y")


def format_datetime(value: dt.datetime | None) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time."""
    if value is None:
        return ""
    return to_local(value).strftime("%d/%m/%Y %H:%M")


def date_in_words(value: dt.date) -> str:
    """The attestation's date: "ngày 27 tháng 11 năm 2026"."""
    return f"ngày {value.day:02d} tháng {value.month:02d} năm {value.year}"


@dataclass(frozen=True)
class Period:
    """Vietnam calendar days ``first``…``last`` (both included)."""

    first: dt.date
    last: dt.date

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in stored naive UTC."""
        start = dt.datetime.combine(self.first, dt.time(), VN_TZ)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), VN_TZ)
        return to_utc(start), to_utc(end)

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @classmethod
    def last_days(cls, count: int, today: dt.date | None = None) -> Period:
        today = today or to_local(utcnow()).date()
        return cls(today - dt.timedelta(days=count - 1), today)
