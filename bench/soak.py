"""Soak: the load mix of ``bench.load`` at a quarter of its rate (each person waits four
times longer) for 30 minutes against the deployed stack, sampling the resident memory of
every server process (gunicorn's master and workers, the jobs worker) every 15 s and the
temporary files they leave.  Writes the RSS curves to ``bench/soak-rss.svg``.

    python -m bench.soak [minutes]
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from bench import loadmix
from bench.load import serving
from deploy.stack import Stack

EVERY = 15
PLOT = ROOT / "bench" / "soak-rss.svg"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(stack: Stack) -> dict[str, int]:
    """name → pid: gunicorn's master and each worker (by their order), the jobs worker."""
    found = {}
    for process in stack.processes:
        name = Path(process.args[0]).name
        if name == "gunicorn":
            found["gunicorn master"] = process.pid
            children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                      text=True).stdout.split()
            for n, child in enumerate(sorted(int(c) for c in children), start=1):
                found[f"gunicorn worker {n}"] = child
        elif name == "saoy":
            found["jobs worker"] = process.pid
    return found


def temp_files(data: Path) -> dict[str, int]:
    return {"file store tmp/": sum(1 for _ in (data / "files" / "tmp").iterdir()),
            "/tmp": sum(1 for _ in Path("/tmp").iterdir())}


def plot(samples: list[tuple[float, dict[str, float]]], path: Path) -> None:
    """The RSS curves as a plain SVG (no plotting library needed)."""
    names = sorted({name for _t, values in samples for name in values})
    width, height, left, bottom = 760, 360, 60, 40
    t_max = max(t for t, _v in samples) or 1
    top = max(v for _t, values in samples for v in values.values()) * 1.15
    colours = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]

    def x(t):
        return left + (width - left - 20) * t / t_max

    def y(v):
        return height - bottom - (height - bottom - 20) * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{y(0)}" x2="{width - 20}" y2="{y(0)}" stroke="#333"/>',
             f'<line x1="{left}" y1="20" x2="{left}" y2="{y(0)}" stroke="#333"/>']
    for mb in range(0, int(top) + 1, max(50, int(top / 6) // 50 * 50)):
        parts.append(f'<text x="{left - 6}" y="{y(mb) + 4}" text-anchor="end">{mb}</text>')
        parts.append(f'<line x1="{left}" y1="{y(mb)}" x2="{width - 20}" y2="{y(mb)}" '
                     f'stroke="#eee"/>')
    for minute in range(0, int(t_max / 60) + 1, 5):
        parts.append(f'<text x="{x(minute * 60)}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{minute}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">minutes</text>')
    parts.append(f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
                 f'text-anchor="middle">RSS (MB)</text>')
    for n, name in enumerate(names):
        points = " ".join(f"{x(t):.1f},{y(values[name]):.1f}" for t, values in samples
                          if name in values)
        colour = colours[n % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{points}"/>')
        parts.append(f'<text x="{left + 10 + 150 * (n % 4)}" y="{14 + 12 * (n // 4)}" '
                     f'fill="{colour}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30
    with serving("saoy-bench-soak-") as (stack, sinks, env, app, world):
        world.think *= 4  # a quarter of the load's rate
        print(f"soak: {len(loadmix.PEOPLE)} people at a quarter of the load's rate for "
              f"{minutes:g} min — {machine()}", flush=True)
        data = Path(env["SAOY_DATA_DIR"])
        temps_before = temp_files(data)
        samples: list[tuple[float, dict[str, float]]] = []
        started = time.time()
        done = threading.Event()

        def sample():
            while not done.is_set():
                pids = processes(stack)
                samples.append((time.time() - started, {
                    name: mb for name, pid in pids.items() if (mb := rss_mb(pid)) is not None}))
                done.wait(EVERY)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        recorder = loadmix.run(world, minutes * 60)
        done.set()
        sampler.join()
        elapsed = time.time() - started
        found = loadmix.invariants(app, sinks)
        temps_after = temp_files(data)
        loadmix.print_report("soak", recorder, found, elapsed)
        plot(samples, PLOT)
        print(f"  RSS per process (MB): first sample after 2 min → last sample, and the "
              f"highest; curves in {PLOT.relative_to(ROOT)}")
        warm = [v for t, v in samples if t >= 120] or [samples[-1][1]]
        for name in sorted(samples[-1][1]):
            series = [v[name] for v in warm if name in v]
            print(f"    {name:<20} {series[0]:7.1f} → {series[-1]:7.1f}  (max {max(series):.1f})")
        print(f"  temporary files before → after: {temps_before} → {temps_after}")


if __name__ == "__main__":
    main()
