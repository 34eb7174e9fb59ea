"""A PKI whose OCSP responder, CRLs and timestamp service really answer, on loopback:
certomancer (the tool pyHanko's own integration tests animate), run as its own process.

`make demo` uses it so that demo copies are complete (revocation checked at signing,
B-LTA at delivery); the tests and the benchmarks use it with revoked certificates too.
The keys are made here; certomancer issues the certificates from its configuration —
the same bytes in this process (to register keys) and in the server (to answer OCSP and
CRL requests about them), because its issuance is deterministic for a configuration.
Demo and test tooling only: certomancer is a development requirement."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import load_der_x509_certificate

from modules.signing.pki import IssuedKey

ARCH = "saoy"
CONFIG = "certomancer.yml"
#: The authorities every served PKI has: a root, an issuing CA and its OCSP responder.
AUTHORITIES = ("root", "interm", "interm-ocsp")


def demo_folder(data_dir: str | os.PathLike[str]) -> Path:
    """Where `make demo` keeps its served PKI (keys, configuration, PKCS#12 files)."""
    return Path(data_dir) / "pki" / "served"


def wait_listening(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    """Return once something answers on the loopback ``port``; raise if ``process`` ends
    or the time runs out first."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the served PKI did not start")
        time.sleep(0.1)


def tsa_url(url: str, label: str = "tsa") -> str:
    """Where the served PKI at ``url`` stamps with its TSA ``label``."""
    return f"{url.rstrip('/')}/{ARCH}/tsa/{label}"


@dataclass(frozen=True)
class Holder:
    """A signing certificate's subject; ``revoked_since`` (ISO instant) for a revoked one."""

    label: str
    common_name: str
    organisation: str | None = None
    uid: str | None = None
    revoked_since: str | None = None


@dataclass(frozen=True)
class Validity:
    """When the end-entity certificates are valid, and each TSA's certificate's end."""

    leaf_from: dt.datetime
    leaf_to: dt.datetime
    tsas: dict[str, dt.datetime] = field(default_factory=dict)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime('"%Y-%m-%dT%H:%M:%S+0000"')


def _name(holder: Holder) -> str:
    parts = [f'common-name: "{holder.common_name}"']
    if holder.organisation:
        parts.append(f'organization-name: "{holder.organisation}"')
    if holder.uid:
        parts.append(f'user-id: "{holder.uid}"')
    return "{" + ", ".join(parts) + "}"


def _leaf(holder: Holder, validity: Validity) -> str:
    revoked = "" if holder.revoked_since is None else f"""        revocation:
          revoked-since: {_when(dt.datetime.fromisoformat(holder.revoked_since))}
          reason: key_compromise
"""
    return f"""      {holder.label}:
        issuer: interm
        validity:
          valid-from: {_when(validity.leaf_from)}
          valid-to: {_when(validity.leaf_to)}
        extensions:
          - id: key_usage
            critical: true
            smart-value:
              schema: key-usage
              params: [digital_signature, non_repudiation]
          - id: crl_distribution_points
            smart-value:
              schema: crl-dist-url
              params: {{crl-repo-names: [interm]}}
          - id: authority_information_access
            smart-value:
              schema: aia-urls
              params: {{ocsp-responder-names: [interm]}}
{revoked}"""


def _tsa(label: str, until: dt.datetime) -> str:
    return f"""      {label}:
        issuer: root
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: {_when(until)}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - id: extended_key_usage
            critical: true
            value: [time_stamping]
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
"""


def config(url: str, holders: Iterable[Holder], validity: Validity, *,
           organisation: str = "SaoY Test CA") -> str:
    """certomancer's configuration: root → issuing CA (OCSP + CRL) → the holders; TSAs
    under the root (CRL)."""
    holders = list(holders)
    labels = [*AUTHORITIES, *validity.tsas, *(h.label for h in holders)]
    keys = "\n".join(f"      {k}:\n        path: {k}.key.pem" for k in labels)
    names = "\n".join(f"      {h.label}: {_name(h)}" for h in holders)
    tsa_names = "\n".join(f'      {t}: {{common-name: "{organisation} TSA {t}"}}'
                          for t in validity.tsas)
    stamping = "\n".join(f"        {t}:\n          signing-key: {t}\n          signing-cert: {t}"
                         for t in validity.tsas)
    return f"""external-url-prefix: "{url}"
keysets:
  {ARCH}:
    keys:
{keys}
pki-architectures:
  {ARCH}:
    keyset: {ARCH}
    entity-defaults:
      country-name: VN
      organization-name: "{organisation}"
    entities:
      root: {{common-name: "{organisation} Root"}}
      interm: {{common-name: "{organisation} Issuing CA"}}
      interm-ocsp: {{common-name: "{organisation} OCSP"}}
{tsa_names}
{names}
    certs:
      root:
        subject: root
        issuer: root
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: "2060-01-01T00:00:00+0000"
        extensions:
          - id: basic_constraints
            critical: true
            value: {{ca: true}}
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, key_cert_sign, crl_sign]}}
      interm:
        issuer: root
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: "2050-01-01T00:00:00+0000"
        extensions:
          - id: basic_constraints
            critical: true
            value: {{ca: true, path-len-constraint: 0}}
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, key_cert_sign, crl_sign]}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      interm-ocsp:
        issuer: interm
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: "2050-01-01T00:00:00+0000"
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - id: extended_key_usage
            critical: true
            value: [ocsp_signing]
          - id: ocsp_no_check
{"".join(_tsa(t, until) for t, until in validity.tsas.items())}\
{"".join(_leaf(h, validity) for h in holders)}\
    services:
      ocsp:
        interm:
          for-issuer: interm
          responder-cert: interm-ocsp
          signing-key: interm-ocsp
      crl-repo:
        root:
          for-issuer: root
          signing-key: root
          simulated-update-schedule: "P90D"
        interm:
          for-issuer: interm
          signing-key: interm
          simulated-update-schedule: "P7D"
      time-stamping:
{stamping}
"""


@dataclass
class ServedPki:
    """The folder holding the keys and certomancer's configuration, and where it answers."""

    folder: Path
    url: str
    process: subprocess.Popen | None = None

    @classmethod
    def make(cls, folder: Path, url: str, holders: Iterable[Holder], validity: Validity,
             **options: str) -> ServedPki:
        """Keys for every entity and the configuration — once: an existing folder is reused,
        so certificates already registered stay the same."""
        folder.mkdir(parents=True, exist_ok=True)
        holders = list(holders)
        if not (folder / CONFIG).exists():
            for label in [*AUTHORITIES, *validity.tsas, *(h.label for h in holders)]:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                path = folder / f"{label}.key.pem"
                path.write_bytes(key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
                os.chmod(path, 0o600)
            (folder / CONFIG).write_text(config(url, holders, validity, **options),
                                         encoding="utf-8")
        return cls(folder, url)

    def arch(self):
        from certomancer.registry import ArchLabel, CertomancerConfig

        return CertomancerConfig.from_file(str(self.folder / CONFIG)) \
            .get_pki_arch(ArchLabel(ARCH))

    def cert_der(self, label: str) -> bytes:
        from certomancer.registry import CertLabel

        return self.arch().get_cert(CertLabel(label)).dump()

    def _pem(self, label: str) -> bytes:
        return load_der_x509_certificate(self.cert_der(label)).public_bytes(
            serialization.Encoding.PEM)

    def p12(self, label: str, passphrase: bytes = b"test") -> bytes:
        """The key with its certificate and chain, as an administrator would import it."""
        key = serialization.load_pem_private_key(
            (self.folder / f"{label}.key.pem").read_bytes(), None)
        return pkcs12.serialize_key_and_certificates(
            label.encode(), key, load_der_x509_certificate(self.cert_der(label)),
            [load_der_x509_certificate(self.cert_der(c)) for c in ("interm", "root")],
            serialization.BestAvailableEncryption(passphrase))

    def issue(self, label: str, passphrase: bytes) -> IssuedKey:
        """The files DemoPki.issue writes, for a holder of this PKI."""
        p12 = self.folder / f"{label}.p12"
        if not p12.exists():
            p12.write_bytes(self.p12(label, passphrase))
            os.chmod(p12, 0o600)
            (self.folder / f"{label}.pem").write_bytes(self._pem(label))
        return IssuedKey(p12, self.folder / f"{label}.pem", self.folder / f"{label}.key.pem")

    def trust_file(self, path: Path) -> Path:
        """The root and the issuing CA in one PEM file, as SAOY_TRUST_DIR would hold them."""
        path.write_bytes(self._pem("root") + self._pem("interm"))
        return path

    def tsa_url(self, label: str = "tsa") -> str:
        return tsa_url(self.url, label)

    def crl_url(self, issuer: str) -> str:
        return f"{self.url}/{ARCH}/crls/{issuer}/latest.crl"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def command(self) -> list[str]:
        return [sys.executable, "-m", "certomancer", "--config", str(self.folder / CONFIG),
                "animate", "--port", str(self.port), "--no-web-ui"]

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), cwd=self.folder,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def demo(folder: Path, url: str, holders: Iterable[Holder]) -> tuple[ServedPki, bytes]:
    """The demo's served PKI (leaf certificates for three years from today, a TSA for
    fifteen) and the passphrase of its key files (kept beside them: demo only)."""
    now = dt.datetime.now(dt.UTC)
    pki = ServedPki.make(folder, url, holders, Validity(
        now - dt.timedelta(days=1), now + dt.timedelta(days=3 * 365),
        {"tsa": now + dt.timedelta(days=15 * 365)}), organisation="SaoY Demo")
    passphrase_file = folder / "passphrase"
    if not passphrase_file.exists():
        passphrase_file.write_text(secrets.token_urlsafe(24))
        os.chmod(passphrase_file, 0o600)
    return pki, passphrase_file.read_text().strip().encode()
