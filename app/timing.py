"""Where an answer's time went, said in its ``Server-Timing`` header: the whole (``app``)
and the pieces the slow paths name (``span("signature")``, ``span("store")`` …), plus the
database's own time and statement count (``db``).  An operator reads them in the
browser's network panel or the proxy's log; the benchmarks split a request by them
instead of guessing.  Everyone gets the whole; the pieces only signed-in staff, and only
where ``SAOY_SERVER_TIMING_PIECES`` is on (``app.http``): statement counts would tell an
anonymous caller which identity numbers have an account.  Outside a request (jobs, CLI) a
span costs nothing and records nothing.

Spans of different names may nest (``db`` is counted inside ``commit`` and inside
whatever ran a statement); a name is summed over the request.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Engine

_SPANS = "saoy_spans"
_STARTED = "saoy_started"
_STATEMENT = "saoy_statement_started"


def start_clock() -> None:
    """The answer's clock starts before anything else of the request runs."""
    setattr(g, _STARTED, time.perf_counter())
    setattr(g, _SPANS, {})


def _add(name: str, seconds: float, count: int = 1) -> None:
    spans = g.get(_SPANS)
    if spans is not None:
        total, n = spans.get(name, (0.0, 0))
        spans[name] = (total + seconds, n + count)


@contextmanager
def span(name: str) -> Iterator[None]:
    """Time the block as ``name`` in this request's Server-Timing (nothing outside one)."""
    if not has_request_context():
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        _add(name, time.perf_counter() - started)


def header(pieces: bool) -> str | None:
    """``app;dur=…``, then (``pieces``) each span in the order it first ran, ``desc`` its
    count."""
    started = g.get(_STARTED)
    if started is None:
        return None
    parts = [f"app;dur={(time.perf_counter() - started) * 1000:.1f}"]
    spans = (g.get(_SPANS) or {}) if pieces else {}
    for name, (seconds, count) in spans.items():
        parts.append(f'{name};dur={seconds * 1000:.1f};desc="{count}"')
    return ", ".join(parts)


def parse(value: str) -> dict[str, float]:
    """A Server-Timing header back into milliseconds by name (for the benchmarks)."""
    found: dict[str, float] = {}
    for part in value.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        for param in params:
            if param.startswith("dur="):
                found[name] = float(param[4:])
    return found


@event.listens_for(Engine, "before_cursor_execute")
def _statement_started(conn: Any, _cursor, _statement, _parameters, _context, _many) -> None:
    if has_request_context():  # a statement that failed leaves its start: overwritten here
        conn.info[_STATEMENT] = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _statement_done(conn: Any, _cursor, _statement, _parameters, _context, _many) -> None:
    started = conn.info.pop(_STATEMENT, None)
    if started is not None and has_request_context():
        _add("db", time.perf_counter() - started)
