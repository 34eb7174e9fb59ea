"""The tests' PKI with real OCSP, CRL and TSA services on loopback (modules/signing/
served_pki.py, certomancer): a good and a revoked certificate for a seal and a leader,
and two TSAs (the second outlives the first, for the archive renewal)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from modules.signing.served_pki import Holder, ServedPki, Validity

REVOKED = "2026-01-02T00:00:00+00:00"
VALIDITY = Validity(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                    {"tsa": dt.datetime(2040, 1, 1, tzinfo=dt.UTC),
                     "tsa2": dt.datetime(2070, 1, 1, tzinfo=dt.UTC)})


class TestPki(ServedPki):
    def roots_folder(self) -> Path:
        """The trust folder an administrator would configure (SAOY_TRUST_DIR)."""
        folder = self.folder / "trust"
        folder.mkdir(exist_ok=True)
        for label in ("root", "interm"):
            (folder / f"{label}.pem").write_bytes(self._pem(label))
        return folder


def make_pki(folder: Path, port: int, office_name: str, leader_name: str,
             leader_office: str) -> TestPki:
    holders = [Holder(f"seal-{state}", office_name, office_name,
                      revoked_since=REVOKED if state == "revoked" else None)
               for state in ("good", "revoked")]
    holders += [Holder(f"leader-{state}", leader_name, leader_office,
                       revoked_since=REVOKED if state == "revoked" else None)
                for state in ("good", "revoked")]
    made = ServedPki.make(folder, f"http://127.0.0.1:{port}", holders, VALIDITY)
    return TestPki(made.folder, made.url)
