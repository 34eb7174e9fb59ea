"""Every parse of an untrusted PDF runs in a child under hard limits (app.sandbox): a loop
inside a library, a memory bomb or a crash stops there, the request gets its answer, and
the server does not grow."""
from __future__ import annotations

import io
import os
import time

import pytest

from app import sandbox
from app.errors import DomainError
from modules.signing.verification import Limits, explain_bounded
from tests.hostile_scans import corpus, xref_prev_loop
from tests.hostile_signed import Document, sign


def _spin() -> None:
    while True:
        pass


def _sleep() -> None:
    time.sleep(60)


def _hog() -> int:
    hoard = []
    while True:
        hoard.append(bytearray(50 * 2**20))


def _refuse() -> None:
    raise DomainError("không được", 409, field="x")


def _die() -> None:
    os._exit(3)


def _pid() -> int:
    return os.getpid()


@pytest.mark.parametrize("target", [_spin, _sleep])
def test_a_parse_that_never_ends_is_killed_at_its_deadline(target):
    with pytest.raises(sandbox.SandboxError) as stopped:
        sandbox.run(target, bounds=sandbox.Bounds(seconds=1.5, memory_mb=100))
    assert stopped.value.reason == "time"


def test_a_parse_that_eats_memory_stops_at_its_budget_and_the_server_does_not_grow():
    before = _rss_mb()
    with pytest.raises(sandbox.SandboxError) as stopped:
        sandbox.run(_hog, bounds=sandbox.Bounds(seconds=20, memory_mb=200))
    assert stopped.value.reason == "memory"
    assert _rss_mb() - before < 50


def test_a_crash_is_an_answer_and_a_refusal_comes_back_whole():
    with pytest.raises(sandbox.SandboxError) as crashed:
        sandbox.run(_die, bounds=sandbox.Bounds(seconds=5, memory_mb=100))
    assert crashed.value.reason == "crashed"
    with pytest.raises(DomainError) as refused:
        sandbox.run(_refuse, bounds=sandbox.Bounds(seconds=5, memory_mb=100))
    assert (refused.value.message, refused.value.status, refused.value.details) == \
        ("không được", 409, {"field": "x"})
    assert sandbox.run(_pid, bounds=sandbox.Bounds(seconds=5, memory_mb=100)) != os.getpid()


def test_the_refusal_is_made_in_the_callers_language(app):
    """The child has no request: it is handed the language and answers in it."""
    from modules.copies.scans import ScanError, check_scan

    for language, words in (("vi", "hỏng"), ("en", "damaged")):
        with app.test_request_context("/api/v1/copy/", headers={"Accept-Language": language}):
            with pytest.raises(ScanError) as refused:
                check_scan(io.BytesIO(xref_prev_loop()), 2**20, 10)
        assert words in refused.value.message


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def _huge_pages(signer) -> bytes:
    """Ten pages of 200 × 200 inches, signed, then every page's content rewritten: the
    verifier must draw them all to compare (the issue's 280 KB file grew the server from
    380 MB to 2,115 MB)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name

    from tests.hostile_signed import update

    doc = Document(pages=10)
    data = sign(doc.data, signer)

    def change(writer):
        for index in range(10):
            page_ref, _resources = writer.find_page_for_modification(index)
            page = page_ref.get_object()
            page[pdf_name("/MediaBox")] = generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 14400, 14400)])
            page[pdf_name("/Contents")] = writer.add_object(generic.StreamObject(
                stream_data=b"0 0 1 rg 0 0 14400 14400 re f"))
            writer.update_container(page)
    return update(data, change)


def test_the_verifier_answers_every_hostile_file_within_its_budget(app, client):
    """15 s and 300 MB for any upload: the corpora of intake and of the verifier, and ten
    huge pages.  The deadline is enforced by killing the child (tests above); here every
    file gets an answer and the child's peak memory stays in the budget."""
    from modules.signing.services import roots, verify_limits
    from tests.hostile_signed import CORPUS
    from tests.keys import demo_token

    signer, _ = demo_token(app, "sandbox-signer", "Người Ký Thử", "Công ty Thử")
    files = {name: data for name, (data, _words) in corpus(bomb_size=64 * 2**20).items()}
    files.update({name: build(signer) for name, (build, _v) in CORPUS.items()})
    files["huge_pages"] = _huge_pages(signer)
    with app.app_context():
        limits, anchors = verify_limits(), roots()
    assert (limits.wall_seconds, limits.memory_mb) == (15, 300)
    peaks = {}
    for name, data in files.items():
        answer = explain_bounded(data, anchors, limits=limits)
        assert answer.verdict, name
        usage = sandbox.last_usage()
        if answer.error != "too_complex:memory":
            peaks[name] = usage.peak_mb
    assert max(peaks.values()) <= limits.memory_mb, sorted(peaks.items(), key=lambda p: -p[1])
    huge = explain_bounded(files["huge_pages"], anchors, limits=Limits())
    assert huge.verdict in ("tampered", "indeterminate")


def test_background_work_runs_at_a_lower_priority():
    """The jobs worker's explanations (nobody waits for them) make way for requests: their
    child — and the renderers it starts — run ``nice``; a request's child does not."""
    mine = os.nice(0)
    assert sandbox.run(os.nice, 0, bounds=sandbox.Bounds(10, 200, nice=10)) == mine + 10
    assert sandbox.run(os.nice, 0, bounds=sandbox.Bounds(10, 200)) == mine

