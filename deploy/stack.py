"""A SaoY stack on loopback as docs/admin.md installs it — a fresh PostgreSQL database,
gunicorn with deploy/gunicorn.conf.py, a jobs worker, nginx with a self-signed
certificate — for `make deploy-check` and the end-to-end benchmarks."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import urllib3
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
urllib3.disable_warnings()
PG = os.environ.get("SAOY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BIN = Path(sys.executable).parent


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(text_: str) -> None:
    print(f"  • {text_}", flush=True)


class Stack:
    def __init__(self, prefix: str = "saoy-deploy-"):
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.app_port, self.http_port, self.https_port = port(), port(), port()
        self.databases: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.base = f"https://127.0.0.1:{self.https_port}"

    # --- setup ------------------------------------------------------------------------
    def database(self) -> str:
        name = f"saoy_deploy_{uuid.uuid4().hex[:10]}"
        admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.databases.append(name)
        return make_url(PG).set(database=name).render_as_string(hide_password=False)

    def env(self, url: str, data: Path) -> dict[str, str]:
        return {**os.environ, "SAOY_DATABASE_URL": url, "SAOY_DATA_DIR": str(data),
                "SAOY_BASE_URL": self.base, "SAOY_PROXY_FIX": "1", "SAOY_SCHEDULER": "0",
                "SAOY_DEMO": "1", "SAOY_BIND": f"127.0.0.1:{self.app_port}",
                "SAOY_WORKERS": "2", "SAOY_LOGIN_RATE_LIMIT": "1000 per minute",
                "SAOY_VERIFY_RATE_LIMIT": "1000 per minute", "SAOY_UPDATE_PERMS": "0"}

    def saoy(self, env, *args) -> str:
        result = subprocess.run([str(BIN / "saoy"), *args], env=env, cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"saoy {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def install(self, env: dict[str, str]) -> None:
        """docs/admin.md steps 2–3 (demo offices and keys instead of real ones)."""
        self.saoy(env, "db", "upgrade")
        (self.work / "admin.pw").write_text("Deploy-Admin-2026!")
        self.saoy(env, "init", "--admin", "root", "--admin-password-file",
                  str(self.work / "admin.pw"))
        self.saoy(env, "demo-data")

    def serve(self, env: dict[str, str], *, worker: bool = True) -> None:
        """docs/admin.md step 4: gunicorn with the shipped configuration, a jobs worker."""
        self.start([str(BIN / "gunicorn"), "--config", str(ROOT / "deploy" / "gunicorn.conf.py")],
                   env, "gunicorn")
        if worker:
            self.start([str(BIN / "saoy"), "worker"], env, "worker")

    def certificate(self) -> tuple[Path, Path]:
        cert, key = self.work / "tls.crt", self.work / "tls.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        return cert, key

    def nginx(self) -> None:
        cert, key = self.certificate()
        site = (ROOT / "deploy" / "nginx" / "saoy.conf").read_text()
        for marker, value in {"__SERVER_NAME__": "127.0.0.1", "__TLS_CERT__": str(cert),
                              "__TLS_KEY__": str(key), "__STATIC__": str(ROOT / "app" / "static"),
                              "__FAB_STATIC__": str(self.fab_static_folder()),
                              "__ERRORS__": str(ROOT / "deploy" / "errors"),
                              "__UPSTREAM__": f"127.0.0.1:{self.app_port}",
                              "__HTTP_PORT__": str(self.http_port),
                              "__HTTPS_PORT__": str(self.https_port)}.items():
            site = site.replace(marker, value)
        (self.work / "site.conf").write_text(site)
        (self.work / "logs").mkdir()
        os.chmod(self.work, 0o711)  # nginx's workers run as www-data: they need their temps
        for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.work / temp).mkdir()
            os.chmod(self.work / temp, 0o777)
        (self.work / "nginx.conf").write_text(f"""
pid {self.work}/nginx.pid;
error_log {self.work}/logs/error.log;
events {{ worker_connections 256; }}
http {{
  include /etc/nginx/mime.types;
  access_log {self.work}/logs/access.log;
  client_body_temp_path {self.work}/body; proxy_temp_path {self.work}/proxy;
  fastcgi_temp_path {self.work}/fastcgi; uwsgi_temp_path {self.work}/uwsgi;
  scgi_temp_path {self.work}/scgi;
  include {self.work}/site.conf;
}}
""")
        self.start(["nginx", "-p", str(self.work), "-c", str(self.work / "nginx.conf"), "-g",
                    "daemon off;"], os.environ.copy(), "nginx")

    def fab_static_folder(self) -> Path:
        """FAB's static files live in its package: nginx serves them from there."""
        import flask_appbuilder

        return Path(flask_appbuilder.__file__).parent / "static"

    def start(self, command, env, name) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def wait(self, url: str, seconds: float = 60) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if requests.get(url, verify=False, timeout=2).status_code < 502:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{url} did not answer: see {self.work}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def login(base, username) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a CA bundle in the environment would override verify
    session.verify = False  # the loopback certificate is self-signed
    r = session.post(f"{base}/api/v1/security/login", json={
        "username": username, "password": "saoy-demo", "provider": "db"}, timeout=30)
    r.raise_for_status()
    session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return session


def expect(response: requests.Response, status: int, what: str):
    if response.status_code != status:
        raise SystemExit(f"{what}: {response.status_code} {response.text[:400]}")
    return response
