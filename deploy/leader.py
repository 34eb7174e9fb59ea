"""What the demo leaders do over HTTP, for the deployment check and the benchmarks.

leader.a's key is held by the server (server custody): ``POST …/sign`` with the one-time
code of the demo's authenticator secret.  leader.b's key is on their own token: the page's
plugin round trip — open a job, download the prepared copy, sign it on "the leader's
computer" (here, the demo PKI's key file of leader.b, with SaoY's own signer's signing
code), upload it."""
from __future__ import annotations

import contextlib
import functools
import io
import time
from collections.abc import Iterator
from pathlib import Path

import requests

#: The demo leader whose key the server holds; the other signs through the plugin.
SERVER_CUSTODY = "leader.a"


def one_time_code() -> str:
    """The code leader.a's phone would show now."""
    from modules.signing.demo import DEMO_CODE_SECRET
    from modules.signing.second_factor import current_code

    return current_code(DEMO_CODE_SECRET)


def sign(http: requests.Session, base: str, pk: int, username: str, data_dir: Path,
         timeout: float = 300, steps: dict[str, float] | None = None) -> requests.Response:
    """Sign request ``pk`` as ``username``; returns the response that moved it (200).
    ``steps`` (if given) receives the seconds of each step of the plugin's round trip."""
    if username == SERVER_CUSTODY:
        return http.post(f"{base}/api/v1/copy/{pk}/sign", json={"otp": one_time_code()},
                         timeout=timeout)
    steps = {} if steps is None else steps
    with _step(steps, "open the job"):
        opened = http.post(f"{base}/api/v1/copy/{pk}/request_signature", json={},
                           timeout=timeout)
    if not opened.ok:
        return opened
    job = opened.json()["signing"]
    with _step(steps, "download"):
        prepared = http.get(job["download_url"], timeout=timeout)
    if not prepared.ok:
        return prepared
    with _step(steps, "sign on the computer"):
        signed = _own_token(username, str(data_dir)).sign(prepared.content, job["field"])
    with _step(steps, "upload and acceptance"):
        return http.post(job["upload_url"], timeout=timeout, files={
            "uploadfile": ("signed.pdf", io.BytesIO(signed), "application/pdf")})


@contextlib.contextmanager
def _step(steps: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        steps[name] = time.perf_counter() - started


class _Token:
    def __init__(self, signer):
        self.signer = signer

    def sign(self, prepared: bytes, field: str) -> bytes:
        from signer.saoy_signer import sign_pdf

        return sign_pdf(prepared, field, self.signer, None)


@functools.cache
def _own_token(username: str, data_dir: str) -> _Token:
    """The demo PKI's key of ``username`` (issued by ``saoy demo-data``; with a served
    demo PKI — SAOY_DEMO_PKI_URL — in its own folder)."""
    from pyhanko.sign.signers import SimpleSigner

    pki = Path(data_dir) / "pki"
    if (pki / "served" / f"leader-{username}.p12").exists():
        pki = pki / "served"
    signer = SimpleSigner.load_pkcs12(  # (the second positional is the CA chain's files)
        str(pki / f"leader-{username}.p12"),
        passphrase=(pki / "passphrase").read_text().strip().encode())
    if signer is None:
        raise RuntimeError(f"the demo key of {username} could not be opened")
    return _Token(signer)
