"""Register book export of a 100,000-entry register: time and peak memory.

SaoY streams (query ``yield_per`` + openpyxl write-only); the baseline loads
every entry and builds a normal openpyxl workbook.  Each variant runs in its own
process so that its peak RSS is its own.

    python -m bench.registers_export [entries]
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time

from bench.common import bench_app, machine, peak_rss_mb, run_child


def build(entries: int) -> tuple[str, int]:
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app.demo import load_demo
    from app.extensions import db
    from modules.registers.models import Register, RegisterEntry

    data_dir = tempfile.mkdtemp(prefix="saoy-bench-reg-")
    app = bench_app(data_dir)
    with app.app_context():
        upgrade()
        load_demo()
        register = db.session.query(Register).first()
        year = register.year
        rows = []
        for n in range(1, entries + 1):
            rows.append(dict(office_id=register.office_id, register_id=register.id, number=n,
                             request_key=f"copy:{n}", status="issued",
                             issued_at=dt.datetime(year, 1, 1), issued_on=dt.date(year, 1, 1),
                             requester_name=f"Nguyễn Văn Người Yêu Cầu {n}",
                             requester_identity="079203001234", document_type="Giấy khai sinh",
                             pages=2, copies=1, signer_name="Trần Thị Bình", fee=4000,
                             notes="Ghi chú thử"))
            if len(rows) == 10_000:
                db.session.execute(insert(RegisterEntry), rows)
                rows = []
        if rows:
            db.session.execute(insert(RegisterEntry), rows)
        register.next_number = entries + 1
        db.session.commit()
        return data_dir, register.id


def export(data_dir: str, register_id: int, variant: str) -> dict:
    from app.extensions import db
    from modules.registers.models import Register
    from modules.registers.views import BOOK_HEADERS

    app = bench_app(data_dir)
    out = tempfile.mktemp(suffix=".xlsx")
    with app.test_request_context():
        register = db.session.get(Register, register_id)
        start = time.perf_counter()
        if variant == "idle":  # imports + app only: the floor every variant starts from
            count = 0
        elif variant == "saoy":
            from app.exports import write_xlsx
            from modules.registers.services import book_rows

            count = write_xlsx(out, "Sổ", [str(h) for h in BOOK_HEADERS],
                               book_rows(db.session, register))
        else:
            from openpyxl import Workbook

            from modules.registers.models import RegisterEntry

            entries = db.session.query(RegisterEntry).filter_by(register_id=register_id).all()
            wb = Workbook()
            ws = wb.active
            ws.append([str(h) for h in BOOK_HEADERS])
            for e in entries:
                ws.append([e.number, e.issued_on, e.requester_name, e.requester_identity,
                           e.document_type, e.pages, e.copies, e.signer_name, e.fee, e.notes])
            wb.save(out)
            count = len(entries)
        seconds = time.perf_counter() - start
    return {"variant": variant, "rows": count, "seconds": round(seconds, 2),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(export(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    print(f"register book export — {machine()}")
    for entries in sizes:
        data_dir, register_id = build(entries)
        for variant in ("idle", "saoy", "baseline"):
            r = run_child("bench.registers_export", "--child", data_dir, str(register_id),
                          variant)
            print(f"  {entries:>7} entries  {variant:9s} {r['seconds']:6.2f} s  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB")


if __name__ == "__main__":
    main()
