"""Untrusted files are parsed in a child process that the request can abandon.

A PDF library can loop for ever (a cross-reference that points to itself), eat memory
without end (ten pages drawn at a gigapixel) or crash; a deadline checked between steps
does not stop a loop inside a step.  So intake and the verifier hand the file to a child
forked from a small server process (``forkserver``: the parsing libraries are imported
once, the web server's threads and locks are not inherited) and the child runs under
hard limits: address space (the memory it may add), CPU seconds, and a wall deadline
after which the parent kills it.  Translated messages are made in the child with the
parent's language, so what comes back is ready to show.
"""
from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Imported once in the fork server, so each child starts warm.
PRELOAD = ["pyhanko.pdf_utils.reader", "pyhanko.sign.validation", "PIL.Image",
           "flask_babel", "modules.signing.policy"]
_PAGE = 4096


@dataclass(frozen=True)
class Bounds:
    """What one parse may take: wall seconds, and memory beyond the child's start."""

    seconds: float
    memory_mb: int
    #: Lower CPU priority (``nice``) for work nobody is waiting for — its renderers too.
    nice: int = 0


@dataclass(frozen=True)
class Usage:
    """What the last parse took (peak resident memory of the child and its renderers)."""

    seconds: float
    peak_mb: float


class SandboxError(Exception):
    """The parse went past its bounds or died; ``reason`` is "time", "memory" or
    "crashed"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_lock = threading.Lock()
_context: Any = None
_local = threading.local()


def _ctx() -> Any:
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def last_usage() -> Usage | None:
    """What this thread's last sandboxed parse took (for tests and benchmarks)."""
    return getattr(_local, "usage", None)


def run(target: Callable[..., T], *args: Any, bounds: Bounds) -> T:
    """``target(*args)`` in a bounded child; its result, or its exception re-raised, or
    SandboxError when it went past the bounds.  ``target`` is a module-level function."""
    context = _ctx()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, target, args, bounds, _language()),
                            daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    try:
        if not receiver.poll(bounds.seconds):
            raise SandboxError("time")
        try:
            status, value, peak_mb = receiver.recv()
        except (EOFError, OSError):
            child.join(1)
            raise SandboxError("memory" if child.exitcode in (-9, 1) else "crashed") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    _local.usage = Usage(time.monotonic() - started, peak_mb)
    if status == "memory":
        raise SandboxError("memory")
    if status == "raised":
        raise value
    return value


def _language() -> tuple[str, str] | None:
    """The language of the request being served and the catalogs' folder (absolute, from
    the configuration), for the child's messages."""
    from flask import current_app, has_app_context
    from flask_babel import get_locale

    if not has_app_context():
        return None  # no application: messages in the source language
    locale = get_locale()
    return (str(locale) if locale else current_app.config.get("BABEL_DEFAULT_LOCALE", "vi"),
            current_app.config["BABEL_TRANSLATION_DIRECTORIES"])


def _child(sender: Any, target: Callable, args: tuple, bounds: Bounds,
           language: tuple[str, str] | None) -> None:
    _limit(bounds)
    try:
        with _translations(language):
            result: tuple[str, Any] = ("ok", target(*args))
    except MemoryError:
        result = ("memory", None)
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which decides
        result = ("raised", exc)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    try:
        sender.send((*result, peak))
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be sent as it is
        sender.send(("raised", RuntimeError(repr(exc)), peak))
    sender.close()


def _limit(bounds: Bounds) -> None:
    """Address space = what the child has now + the budget; CPU = the deadline."""
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * _PAGE
    memory = current + bounds.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = math.ceil(bounds.seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if bounds.nice:
        os.nice(bounds.nice)


@contextlib.contextmanager
def _translations(language: tuple[str, str] | None) -> Iterator[None]:
    """A bare Flask application with SaoY's catalogs, so gettext answers in the parent's
    language inside the child."""
    if language is None:
        yield
        return
    from flask import Flask
    from flask_babel import Babel

    app = Flask("saoy-sandbox")
    locale, directories = language
    Babel(app, default_locale=locale, default_translation_directories=directories)
    with app.app_context():
        yield
