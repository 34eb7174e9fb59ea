"""Is this certificate good now?  Asked before every signature SaoY makes or takes: a
leader who left office, or lost the token, has their certificate revoked, and from that
moment nothing may be signed with it.

Revocation comes from the OCSP responders and CRL addresses written in the certificates
(pyHanko's validator, ``hard-fail``: a certificate that names a responder must get an
answer; one that names none is judged on its chain and dates).  Fetching is SSRF-safe like
the TSA list: only http(s), only to hosts named in certificates the server trusts or has
registered (and ``SAOY_REVOCATION_HOSTS``), no redirects, a timeout and a size limit; an
address rewrite map serves responders known publicly under another name (some VGCA
certificates name ``ocsp.ca.ptc``, an internal host; the public one is ``ocsp.ca.gov.vn``).
A responder that does not answer is "try again" (503): nothing is signed, nothing changes.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from asn1crypto import x509 as asn1_x509
from flask import current_app
from flask_babel import gettext as _
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import (
    RequestsCertificateFetcher,
)
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher

from app.errors import DomainError
from app.i18n import format_instant
from modules.signing.validation import anchors

log = logging.getLogger(__name__)
HTTP_OK = 200


class CertificateRefusedError(DomainError):
    """Revoked, expired, not yet valid or not from a trusted authority: never signs."""

    status = 422


class RevocationUnavailableError(DomainError):
    """The certificate names a responder that did not answer: try again later."""

    status = 503


@dataclass(frozen=True)
class FetchPolicy:
    """Where revocation may be fetched from, how long and how much."""

    hosts: frozenset[str]  # "host" or "host:port", lower case
    rewrite: tuple[tuple[str, str], ...]  # (host as written, host to ask)
    seconds: float = 5.0
    max_bytes: int = 10 * 2**20
    cache_seconds: float = 300.0

    def address(self, url: str) -> str:
        """The URL to ask, after the rewrite map; or ValueError when not allowed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address: {url[:80]}")
        netloc = parts.netloc.lower()
        for written, asked in self.rewrite:
            if written in (netloc, parts.hostname):
                netloc = asked
        host = netloc.rsplit("@", 1)[-1]
        if host not in self.hosts and host.split(":")[0] not in self.hosts:
            raise ValueError(f"revocation host not allowed: {host}")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def pointers(certs: Iterable[asn1_x509.Certificate]) -> set[str]:
    """The OCSP and CRL addresses the certificates name."""
    found: set[str] = set()
    for cert in certs:
        found.update(cert.ocsp_urls or ())
        for point in cert.crl_distribution_points or ():
            url = point.url
            if url:
                found.add(url)
    return found


def policy_for(certs: Iterable[asn1_x509.Certificate], config: Any = None) -> FetchPolicy:
    """The hosts of the responders named by ``certs`` (trusted or registered ones), the
    configured extra hosts and the rewrite map (``from=to,from=to``)."""
    config = config or current_app.config
    rewrite = tuple(tuple(pair.split("=", 1)) for pair in
                    (config.get("REVOCATION_REWRITE") or "").replace(" ", "").split(",")
                    if "=" in pair)
    hosts = {urlsplit(url).netloc.lower() for url in pointers(certs)}
    hosts |= {h.strip().lower() for h in (config.get("REVOCATION_HOSTS") or "").split(",")
              if h.strip()}
    hosts |= {asked for _written, asked in rewrite}
    return FetchPolicy(frozenset(h for h in hosts if h), rewrite,  # type: ignore[arg-type]
                       seconds=float(config.get("REVOCATION_SECONDS", 5)),
                       cache_seconds=float(config.get("REVOCATION_CACHE_SECONDS", 300)))


#: Answers kept for a few minutes, per process: a batch of deliveries asks the responder
#: once, and a responder's answer is valid for far longer (hours to days) anyway.
_ANSWERS: dict[tuple, tuple[float, bytes, dict]] = {}
_ANSWERS_LOCK = threading.Lock()
MAX_ANSWERS = 512


def _cached(key: tuple) -> requests.Response | None:
    with _ANSWERS_LOCK:
        found = _ANSWERS.get(key)
    if found is None or found[0] < time.monotonic():
        return None
    response = requests.Response()
    response.status_code, response._content = HTTP_OK, found[1]
    response.headers.update(found[2])
    return response


def _keep(key: tuple, response: requests.Response, seconds: float) -> None:
    with _ANSWERS_LOCK:
        if len(_ANSWERS) >= MAX_ANSWERS:
            _ANSWERS.clear()
        _ANSWERS[key] = (time.monotonic() + seconds, response.content,
                         {"Content-Type": response.headers.get("Content-Type", "")})


def forget_answers() -> None:
    """Tests and benchmarks start cold."""
    with _ANSWERS_LOCK:
        _ANSWERS.clear()


