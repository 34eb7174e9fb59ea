"""Real peers on loopback for the notification tests: an SMS gateway and an SMTP server."""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GatewayRequest:
    body: dict
    headers: dict


@dataclass
class SmsGateway:
    """A Vietnamese-style SMS gateway: POST JSON {phone, text, id}.

    ``script`` is consumed one entry per request: an int status, or ("sleep", s)
    to hold the response, or ("hold", event) to wait until the event is set.
    When the script is empty, answers 200.
    """

    script: list = field(default_factory=list)
    requests: list[GatewayRequest] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with gateway.lock:
                    gateway.requests.append(GatewayRequest(body, dict(self.headers)))
                    step = gateway.script.pop(0) if gateway.script else 200
                gateway.received.set()
                if isinstance(step, tuple) and step[0] == "sleep":
                    time.sleep(step[1])
                    step = 200
                elif isinstance(step, tuple) and step[0] == "hold":
                    step[1].wait(30)
                    step = 200
                payload = json.dumps({"message_id": f"gw-{len(gateway.requests)}"}).encode()
                try:
                    self.send_response(step)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        with self.lock:
            return [r.body.get("id") for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """aiosmtpd on loopback; ``messages`` are parsed e-mails."""

    def __init__(self, port: int | None = None):
        from aiosmtpd.controller import Controller

        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                outer.messages.append(message_from_bytes(envelope.original_content,
                                                         policy=policy.default))
                return "250 OK"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self):
        self.controller.stop()


class TsaServer:
    """An RFC 3161 timestamp authority on loopback, around pyHanko's DummyTimeStamper."""

    def __init__(self, cert_pem: str, key_pem: str, chain_pem: str):
        from asn1crypto import keys, pem, tsp
        from asn1crypto import x509 as ax
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

        def load(path):
            return pem.unarmor(open(path, "rb").read())[2]

        cert = ax.Certificate.load(load(cert_pem))
        key = keys.PrivateKeyInfo.load(load(key_pem))
        root = ax.Certificate.load(load(chain_pem))
        stamper = DummyTimeStamper(cert, key, certs_to_embed=[cert, root])
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                response = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(response)))
                self.end_headers()
                self.wfile.write(response)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
