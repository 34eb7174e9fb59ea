"""Signers for registered keys: a PKCS#12 file in the keystore, or a key on a declared
PKCS#11 token or HSM.

Keys and PINs never come from the database.  A PKCS#12 key lives in the keystore
(``SAOY_KEYSTORE_DIR``, outside the database) as ``<fingerprint>.p12``, encrypted with
a passphrase of its own kept beside it (``<fingerprint>.pass``, 0600) or given in the
environment as ``SAOY_KEY_PASSPHRASE_<first 16 hex digits of the fingerprint>``.  A
token is usable only when the administrator declared it (``SAOY_PKCS11_TOKENS``:
``label=pin file``), each with its own PIN.  Every signer checks, when it is opened,
that the certificate it holds is the one registered (the fingerprint): a swapped file
or token signs nothing.  Messages are for users and never carry a path or an OS error.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from pyhanko.sign import signers

log = logging.getLogger(__name__)


class SignerUnavailableError(RuntimeError):
    """The registered key cannot be used right now (token missing, wrong PIN, file
    unreadable, certificate swapped…); str() is a sentence for the user."""


class CachedKeySigner(signers.SimpleSigner):
    """pyHanko's SimpleSigner re-parses (and re-validates) the RSA key on every
    signature (≈ 40 ms); this one parses it once."""

    _cached_key = None

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if self._cached_key is None:
            from cryptography.hazmat.primitives import serialization

            self._cached_key = serialization.load_der_private_key(
                self.signing_key.dump(), password=None)
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algo = mechanism.signature_algo
        if algo != "rsassa_pkcs1v15":
            return super().sign_raw(data, digest_algorithm)
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        hash_algo = getattr(hashes, mechanism.hash_algo.upper())()
        return self._cached_key.sign(data, padding.PKCS1v15(), hash_algo)


def load_pkcs12(data: bytes, passphrase: bytes | None) -> CachedKeySigner:
    plain = signers.SimpleSigner.load_pkcs12_data(data, [], passphrase)
    return CachedKeySigner(signing_key=plain.signing_key, signing_cert=plain.signing_cert,
                           cert_registry=plain.cert_registry,
                           signature_mechanism=plain.signature_mechanism)


@functools.lru_cache(maxsize=64)
def _pkcs12_signer(path: str, mtime: float, passphrase: bytes) -> CachedKeySigner:
    return load_pkcs12(Path(path).read_bytes(), passphrase)


def keystore_dir(config: Mapping[str, Any]) -> Path:
    return Path(config["KEYSTORE_DIR"])


def keystore_paths(config: Mapping[str, Any], fingerprint: str) -> tuple[Path, Path]:
    folder = keystore_dir(config)
    return folder / f"{fingerprint}.p12", folder / f"{fingerprint}.pass"


def passphrase_env(fingerprint: str) -> str:
    return f"SAOY_KEY_PASSPHRASE_{fingerprint[:16].upper()}"


def _passphrase(config: Mapping[str, Any], fingerprint: str) -> bytes:
    from_env = os.environ.get(passphrase_env(fingerprint))
    if from_env:
        return from_env.encode()
    return keystore_paths(config, fingerprint)[1].read_bytes().strip()


def token_pin(config: Mapping[str, Any], label: str | None) -> str | None:
    """The PIN of a declared token (None: the token was not declared)."""
    pin_file = (config.get("PKCS11_TOKENS") or {}).get(label or "")
    if not pin_file:
        return None
    try:
        return Path(pin_file).read_text().strip()
    except OSError as exc:
        log.warning("PIN file of token %r unreadable: %s", label, exc)
        raise SignerUnavailableError(_("The PIN of the token is not available on the "
                                       "server.")) from None


@contextlib.contextmanager
def token_session(config: Mapping[str, Any], label: str | None) -> Iterator[Any]:
    """A logged-in session on a declared token (closed afterwards)."""
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import open_pkcs11_session

    lib, pin = config.get("PKCS11_LIB"), token_pin(config, label)
    if not lib or pin is None:
        raise SignerUnavailableError(_("This token is not declared on the server."))
    try:
        session = open_pkcs11_session(lib, token_criteria=TokenCriteria(label=label),
                                      user_pin=pin)
    except Exception as exc:  # noqa: BLE001 - python-pkcs11 raises many kinds
        log.warning("token %r unavailable: %r", label, exc)
        raise SignerUnavailableError(_("The token is not connected or its PIN was "
                                       "refused.")) from None
    try:
        yield session
    finally:
        session.close()


def fingerprint_of(signer: signers.Signer) -> str:
    return hashlib.sha256(signer.signing_cert.dump()).hexdigest()


@contextlib.contextmanager
def open_signer(key: Any, config: Mapping[str, Any], approval: Any = None,
                signatures: int = 1) -> Iterator[signers.Signer]:
    """A ready signer for a registered ``SigningKey``, after checking that it holds the
    registered certificate.  A remote key signs under the leader's ``approval`` (PIN or
    code for the provider), authorised for ``signatures`` signatures where it may be."""
    kind = getattr(key.kind, "value", key.kind)
    if kind == "remote":
        yield _remote_signer(key, config, approval, signatures)
        return
    if kind == "pkcs12":
        path = keystore_paths(config, key.fingerprint)[0]
        try:
            signer = _pkcs12_signer(str(path), path.stat().st_mtime,
                                    _passphrase(config, key.fingerprint))
        except (OSError, ValueError) as exc:
            log.warning("key %s (%s) cannot be opened: %r", key.id, key.fingerprint, exc)
            raise SignerUnavailableError(_("The key file cannot be opened on the server: "
                                           "ask the system administrator.")) from None
        _check_fingerprint(signer, key)
        yield signer  # errors of the signing itself are the caller's, not "unavailable"
        return
    if kind == "pkcs11":
        from pyhanko.sign.pkcs11 import PKCS11Signer

        with token_session(config, key.token_label) as session:
            signer = PKCS11Signer(session, key_label=key.key_label,
                                  cert_label=key.cert_label or key.key_label)
            try:
                _check_fingerprint(signer, key)
            except SignerUnavailableError:
                raise
            except Exception as exc:  # noqa: BLE001 - the key or certificate is not there
                log.warning("key %s not found on token %r: %r", key.id, key.token_label, exc)
                raise SignerUnavailableError(_("The key is not on the token.")) from None
            yield signer
        return
    raise SignerUnavailableError(_("This key signs with the signing agent on the leader's own "
                                   "computer, not on the server."))


def _remote_signer(key: Any, config: Mapping[str, Any], approval: Any,
                   signatures: int) -> signers.Signer:
    from modules.signing import remote

    provider = remote.providers(config).get(key.remote_provider or "")
    if provider is None:
        raise SignerUnavailableError(_("The remote signing service of this key is no longer "
                                       "declared on the server: ask the system "
                                       "administrator."))
    client = remote.service(provider)
    if client.waits:  # approved in the provider's app: the request waits (``approvals``)
        raise SignerUnavailableError(_("This key is approved in your provider's app: press "
                                       "Sign digitally and approve there."))
    try:
        credential = client.credential(key.remote_credential)
    except remote.RemoteSigningError as exc:
        raise SignerUnavailableError(str(exc)) from None
    signer = remote.CscSigner(client, key.remote_credential, credential,
                              approval or remote.Approval(), signatures)
    _check_fingerprint(signer, key)  # the provider's certificate is the registered one
    return signer


def _check_fingerprint(signer: signers.Signer, key: Any) -> None:
    if fingerprint_of(signer) != key.fingerprint:
        log.error("key %s: the certificate found is not the registered one", key.id)
        raise SignerUnavailableError(_("The key does not hold the certificate that was "
                                       "registered for it."))
