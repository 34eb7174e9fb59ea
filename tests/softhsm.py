"""A SoftHSM2 token made by the test itself (no global state): key + certificate."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

LIB_CANDIDATES = ["/usr/lib/softhsm/libsofthsm2.so",
                  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]


def softhsm_lib() -> str | None:
    return next((p for p in LIB_CANDIDATES if Path(p).exists()), None)


def make_token(directory: Path, label: str, key_pem: Path, cert_pem: Path, key_label: str,
               pin: str = "123456") -> dict[str, str]:
    """Create a token holding one key and its certificate; returns the env to use it."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                    "--so-pin", "12345678"], check=True, capture_output=True, env=env)
    add_key(env, label, key_pem, cert_pem, key_label, "01", pin)
    return {"SOFTHSM2_CONF": str(conf)}


def add_key(env: dict[str, str], label: str, key_pem: Path, cert_pem: Path, key_label: str,
            key_id: str, pin: str = "123456") -> None:
    """Put one more key and its certificate on a token made by ``make_token``."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, env=env)  # noqa: E731
    run("softhsm2-util", "--import", str(key_pem), "--token", label, "--label", key_label,
        "--id", key_id, "--pin", pin)
    der = Path(str(cert_pem) + ".der")
    subprocess.run(["openssl", "x509", "-in", str(cert_pem), "-outform", "DER", "-out",
                    str(der)], check=True, capture_output=True)
    run("pkcs11-tool", "--module", softhsm_lib(), "--token-label", label, "--login", "--pin",
        pin, "--write-object", str(der), "--type", "cert", "--label", key_label, "--id", key_id)
