"""A test PKI with real OCSP, CRL and TSA services on loopback: certomancer (the tool
pyHanko's own integration tests animate), started as its own process.

The keys are made here; certomancer issues the certificates from its configuration —
the same bytes in this process (to register keys) and in the server (to answer OCSP and
CRL requests about them): its issuance is deterministic for a given configuration."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import load_der_x509_certificate

ARCH = "saoy-test"
KEYS = ("root", "interm", "interm-ocsp", "tsa", "tsa2", "seal-good", "seal-revoked", "leader-good",
        "leader-revoked")
REVOKED = '''        revocation:
          revoked-since: "2026-01-02T00:00:00+0000"
          reason: key_compromise
'''


def _leaf(issuer: str, subject: str, extra: str = "") -> str:
    return f"""
      {subject}:
        issuer: {issuer}
        validity:
          valid-from: "2025-01-01T00:00:00+0000"
          valid-to: "2030-01-01T00:00:00+0000"
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
{extra}"""


def config(prefix: str, office_name: str, leader_name: str, leader_office: str) -> str:
    keys = "\n".join(f"      {k}:\n        path: {k}.key.pem" for k in KEYS)
    return f"""external-url-prefix: "{prefix}"
keysets:
  {ARCH}:
    keys:
{keys}
pki-architectures:
  {ARCH}:
    keyset: {ARCH}
    entity-defaults:
      country-name: VN
      organization-name: "SaoY Test CA"
    entities:
      root: {{common-name: "SaoY Test Root CA"}}
      interm: {{common-name: "SaoY Test Issuing CA"}}
      interm-ocsp: {{common-name: "SaoY Test OCSP"}}
      tsa: {{common-name: "SaoY Test TSA"}}
      tsa2: {{common-name: "SaoY Test TSA 2"}}
      seal-good: {{common-name: "{office_name}", organization-name: "{office_name}"}}
      seal-revoked: {{common-name: "{office_name}", organization-name: "{office_name}"}}
      leader-good: {{common-name: "{leader_name}", organization-name: "{leader_office}"}}
      leader-revoked: {{common-name: "{leader_name}", organization-name: "{leader_office}"}}
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
      tsa:
        issuer: root
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: "2040-01-01T00:00:00+0000"
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - id: extended_key_usage
            critical: true
            value: [time_stamping]
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      tsa2:
        template: tsa
        subject: tsa2
        subject-key: tsa2
        validity:
          valid-from: "2020-01-01T00:00:00+0000"
          valid-to: "2070-01-01T00:00:00+0000"
{_leaf("interm", "seal-good")}{_leaf("interm", "leader-good")}{_leaf(
        "interm", "seal-revoked", REVOKED)}{_leaf("interm", "leader-revoked", REVOKED)}
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
        tsa:
          signing-key: tsa
          signing-cert: tsa
        tsa2:
          signing-key: tsa2
          signing-cert: tsa2
"""


@dataclass
class TestPki:
    folder: Path
    url: str
    process: subprocess.Popen | None = None

    def arch(self):
        from certomancer.registry import ArchLabel, CertomancerConfig

        return CertomancerConfig.from_file(str(self.folder / "certomancer.yml")) \
            .get_pki_arch(ArchLabel(ARCH))

    def cert_der(self, label: str) -> bytes:
        from certomancer.registry import CertLabel

        return self.arch().get_cert(CertLabel(label)).dump()

    def p12(self, label: str, passphrase: bytes = b"test") -> bytes:
        """The key with its certificate and chain, as an administrator would import it."""
        key = serialization.load_pem_private_key(
            (self.folder / f"{label}.key.pem").read_bytes(), None)
        return pkcs12.serialize_key_and_certificates(
            label.encode(), key, load_der_x509_certificate(self.cert_der(label)),
            [load_der_x509_certificate(self.cert_der(c)) for c in ("interm", "root")],
            serialization.BestAvailableEncryption(passphrase))

    def roots_folder(self) -> Path:
        """The trust folder an administrator would configure (SAOY_TRUST_DIR)."""
        folder = self.folder / "trust"
        folder.mkdir(exist_ok=True)
        for label in ("root", "interm"):
            cert = load_der_x509_certificate(self.cert_der(label))
            (folder / f"{label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return folder

    def tsa_url(self, label: str = "tsa") -> str:
        return f"{self.url}/{ARCH}/tsa/{label}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def start(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "certomancer", "--config", str(self.folder / "certomancer.yml"),
             "animate", "--port", str(port), "--no-web-ui"],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return
            time.sleep(0.1)
        raise RuntimeError("certomancer did not start")


def make_pki(folder: Path, port: int, office_name: str, leader_name: str,
             leader_office: str) -> TestPki:
    folder.mkdir(parents=True, exist_ok=True)
    for label in KEYS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (folder / f"{label}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    url = f"http://127.0.0.1:{port}"
    (folder / "certomancer.yml").write_text(
        config(url, office_name, leader_name, leader_office), encoding="utf-8")
    return TestPki(folder, url)


@contextlib.contextmanager
def running(pki: TestPki) -> Iterator[TestPki]:
    pki.start()
    try:
        yield pki
    finally:
        pki.stop()
