"""The whole OpenAPI spec fuzzed by schemathesis (a real HTTP server, each role's token):
no input makes any endpoint answer with a server error.  Bounded: a few examples per
operation and a fixed seed, so `make test` stays quick and repeatable."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import build_app, migrate_and_seed
from tests.servers import free_port

ROLES = ("admin", "officeadmin.a", "officer.a", "leader.a", "clerk.a", "supervisor",
         "citizen", None)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz")
    app = build_app(f"sqlite:///{data / 'fuzz.db'}", data)
    migrate_and_seed(app)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = app.test_client()

    def token(username):
        return client.post("/api/v1/security/login", json={
            "username": username, "password": "saoy-demo", "provider": "db"}).get_json()[
            "access_token"]

    spec = client.get("/api/v1/_openapi", headers={
        "Authorization": f"Bearer {token('admin')}"}).get_json()
    path = data / "openapi.json"
    path.write_text(json.dumps(spec))
    yield {"url": f"http://127.0.0.1:{port}", "spec": path, "token": token}
    server.shutdown()


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_no_input_makes_the_api_fail(served, role):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    headers = ["-H", f"Authorization: Bearer {served['token'](role)}"] if role else []
    result = subprocess.run(
        [cli, "run", str(served["spec"]), "--url", served["url"], *headers,
         "--checks", "not_a_server_error", "--max-examples", "6", "--workers", "1",
         "--exclude-path-regex", "security", "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=600)
    failures = [line for line in result.stdout.splitlines()
                if line.strip().startswith("curl") or "Server error" in line]
    assert result.returncode == 0, "\n".join(failures) or result.stdout[-3000:]
