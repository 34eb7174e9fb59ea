"""Remote signing (ký số từ xa): the leader's key stays in a licensed provider's HSM and
the provider signs a hash the leader authorised.  One interface (``RemoteService``), one
adapter per way providers speak:

- ``CscClient`` — the Cloud Signature Consortium API, v1 (Viettel MySign's ADSS) and v2:
  the leader's PIN or code authorises at once, the signature comes back in the answer;
- ``ApprovalClient`` — asynchronous approval in the shape of VNPT SmartCA: SaoY asks, the
  leader confirms in the provider's phone app, SaoY asks for the outcome (or is told by
  an authenticated webhook) — pending, then signed, refused or expired.

An adapter for another provider (FPT eSignCloud, NEAC's gateway) subclasses one of the
two and is named in ``PROTOCOLS``.

SaoY prepares the PDF and its signed attributes as for any key (``pdf.sign_as_leader``);
the signer below hands their digest to the provider (``signatures/signHash``) under an
authorisation (SAD) from ``credentials/authorize`` — one for a whole batch when the
credential needs no hash pinning (SCAL 1: ``numSignatures``), one per signature when it
does (SCAL 2).  The certificate the provider returns is checked against the one
registered for that leader before anything is signed (``signers.open_signer``).

Providers are configuration (``SAOY_CSC_PROVIDERS``: ``name=https://…`` separated by
``;``, the protocol before the address where it is not CSC v1: ``name=csc2+https://…``,
``name=smartca+https://…``).  Service credentials come from the environment or secret
files, never the database: a bearer token from the file ``SAOY_CSC_<NAME>_TOKEN_FILE``;
a client id ``SAOY_REMOTE_<NAME>_CLIENT_ID`` with its secret in the file
``SAOY_REMOTE_<NAME>_CLIENT_SECRET_FILE``; the webhook's shared secret in the file
``SAOY_REMOTE_<NAME>_WEBHOOK_SECRET_FILE`` (``<NAME>``: the name in capitals, any other
character than a letter or digit as ``_``).
"""
from __future__ import annotations

import abc
import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import secrets
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

from app.timeutil import utcnow

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
    protocol: str = "csc"  # a key of PROTOCOLS
    client_id: str | None = None
    client_secret: str | None = None
    webhook_secret: str | None = None

    @property
    def waits(self) -> bool:
        """The leader approves in the provider's app and SaoY waits for the outcome."""
        return PROTOCOLS[self.protocol].waits


def _env_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _secret_file(variable: str) -> str | None:
    path = os.environ.get(variable)
    return open(path, encoding="utf-8").read().strip() if path else None


def providers(config: Mapping[str, Any]) -> dict[str, Provider]:
    """The remote signing providers the system administrator declared, by name."""
    found = {}
    for item in (config.get("CSC_PROVIDERS") or "").split(";"):
        name, _sep, url = item.strip().partition("=")
        protocol, plus, address = url.partition("+")
        protocol, url = (protocol, address) if plus and protocol in PROTOCOLS else ("csc", url)
        if not (name and url):
            continue
        key = _env_key(name)
        found[name] = Provider(
            name, url.rstrip("/"), _secret_file(f"SAOY_CSC_{key}_TOKEN_FILE"),
            float(config.get("CSC_TIMEOUT") or 30), protocol,
            os.environ.get(f"SAOY_REMOTE_{key}_CLIENT_ID"),
            _secret_file(f"SAOY_REMOTE_{key}_CLIENT_SECRET_FILE"),
            _secret_file(f"SAOY_REMOTE_{key}_WEBHOOK_SECRET_FILE"))
    return found


def service(provider: Provider) -> RemoteService:
    """The adapter that speaks this provider's protocol."""
    return PROTOCOLS[provider.protocol](provider)


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


