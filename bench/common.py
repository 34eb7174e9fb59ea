"""Helpers: a throwaway app on a fresh database, peak memory of a child process."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB, Python "
            f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}")


def bench_app(data_dir: str | None = None, url: str | None = None):
    """An app on its own SQLite database (migrated), for benchmarks."""
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from app.extensions import db  # noqa: F401

    data_dir = data_dir or tempfile.mkdtemp(prefix="saoy-bench-")
    app = create_app({"TESTING": True, "DATA_DIR": data_dir, "SCHEDULER_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{data_dir}/bench.db"})
    return app


def run_child(module: str, *args: str) -> dict:
    """Run ``python -m module args`` and return its JSON result plus its peak RSS (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result.setdefault("peak_rss_mb", round(max(peak, before) / 1024, 1))
    return result


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
