"""The signing agent ("plugin ký số"): runs on the leader's computer beside the token.

It logs in to SaoY as the leader, registers the token's certificate, then polls
for signing jobs, signs each job's CMS signed attributes with the token's key
(PKCS#11, RSA PKCS#1 v1.5 with SHA-256) and posts the signature back.  The
private key never leaves the token; the server never sees the PIN.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import requests


@dataclass
class AgentConfig:
    server: str
    username: str
    password: str
    pkcs11_lib: str
    token_label: str
    key_label: str
    pin: str
    timeout: float = 20


class SigningAgent:
    def __init__(self, config: AgentConfig, http: requests.Session | None = None):
        self.config = config
        self.http = http or requests.Session()
        self.token: str | None = None

    def _url(self, path: str) -> str:
        return self.config.server.rstrip("/") + path

    def login(self) -> None:
        r = self.http.post(self._url("/api/v1/security/login"), timeout=self.config.timeout,
                           json={"username": self.config.username,
                                 "password": self.config.password, "provider": "db"})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def _with_token(self, action):
        import pkcs11

        lib = pkcs11.lib(self.config.pkcs11_lib)
        token = lib.get_token(token_label=self.config.token_label)
        with token.open(user_pin=self.config.pin) as session:
            return action(session)

    def certificate_der(self) -> bytes:
        from pkcs11 import Attribute, ObjectClass

        def read(session):
            cert = next(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                             Attribute.LABEL: self.config.key_label}))
            return bytes(cert[Attribute.VALUE])

        return self._with_token(read)

    def register(self) -> None:
        r = self.http.post(self._url("/api/v1/signing_job/certificate"),
                           timeout=self.config.timeout,
                           json={"certificate": base64.b64encode(self.certificate_der()).decode()})
        r.raise_for_status()

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism, ObjectClass

        def do(session):
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                  label=self.config.key_label)
            return key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)

        return self._with_token(do)

    def run_once(self) -> int:
        """Sign every pending job once; returns how many were signed."""
        r = self.http.get(self._url("/api/v1/signing_job/"), timeout=self.config.timeout)
        r.raise_for_status()
        done = 0
        for job in r.json()["result"]:
            signature = self.sign(base64.b64decode(job["data_to_sign"]))
            answer = self.http.post(self._url(f"/api/v1/signing_job/{job['id']}/signature"),
                                    timeout=self.config.timeout,
                                    json={"signature": base64.b64encode(signature).decode()})
            if answer.status_code in (409, 422):
                continue  # refused by the server (the request moved on): nothing to retry
            answer.raise_for_status()
            done += 1
        return done

    def run_forever(self, interval: float = 3.0) -> None:
        while True:
            try:
                self.run_once()
            except requests.RequestException:
                pass  # the server is unreachable for now: try again
            time.sleep(interval)