class RemoteService(abc.ABC):
    """One provider, over HTTPS with a timeout; every failure becomes one Vietnamese
    message (``RemoteSigningError``).  Subclasses say where a call goes (``url``), how the
    provider authenticates SaoY (``headers``) and what a refusal means (``_refusal``)."""

    #: The leader approves in the provider's app; SaoY waits (``submit``, ``outcome``).
    waits: bool = False

    def __init__(self, provider: Provider):
        self.provider = provider

    @abc.abstractmethod
    def credential(self, credential_id: str) -> Credential:
        """The credential's certificate, chain and rules."""

    def url(self, path: str) -> str:
        return f"{self.provider.url}/{path}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider.token}"} if self.provider.token \
            else {}

    def call(self, path: str, body: dict) -> dict:
        try:
            r = requests.post(self.url(path), json=body, headers=self.headers(),
                              timeout=self.provider.timeout)
        except requests.RequestException as exc:
            log.warning("remote %s %s: %r", self.provider.name, path, exc)
            raise RemoteSigningError(_("The remote signing service %(name)s does not answer: "
                                       "nothing was signed. Try again in a few minutes.",
                                       name=self.provider.name)) from None
        if r.status_code != HTTPStatus.OK:
            log.warning("remote %s %s: %s %s", self.provider.name, path, r.status_code,
                        r.text[:300])
            raise RemoteSigningError(self._refusal(path, r))
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RemoteSigningError(_("The remote signing service %(name)s answered "
                                       "something it should not: nothing was signed.",
                                       name=self.provider.name))
        return answer

    def _refusal(self, path: str, r: requests.Response) -> str:
        if r.status_code == HTTPStatus.NOT_FOUND:
            return _("The remote signing service %(name)s does not know this credential.",
                     name=self.provider.name)
        return _("The remote signing service %(name)s refused (%(status)s): nothing was "
                 "signed.", name=self.provider.name, status=r.status_code)


def _expired_authorisation(r: requests.Response) -> bool:
    try:
        said = r.json()
    except ValueError:
        return False
    text = f"{said.get('error', '')} {said.get('error_description', '')}".lower() \
        if isinstance(said, dict) else ""
    return "expired" in text


class CscClient(RemoteService):
    """The CSC API, v1 or v2 (``csc2+`` in the declaration): the leader's PIN or code
    authorises (a SAD), the provider signs the hashes in its answer."""

    def __init__(self, provider: Provider):
        super().__init__(provider)
        self.version = "v2" if provider.protocol == "csc2" else "v1"

    def url(self, path: str) -> str:
        return f"{self.provider.url}/csc/{self.version}/{path}"

    def _refusal(self, path: str, r: requests.Response) -> str:
        if path == "credentials/authorize" and r.status_code in REFUSED:
            return _("The remote signing service %(name)s refused the authorisation (a wrong "
                     "PIN or code, or it was declined): nothing was signed.",
                     name=self.provider.name)
        if path == "signatures/signHash" and r.status_code in REFUSED and \
                _expired_authorisation(r):
            return _("Your authorisation at the remote signing service %(name)s expired "
                     "before the signing: nothing more was signed. Sign again and approve "
                     "again.", name=self.provider.name)
        return super()._refusal(path, r)

    def _hashes(self, hashes: list[str], digest: str | None = None) -> dict[str, Any]:
        """The hashes as each version names them (v1 ``hash``/``hashAlgo``, v2
        ``hashes``/``hashAlgorithmOID``)."""
        oid = algos.DigestAlgorithmId(digest or "sha256").dotted
        if self.version == "v2":
            return {"hashes": hashes, "hashAlgorithmOID": oid}
        return {"hash": hashes, **({"hashAlgo": oid} if digest else {})}

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
            body.update(self._hashes(hashes))
        if approval.pin:
            body["PIN"] = approval.pin
        if approval.otp:
            body["OTP"] = approval.otp
        return self.call("credentials/authorize", body)["SAD"]

    def sign_hashes(self, credential_id: str, sad: str, hashes: list[str], digest: str,
                    mechanism: str) -> list[bytes]:
        answer = self.call("signatures/signHash", {
            "credentialID": credential_id, "SAD": sad, "signAlgo": mechanism,
            **self._hashes(hashes, digest)})
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


# --- asynchronous approval: the SmartCA shape ---------------------------------------------

#: How long a provider that says nothing gives the leader to approve.
DEFAULT_APPROVAL_SECONDS = 300
_TRANSACTION = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True)
class Pending:
    """A signing the provider waits for the leader to approve in its app."""

    transaction: str
    expires_at: dt.datetime  # naive UTC


