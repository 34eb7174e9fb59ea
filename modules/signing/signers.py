"""Signers chosen by configuration: PKCS#11 token/HSM, PKCS#12 file (demo).

Keys and PINs never come from the database: a signer profile names *where* the key
is (a PKCS#12 path, or a token label and key label); the passphrase or PIN comes
from the environment or a secret file (SAOY_PKCS11_PIN[_FILE],
SAOY_PKCS12_PASSPHRASE[_FILE]; in demo mode the demo PKI's own passphrase file).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pyhanko.sign import signers


class SignerUnavailableError(RuntimeError):
    """The configured key cannot be used right now (token missing, wrong PIN …)."""


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


@functools.lru_cache(maxsize=32)
def _pkcs12_signer(path: str, mtime: float, passphrase: bytes | None) -> CachedKeySigner:
    return load_pkcs12(Path(path).read_bytes(), passphrase)


def _secret(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value:
        return value
    path = config.get(f"{name}_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def pkcs12_passphrase(config: Mapping[str, Any]) -> bytes | None:
    secret = _secret(config, "PKCS12_PASSPHRASE")
    if secret is None:
        demo = Path(config["DATA_DIR"]) / "pki" / "passphrase"
        if demo.is_file():
            secret = demo.read_text().strip()
    return secret.encode() if secret else None


@contextlib.contextmanager
def open_signer(profile: Any, config: Mapping[str, Any]) -> Iterator[signers.Signer]:
    """A ready signer for a ``SignerProfile``; a PKCS#11 session is closed afterwards."""
    kind = profile.kind
    if kind == "pkcs12":
        try:
            path = Path(profile.pkcs12_path)
            signer = _pkcs12_signer(str(path), path.stat().st_mtime, pkcs12_passphrase(config))
        except (OSError, ValueError) as exc:
            raise SignerUnavailableError(f"PKCS#12 key unavailable: {exc}") from exc
        yield signer  # errors of the signing itself are the caller's, not "unavailable"
        return
    if kind == "pkcs11":
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

        lib = config.get("PKCS11_LIB")
        pin = _secret(config, "PKCS11_PIN")
        if not lib or pin is None:
            raise SignerUnavailableError("PKCS#11 library or PIN not configured")
        try:
            session = open_pkcs11_session(lib, token_criteria=TokenCriteria(
                label=profile.pkcs11_token_label), user_pin=pin)
        except Exception as exc:  # noqa: BLE001 - python-pkcs11 raises many kinds
            raise SignerUnavailableError(f"PKCS#11 token unavailable: {exc!r}") from exc
        try:
            yield PKCS11Signer(session, key_label=profile.pkcs11_key_label,
                               cert_label=profile.pkcs11_cert_label or profile.pkcs11_key_label)
        finally:
            session.close()
        return
    raise SignerUnavailableError(f"signer kind {kind!r} cannot sign on the server")
