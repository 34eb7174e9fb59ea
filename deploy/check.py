"""`make deploy-check`: SaoY deployed for real on loopback, as docs/admin.md describes —
PostgreSQL, gunicorn (2 sync workers, preloaded) and a jobs worker behind nginx with a
self-signed certificate — then tried through nginx: log in, a 30 MB scan through the
whole certification, the copy downloaded with its https verification link, a 40 MB
upload refused by the proxy with a friendly page, a worker killed mid-request, backup
and restore into a new database and data folder.  Exits non-zero on the first failure."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.leader import one_time_code  # noqa: E402
from deploy.stack import Stack, expect, login, step  # noqa: E402


def certify(base: str, scan: bytes) -> tuple[int, bytes]:
    officer, leader, clerk = (login(base, u) for u in ("officer.a", "leader.a", "clerk.a"))
    types = expect(officer.get(f"{base}/api/v1/document_type/", timeout=30), 200, "types")
    type_id = types.json()["result"][0]["id"]
    start = time.time()
    r = expect(officer.post(f"{base}/api/v1/copy/", files={"scan": ("scan.pdf", scan)},
                            data={"document_type_id": type_id,
                                  "identity_number": "079203001234"}, timeout=300),
               201, "intake of the 30 MB scan")
    pk = r.json()["id"]
    step(f"intake of {len(scan) / 2**20:.1f} MB in {time.time() - start:.1f} s (#{pk})")
    expect(officer.post(f"{base}/api/v1/copy/{pk}/submit", json={}, timeout=60), 200, "submit")
    for session, event, body in ((leader, "sign", {"otp": one_time_code()}),
                                 (leader, "forward", {})):
        expect(session.post(f"{base}/api/v1/copy/{pk}/{event}", json=body, timeout=300),
               200, event)
    registers = clerk.get(f"{base}/api/v1/register/", timeout=30).json()["result"]
    register = next(r for r in registers if r["status"] == "open")
    for event, body in (("seal", {"register_id": register["id"]}),
                        ("pay", {"receipt_number": "BL-DEPLOY"}), ("deliver", {})):
        expect(clerk.post(f"{base}/api/v1/copy/{pk}/{event}", json=body, timeout=300), 200,
               event)
    step(f"signed, numbered, sealed, paid and delivered in {time.time() - start:.1f} s")
    pdf = expect(clerk.get(f"{base}/api/v1/copy/{pk}/document", timeout=300), 200,
                 "download").content
    return pk, pdf


def main() -> None:
    from tests.pdfs import sized_scan_pdf

    stack = Stack()
    print(f"deploy check in {stack.work}")
    try:
        url, data = stack.database(), stack.work / "data"
        env = stack.env(url, data)
        stack.install(env)
        step("database migrated, roles and first administrator, demo offices and keys")
        stack.serve(env)
        stack.nginx()
        stack.wait(f"{stack.base}/health/")
        step(f"gunicorn (2 workers) and a jobs worker behind nginx on {stack.base}")

        r = requests.get(f"http://127.0.0.1:{stack.http_port}/login/", allow_redirects=False,
                         timeout=10)
        assert r.status_code == 301 and r.headers["Location"].startswith("https://"), r
        page = requests.get(f"{stack.base}/login/", verify=False, timeout=10)
        assert page.status_code == 200 and "Đăng nhập" in page.text, page.status_code
        css = requests.get(f"{stack.base}/static/appbuilder/css/ab.css", verify=False,
                           timeout=10)
        assert css.status_code == 200 and "Expires" in css.headers, css.headers
        chart = requests.get(f"{stack.base}/static/vendor/chartjs/chart.umd.min.js",
                             verify=False, timeout=10)
        assert chart.status_code == 200 and "Expires" in chart.headers, chart.status_code
        step("HTTP → HTTPS, the Vietnamese login page, static files from nginx")

        health = requests.get(f"{stack.base}/health/", verify=False, timeout=10).json()
        assert health["database"] == "ok" and health["worker"]["alive"], health
        step(f"/health: {json.dumps(health)}")

        scan = sized_scan_pdf(int(29.5 * 2**20))
        pk, pdf = certify(stack.base, scan)
        pdf_path = stack.work / "copy.pdf"
        pdf_path.write_bytes(pdf)
        last = subprocess.run(["pdfinfo", str(pdf_path)], capture_output=True, text=True)
        pages = int(next(line.split()[-1] for line in last.stdout.splitlines()
                         if line.startswith("Pages:")))
        words = subprocess.run(["pdftotext", "-f", str(pages), "-l", str(pages),
                                str(pdf_path), "-"], capture_output=True, text=True).stdout
        assert f"{stack.base}/verify/" in words.replace("\n", ""), words[-400:]
        assert pdf.startswith(scan), "the scan is a byte-exact prefix of the copy"
        step(f"the copy (#{pk}, {len(pdf) / 2**20:.1f} MB) carries {stack.base}/verify/…")

        officer = login(stack.base, "officer.a")
        big = officer.post(f"{stack.base}/api/v1/copy/",
                           files={"scan": ("big.pdf", b"%PDF-1.7\n" + b"0" * (40 * 2**20))},
                           data={"document_type_id": 1}, timeout=120)
        assert big.status_code == 413 and "Tệp quá lớn" in big.text, big.status_code
        step("a 40 MB upload: 413 from nginx, with the friendly page")

        kill_a_worker_mid_request(stack, officer)

        backup_dir = stack.work / "backup"
        stack.saoy(env, "backup", str(backup_dir))
        new_url, new_data = stack.database(), stack.work / "restored"
        new_data.mkdir()
        output = stack.saoy({**env, "SAOY_DATABASE_URL": new_url, "SAOY_DATA_DIR": str(new_data)},
                            "restore", str(backup_dir))
        step(f"backup, restore into a new database and data folder: {output.strip()}")
        compare(url, new_url, data, new_data)
        print("deploy check passed")
        shutil.rmtree(stack.work, ignore_errors=True)
    finally:
        stack.stop()


def kill_a_worker_mid_request(stack: Stack, officer: requests.Session) -> None:
    master = next(p for p in stack.processes if "gunicorn" in " ".join(p.args))
    children = [int(pid) for pid in subprocess.run(
        ["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()]
    assert len(children) == 2, children
    data = (ROOT / "tests" / "samples" / "vn-decree-50-2026-leader-then-seal.pdf").read_bytes()
    outcome: dict = {}

    def long_request():
        try:
            outcome["status"] = requests.post(
                f"{stack.base}/api/v1/verify", files={"file": ("d.pdf", io.BytesIO(data))},
                verify=False, timeout=60).status_code
        except requests.RequestException as exc:
            outcome["status"] = repr(exc)

    threads = [threading.Thread(target=long_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)  # both workers are verifying
    os.kill(children[0], signal.SIGKILL)
    for thread in threads:
        thread.join()
    served = [officer.get(f"{stack.base}/api/v1/copy/", timeout=30).status_code
              for _ in range(4)]
    assert served == [200] * 4, served
    step(f"a worker killed mid-request (answers: {outcome['status']}); the next "
         f"requests were served: {served}")


def compare(url: str, new_url: str, data: Path, new_data: Path) -> None:
    tables = ("copy_request", "audit_event", "reg_entry", "sign_document", "ab_user", "sign_key")
    counts = []
    for database in (url, new_url):
        engine = create_engine(database)
        with engine.connect() as conn:
            counts.append({t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                           for t in tables})
        engine.dispose()
    assert counts[0] == counts[1], counts
    files = [sorted(p.name for p in (d / "files").rglob("*") if p.is_file() and
                    "tmp" not in p.relative_to(d).parts) for d in (data, new_data)]
    assert files[0] == files[1] and files[0], (len(files[0]), len(files[1]))
    step(f"the same rows ({counts[0]}) and the same {len(files[0])} files")


if __name__ == "__main__":
    main()
