"""Remote signing (ký số từ xa): the leader's key stays in a licensed provider's HSM and
the provider signs a hash the leader authorised — the Cloud Signature Consortium API
(v1: Viettel MySign's ADSS and any compliant provider).

SaoY prepares the PDF and its signed attributes as for any key (``pdf.sign_as_leader``);
the signer below hands their digest to the provider (``signatures/signHash``) under an
authorisation (SAD) from ``credentials/authorize`` — one for a whole batch when the
credential needs no hash pinning (SCAL 1: ``numSignatures``), one per signature when it
does (SCAL 2).  The certificate the provider returns is checked against the one
registered for that leader before anything is signed (``signers.open_signer``).

Providers are configuration (``SAOY_CSC_PROVIDERS``: ``name=https://…`` separated by
``;``); a provider's bearer token, if it needs one, is read from the file named by
``SAOY_CSC_<NAME>_TOKEN_FILE`` — never from the database.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import requests
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from flask_babel import gettext as _
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

log = logging.getLogger(__name__)


#: What a provider answers a wrong PIN or code, or a declined approval.
REFUSED = (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)


class RemoteSigningError(RuntimeError):
    """The provider refused or did not answer; the message is for the leader."""


@dataclass(frozen=True)
class Provider:
    name: str
    url: str
    token: str | None = None
    timeout: float = 30.0


def providers(config: Mapping[str, Any]) -> dict[str, Provider]:
    """The CSC providers the system administrator declared, by name."""
    found = {}
    for item in (config.get("CSC_PROVIDERS") or "").split(";"):
        name, _sep, url = item.strip().partition("=")
        if not (name and url):
            continue
        token_file = os.environ.get(f"SAOY_CSC_{name.upper()}_TOKEN_FILE")
        token = open(token_file, encoding="utf-8").read().strip() if token_file else None
        found[name] = Provider(name, url.rstrip("/"), token,
                               float(config.get("CSC_TIMEOUT") or 30))
    return found


@dataclass(frozen=True)
class Credential:
    """What ``credentials/info`` says of a credential: its certificate, chain and rules."""

    cert: bytes  # DER
    chain: tuple[bytes, ...]
    hash_pinning: bool  # SCAL 2: each authorisation names the hashes it allows
    multisign: int  # how many signatures one authorisation may allow


@dataclass(frozen=True)
class Approval:
    """What the leader typed for the provider's authorisation (CSC ``PIN``/``OTP``);
    empty when the provider asks in its own app."""

    pin: str | None = None
    otp: str | None = None


class CscClient:
    """CSC API v1 over HTTPS with a timeout; every failure becomes one Vietnamese message."""

    def __init__(self, provider: Provider):
        self.provider = provider

    def call(self, path: str, body: dict) -> dict:
        headers = {"Authorization": f"Bearer {self.provider.token}"} if self.provider.token \
            else {}
        try:
            r = requests.post(f"{self.provider.url}/csc/v1/{path}", json=body, headers=headers,
                              timeout=self.provider.timeout)
        except requests.RequestException as exc:
            log.warning("CSC %s %s: %r", self.provider.name, path, exc)
            raise RemoteSigningError(_("The remote signing service %(name)s does not answer: "
                                       "nothing was signed. Try again in a few minutes.",
                                       name=self.provider.name)) from None
        if r.status_code != HTTPStatus.OK:
            log.warning("CSC %s %s: %s %s", self.provider.name, path, r.status_code,
                        r.text[:300])
            raise RemoteSigningError(self._refusal(path, r))
        try:
            return r.json()
        except ValueError:
            raise RemoteSigningError(_("The remote signing service %(name)s answered "
                                       "something that is not CSC: nothing was signed.",
                                       name=self.provider.name)) from None

    def _refusal(self, path: str, r: requests.Response) -> str:
        if path == "credentials/authorize" and r.status_code in REFUSED:
            return _("The remote signing service %(name)s refused the authorisation (a wrong "
                     "PIN or code, or it was declined): nothing was signed.",
                     name=self.provider.name)
        if r.status_code == HTTPStatus.NOT_FOUND:
            return _("The remote signing service %(name)s does not know this credential.",
                     name=self.provider.name)
        return _("The remote signing service %(name)s refused (%(status)s): nothing was "
                 "signed.", name=self.provider.name, status=r.status_code)

    def credential(self, credential_id: str) -> Credential:
        info = self.call("credentials/info", {"credentialID": credential_id,
                                              "certificates": "chain"})
        certs = [base64.b64decode(c) for c in info.get("cert", {}).get("certificates", [])]
        if not certs:
            raise RemoteSigningError(_("The remote signing service gave no certificate for "
                                       "this credential."))
        return Credential(certs[0], tuple(certs[1:]), str(info.get("SCAL", "1")) == "2",
                          int(info.get("multisign") or 1))

    def authorize(self, credential_id: str, count: int, approval: Approval,
                  hashes: list[str] | None = None) -> str:
        body: dict[str, Any] = {"credentialID": credential_id, "numSignatures": count,
                                "description": "SaoY: chứng thực bản sao điện tử"}
        if hashes:
            body["hash"] = hashes
        if approval.pin:
            body["PIN"] = approval.pin
        if approval.otp:
            body["OTP"] = approval.otp
        return self.call("credentials/authorize", body)["SAD"]

    def sign_hashes(self, credential_id: str, sad: str, hashes: list[str], digest: str,
                    mechanism: str) -> list[bytes]:
        answer = self.call("signatures/signHash", {
            "credentialID": credential_id, "SAD": sad, "hash": hashes,
            "hashAlgo": algos.DigestAlgorithmId(digest).dotted, "signAlgo": mechanism})
        return [base64.b64decode(s) for s in answer.get("signatures", [])]


@dataclass
class _Authorisation:
    """One SAD and how many signatures it still allows (SCAL 1 batches)."""

    sad: str | None = None
    left: int = 0
    granted: list[int] = field(default_factory=list)  # numSignatures of each authorisation


class CscSigner(signers.Signer):
    """A pyHanko signer whose private key operation is the provider's ``signHash``: the
    digest of SaoY's signed attributes goes out, the raw signature comes back."""

    def __init__(self, client: CscClient, credential_id: str, credential: Credential,
                 approval: Approval, signatures: int = 1):
        cert = asn1_x509.Certificate.load(credential.cert)
        super().__init__(signing_cert=cert, cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(c) for c in credential.chain]))
        self.client, self.credential_id, self.credential = client, credential_id, credential
        self.approval, self.signatures = approval, max(1, signatures)
        self.authorisation = _Authorisation()

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(self.signing_cert.public_key.bit_size // 8 + 16)
        digest = base64.b64encode(hashlib.new(digest_algorithm, data).digest()).decode()
        sad = self._sad(digest)
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)["algorithm"]
        signed = self.client.sign_hashes(self.credential_id, sad, [digest], digest_algorithm,
                                         mechanism.dotted)
        if len(signed) != 1:
            raise RemoteSigningError(_("The remote signing service returned no signature."))
        return signed[0]

    def _sad(self, digest: str) -> str:
        """A SAD for this digest: pinned to it (SCAL 2), else the batch's while it lasts."""
        held = self.authorisation
        if self.credential.hash_pinning:
            held.granted.append(1)
            return self.client.authorize(self.credential_id, 1, self.approval, [digest])
        if held.sad is None or held.left <= 0:
            count = min(self.signatures - sum(held.granted), self.credential.multisign) \
                if sum(held.granted) < self.signatures else 1
            held.sad = self.client.authorize(self.credential_id, max(1, count), self.approval)
            held.left = max(1, count)
            held.granted.append(held.left)
        held.left -= 1
        return held.sad
