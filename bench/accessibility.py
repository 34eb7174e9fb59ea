"""Lighthouse (mobile, Debian's Chromium) on the pages citizens use — sign-in, booking,
"Giấy tờ của tôi" and verification — for this checkout beside the baseline issue 29
measured (the commit before its first accessibility work), in the same run.

Each checkout runs as ``make demo`` does (its own SQLite data, Flask's threaded server,
demo data); the citizen's pages are measured signed in (the session cookie is handed to
Lighthouse).  Accessibility and best-practices scores, and the failing accessibility
audits.

    python -m bench.accessibility [baseline-revision]
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import ROOT, machine

#: Issue 29 measured the tree before 361fad3 ("Accessibility, the shared layout").
BASELINE = "361fad3^"
LIGHTHOUSE = ROOT / ".cache" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
PAGES = [("Đăng nhập", None, "/login/"),
         ("Đặt lịch hẹn", "citizen", "/appointments/book?office_id={office}"),
         ("Giấy tờ của tôi", "citizen", "/mycopies/"),
         ("Kiểm tra bản sao", None, "/verify/")]


def serve(checkout: Path, work: Path) -> tuple[subprocess.Popen, str]:
    """The checkout as ``make demo`` runs it, on a free port."""
    from deploy.stack import port

    free = port()
    base = f"http://127.0.0.1:{free}"
    env = {**os.environ, "SAOY_DATA_DIR": str(work / "data"), "SAOY_DEMO": "1",
           "SAOY_BASE_URL": base, "SAOY_LOGIN_RATE_LIMIT": "1000 per minute",
           "SAOY_ARCHIVE_REQUIRED": "0"}
    env.pop("SAOY_DATABASE_URL", None)
    (work / "data").mkdir(parents=True)
    flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "run"]
    for args in (["db", "upgrade"], ["saoy", "seed"], ["saoy", "demo-data"]):
        subprocess.run(flask + args, cwd=checkout, env=env, check=True, capture_output=True)
    server = subprocess.Popen(flask + ["run", "--host", "127.0.0.1", "--port", str(free),
                                       "--no-reload", "--with-threads"],
                              cwd=checkout, env={**env, "SAOY_PROCESS": "web"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{base}/login/", timeout=2).status_code == 200:
                return server, base
        except requests.RequestException:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"{checkout} did not start")


def signed_in(base: str, username: str) -> tuple[str, str]:
    """(Cookie header, office A's id) for a user signed in through the login form."""
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{base}/login/", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page)
    session.post(f"{base}/login/", data={"username": username, "password": "saoy-demo",
                                         "csrf_token": token.group(1)}, timeout=30)
    book = session.get(f"{base}/appointments/book", timeout=30).text
    office = re.search(r'office_id=(\d+)"[^>]*>\s*<strong>UBND Phường Sài Gòn', book)
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return cookie, office.group(1) if office else ""


def lighthouse(url: str, cookie: str | None) -> tuple[int, int, list[str]]:
    command = [str(LIGHTHOUSE), url, "--quiet", "--output=json", "--output-path=stdout",
               "--only-categories=accessibility,best-practices", "--form-factor=mobile",
               "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage --lang=vi"]
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True,
                         env={**os.environ, "CHROME_PATH": shutil.which("chromium") or
                              "/usr/bin/chromium"})
    report = json.loads(out.stdout)
    categories = report["categories"]
    failing = [audit["id"] for ref in categories["accessibility"]["auditRefs"]
               if ref["weight"] and (audit := report["audits"][ref["id"]])["score"] is not None
               and audit["score"] < 1]
    return (round(categories["accessibility"]["score"] * 100),
            round(categories["best-practices"]["score"] * 100), failing)


def measure(name: str, checkout: Path, work: Path) -> dict[str, tuple[int, int, list[str]]]:
    server, base = serve(checkout, work)
    try:
        cookie, office = signed_in(base, "citizen")
        results = {}
        for title, user, path in PAGES:
            url = base + path.format(office=office)
            results[title] = lighthouse(url, cookie if user else None)
            print(f"  {name:10} {title:18} accessibility {results[title][0]:3}  "
                  f"best practices {results[title][1]:3}  failing: "
                  f"{', '.join(results[title][2]) or '—'}", flush=True)
        return results
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


def main() -> None:
    if not LIGHTHOUSE.exists():
        raise SystemExit("Lighthouse is installed by `make lighthouse` (make bench does it)")
    baseline = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    work = Path(tempfile.mkdtemp(prefix="saoy-bench-a11y-"))
    old = work / "baseline"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(old), baseline], cwd=ROOT,
                   check=True)
    try:
        subprocess.run([str(ROOT / ".venv" / "bin" / "pybabel"), "compile", "-f", "-d",
                        "translations"], cwd=old, check=True, capture_output=True)
        print(f"Lighthouse 12.8 (mobile) — {machine()}")
        rows = {"SaoY": measure("SaoY", ROOT, work / "now"),
                f"{baseline}": measure(baseline, old, work / "then")}
        print("\n| page | SaoY accessibility | baseline | SaoY best practices | baseline |")
        print("|---|---:|---:|---:|---:|")
        for title, _user, _path in PAGES:
            now, then = rows["SaoY"][title], rows[baseline][title]
            print(f"| {title} | **{now[0]}** | {then[0]} | {now[1]} | {then[1]} |")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