@dataclass(frozen=True)
class Outcome:
    """What became of it: ``pending``, ``signed`` (with a signature per digest, in the
    order sent), ``refused`` or ``expired``."""

    state: str
    signatures: tuple[bytes, ...] = ()


class ApprovalClient(RemoteService):
    """Asynchronous approval in VNPT SmartCA's shape: ``credentials/get_certificate`` for
    the certificate, ``signatures/sign`` sends the hashes and gives a transaction the
    leader confirms in the app, ``signatures/sign/{id}/status`` says what became of it;
    SaoY authenticates with its client id and secret (``sp_id``/``sp_password``)."""

    waits = True
    #: The provider's words for a transaction's state, and what they mean here.
    STATES = {"waiting_for_signer_confirm": "pending", "pending": "pending",
              "signed": "signed", "success": "signed", "rejected": "refused",
              "refused": "refused", "cancelled": "refused", "expired": "expired"}

    def _auth(self) -> dict[str, str]:
        return {"sp_id": self.provider.client_id or "",
                "sp_password": self.provider.client_secret or ""}

    def credential(self, credential_id: str) -> Credential:
        data = self.call("credentials/get_certificate",
                         {**self._auth(), "user_id": credential_id}).get("data") or {}
        found = data.get("user_certificates") or []
        try:
            cert = base64.b64decode(found[0]["cert_data"])
            chain = found[0].get("chain_data") or {}
            more = tuple(base64.b64decode(chain[k]) for k in ("ca_cert", "root_cert")
                         if chain.get(k))
        except (IndexError, KeyError, TypeError, ValueError):
            raise RemoteSigningError(_("The remote signing service gave no certificate for "
                                       "this credential.")) from None
        return Credential(cert, more, hash_pinning=True, multisign=1)

    def submit(self, credential_id: str, digests: list[bytes], description: str) -> Pending:
        """Ask the provider to sign; the leader then approves (or refuses) in the app."""
        ours = secrets.token_hex(16)
        data = self.call("signatures/sign", {
            **self._auth(), "user_id": credential_id, "transaction_id": ours,
            "transaction_desc": description,
            "sign_files": [{"doc_id": f"{ours}-{i}", "file_type": "pdf", "sign_type": "hash",
                            "data_to_be_signed": d.hex()} for i, d in enumerate(digests)],
        }).get("data") or {}
        transaction = str(data.get("transaction_id") or "")
        if not _TRANSACTION.fullmatch(transaction):
            raise RemoteSigningError(_("The remote signing service %(name)s answered "
                                       "something it should not: nothing was signed.",
                                       name=self.provider.name))
        try:
            seconds = int(data.get("expired_in") or DEFAULT_APPROVAL_SECONDS)
        except (TypeError, ValueError):
            seconds = DEFAULT_APPROVAL_SECONDS
        return Pending(transaction, utcnow() + dt.timedelta(seconds=max(30, seconds)))

    def outcome(self, transaction: str) -> Outcome:
        if not _TRANSACTION.fullmatch(transaction or ""):
            raise RemoteSigningError(_("The remote signing service does not know this "
                                       "signing."))
        data = self.call(f"signatures/sign/{transaction}/status", self._auth()) \
            .get("data") or {}
        state = self.STATES.get(str(data.get("status") or "").lower())
        if state is None:
            raise RemoteSigningError(_("The remote signing service %(name)s answered "
                                       "something it should not: nothing was signed.",
                                       name=self.provider.name))
        if state != "signed":
            return Outcome(state)
        try:
            return Outcome(state, tuple(base64.b64decode(s["signature_value"])
                                        for s in data.get("signatures") or ()))
        except (KeyError, TypeError, ValueError):
            raise RemoteSigningError(_("The remote signing service returned no "
                                       "signature.")) from None

    def authentic_webhook(self, body: bytes, signature: str | None) -> bool:
        """The provider's call carries ``sha256=<hex>``, the HMAC-SHA256 of its body under
        the secret shared with this office's deployment; without a secret, none is taken."""
        secret = self.provider.webhook_secret
        if not secret or not signature:
            return False
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.strip())


#: The protocols a provider may be declared with (``name=<protocol>+https://…``).
PROTOCOLS: dict[str, type[RemoteService]] = {
    "csc": CscClient, "csc2": CscClient, "smartca": ApprovalClient,
}
