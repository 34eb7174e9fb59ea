"""Demo PKI for `make demo` and the tests: a root, a certificate per leader and per office.

Leader certificates carry digitalSignature + nonRepudiation (like real Vietnamese
end-entity certificates) and the identity in the subject UID ("CCCD:…"); seal
certificates are the organisation's.  Keys are written as PKCS#12 files under
SAOY_DATA_DIR/pki, protected by a passphrase kept beside them (demo only).
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_NAME = "SaoY Demo Root CA"


@dataclass(frozen=True)
class IssuedKey:
    p12_path: Path
    cert_pem_path: Path
    key_pem_path: Path  # unencrypted PKCS#8, for importing into SoftHSM in tests

    @property
    def cert_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem_path.read_bytes()).public_bytes(
            serialization.Encoding.DER)


def _name(cn: str, org: str | None = None, uid: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if uid:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, uid))
    return x509.Name(attrs)


class DemoPki:
    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.passphrase_file = self.dir / "passphrase"
        if not self.passphrase_file.exists():
            fd = os.open(self.passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        self.root_pem = self.dir / "demo-root.pem"
        self._root_key_path = self.dir / "demo-root.key"
        if not self.root_pem.exists():
            self._make_root()

    @property
    def passphrase(self) -> bytes:
        return self.passphrase_file.read_text().strip().encode()

    def _make_root(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(ROOT_NAME, "SaoY Demo"))
                .issuer_name(_name(ROOT_NAME, "SaoY Demo")).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        self._root_key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.passphrase)))
        os.chmod(self._root_key_path, 0o600)
        self.root_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _root(self):
        key = serialization.load_pem_private_key(self._root_key_path.read_bytes(),
                                                 self.passphrase)
        cert = x509.load_pem_x509_certificate(self.root_pem.read_bytes())
        return key, cert

    def issue_tsa(self, slug: str = "demo-tsa") -> IssuedKey:
        """A timestamping certificate (critical EKU timeStamping) for a local test TSA."""
        return self.issue(slug, "SaoY Demo TSA", "SaoY Demo", tsa=True)

    def issue(self, slug: str, common_name: str, organisation: str | None = None,
              uid: str | None = None, tsa: bool = False) -> IssuedKey:
        """Issue (once) a signing certificate; returns where its files are."""
        p12 = self.dir / f"{slug}.p12"
        cert_pem = self.dir / f"{slug}.pem"
        key_pem = self.dir / f"{slug}.key.pem"
        if p12.exists():
            return IssuedKey(p12, cert_pem, key_pem)
        root_key, root_cert = self._root()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(common_name, organisation, uid))
                .issuer_name(root_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3 * 365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.TIME_STAMPING] if tsa else
                    [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]),
                    critical=tsa)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    root_key.public_key()), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(root_key, hashes.SHA256()))
        p12.write_bytes(pkcs12.serialize_key_and_certificates(
            slug.encode(), key, cert, [root_cert],
            serialization.BestAvailableEncryption(self.passphrase)))
        os.chmod(p12, 0o600)
        cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        os.chmod(key_pem, 0o600)
        return IssuedKey(p12, cert_pem, key_pem)