class _PolicyHttp:
    """The fetchers' two HTTP calls, through the policy (replaces requests' defaults)."""

    policy: FetchPolicy

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        target = self.policy.address(url)  # raises for a host not allowed
        key = (method, target, kwargs.get("data"))
        if self.policy.cache_seconds and (hit := _cached(key)) is not None:
            return hit
        response = self._policy_request(method, target, **kwargs)
        if self.policy.cache_seconds:
            _keep(key, response, self.policy.cache_seconds)
        return response

    def _policy_request(self, method: str, target: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, target, timeout=self.policy.seconds,
                                    allow_redirects=False, stream=True, **kwargs)
        if response.status_code != HTTP_OK:
            raise requests.RequestException(f"status code {response.status_code}")
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > self.policy.max_bytes:
                raise requests.RequestException("answer too large")
        response._content = bytes(body)
        return response

    def _get(self, url, *, acceptable_content_types):
        headers = {"Accept": ",".join(acceptable_content_types), "User-Agent": "SaoY"}
        return asyncio.to_thread(self._call, "GET", url, headers=headers)

    def _post(self, url, data, *, content_type, acceptable_content_types):
        headers = {"Accept": ",".join(acceptable_content_types), "User-Agent": "SaoY",
                   "Content-Type": content_type}
        return asyncio.to_thread(self._call, "POST", url, headers=headers, data=data)


def _fetcher(base: type, policy: FetchPolicy, budget: FetchBudget, **options: Any) -> Any:
    kind = type(f"Policy{base.__name__}", (_PolicyHttp, base), {"policy": policy})
    return kind(per_request_timeout=policy.seconds, budget=budget, **options)


class PolicyFetcherBackend(FetcherBackend):
    """pyHanko's fetchers, asking only what the policy allows."""

    def __init__(self, policy: FetchPolicy, limits: FetchLimits | None = None):
        self.policy, self.limits = policy, limits or FetchLimits(max_requests=20,
                                                                 max_cert_requests=5)

    def get_fetchers(self) -> Fetchers:
        budget = FetchBudget(self.limits)
        # No OCSP nonce: the same question is then the same request, which the answers
        # kept above can serve (freshness is judged by the answer's own dates, and most
        # CAs' responders pre-produce answers and ignore nonces anyway).
        return Fetchers(ocsp_fetcher=_fetcher(RequestsOCSPFetcher, self.policy, budget,
                                              request_nonces=False),
                        crl_fetcher=_fetcher(RequestsCRLFetcher, self.policy, budget),
                        cert_fetcher=_fetcher(RequestsCertificateFetcher, self.policy, budget))

    async def close(self) -> None:
        return None


def fetching_context(roots: tuple[asn1_x509.Certificate, ...],
                     chain: Iterable[asn1_x509.Certificate] = (),
                     moment: dt.datetime | None = None, *,
                     policy: FetchPolicy | None = None) -> ValidationContext:
    """A validation context that asks the certificates' responders (hard-fail).  At a past
    ``moment`` an answer issued since counts (it says whether the certificate was revoked
    before)."""
    chain = list(chain)
    return ValidationContext(
        trust_roots=anchors(roots), other_certs=[*roots, *chain], allow_fetching=True,
        revocation_mode="hard-fail", moment=moment, retroactive_revinfo=moment is not None,
        fetcher_backend=PolicyFetcherBackend(policy or policy_for([*roots, *chain])))


def live_contexts(roots: tuple[asn1_x509.Certificate, ...],
                  path: list[asn1_x509.Certificate], seconds: float):
    """``moment -> fetching context`` for a validated path, each answer within ``seconds``
    (the verifier's remaining budget).  The policy is made here, in the request, so the
    contexts can be used from worker threads."""
    policy = policy_for([*roots, *path])
    policy = replace(policy, seconds=min(policy.seconds, seconds))
    return lambda moment: fetching_context(roots, path, moment, policy=policy)


def check_signer(cert: asn1_x509.Certificate, chain: Iterable[asn1_x509.Certificate],
                 roots: tuple[asn1_x509.Certificate, ...]) -> None:
    """Raise unless ``cert`` may sign now: not revoked, within its dates, from a trusted
    authority; 503 when its responder does not answer."""
    chain = list(chain)
    name = _name(cert)
    validator = CertificateValidator(cert, intermediate_certs=chain,
                                     validation_context=fetching_context(roots, chain))
    try:
        asyncio.run(validator.async_validate_usage(set()))
    except RevokedError as exc:
        raise CertificateRefusedError(_(
            "The certificate of %(name)s was revoked on %(when)s: nothing can be signed with "
            "it. The key's holder asks the certification authority for a new certificate.",
            name=name, when=format_instant(exc.revocation_dt.isoformat()))) from None
    except ExpiredError:
        raise CertificateRefusedError(_(
            "The certificate of %(name)s expired on %(when)s: nothing can be signed with it.",
            name=name, when=format_instant(cert.not_valid_after.isoformat()))) from None
    except NotYetValidError:
        raise CertificateRefusedError(_(
            "The certificate of %(name)s is valid only from %(when)s.",
            name=name, when=format_instant(cert.not_valid_before.isoformat()))) from None
    except InsufficientRevinfoError as exc:
        log.warning("revocation unavailable for %s: %s", name, exc)
        raise RevocationUnavailableError(_(
            "The certification authority's revocation service (OCSP/CRL) did not answer, so "
            "it is not known whether the certificate of %(name)s is still valid. Nothing was "
            "signed; try again in a few minutes.", name=name)) from None
    except (PathBuildingError, PathValidationError) as exc:
        log.info("certificate refused for %s: %s", name, exc)
        raise CertificateRefusedError(_(
            "The certificate of %(name)s was not issued by a trusted certification "
            "authority.", name=name)) from None


def _name(cert: asn1_x509.Certificate) -> str:
    try:
        return str(cert.subject.native.get("common_name") or "?")
    except Exception:  # noqa: BLE001 - a name that cannot be read is still a certificate
        return "?"
