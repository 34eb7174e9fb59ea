"""RFC 3161 timestamps from the services the system administrator allows, and only them.

pyHanko's requests-based client follows redirects, so an allowed service could send
the request to any address; this one never follows one, and always has a timeout.
"""
from __future__ import annotations

import time
from http import HTTPStatus

import requests
from asn1crypto import tsp
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, set_tsp_headers
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

#: What a TSA that is down, slow or answering nonsense raises while signing.
TIMESTAMP_ERRORS = (TimestampRequestError, requests.RequestException)


class AllowedTimeStamper(RequestsHTTPTimeStamper):
    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        from asyncio import to_thread

        def task():
            try:
                raw = requests.post(self.url, req.dump(), headers=set_tsp_headers({}),
                                    timeout=self.timeout, allow_redirects=False)
            except OSError as exc:
                raise TimestampRequestError("timestamp server unreachable") from exc
            if raw.status_code != HTTPStatus.OK or \
                    raw.headers.get("Content-Type") != "application/timestamp-reply":
                raise TimestampRequestError("timestamp server answered badly", raw)
            try:
                return tsp.TimeStampResp.load(raw.content)
            except ValueError as exc:
                raise TimestampRequestError("timestamp reply unreadable") from exc

        return await to_thread(task)


_KEPT: dict[tuple[str, float], tuple[float, AllowedTimeStamper]] = {}


def timestamper_for(url: str, timeout: float, keep_seconds: float = 300.0) -> AllowedTimeStamper:
    """The service's timestamper, kept for a few minutes: it remembers the TSA's
    certificate (learnt from one stamp), so a batch of deliveries prepares the archive's
    /DSS without asking the TSA a second time per copy."""
    now = time.monotonic()
    made, kept = _KEPT.get((url, timeout), (0.0, None))
    if kept is None or now - made > keep_seconds:
        kept = AllowedTimeStamper(url, timeout=timeout)
        _KEPT[(url, timeout)] = (now, kept)
    return kept
