"""Supervision at a province's size: 1,000,000 copy requests over 100 offices (10,000 in
office A), their register entries, 300,000 appointments, on PostgreSQL.

Each page (the dashboard for one office and for the province supervisor, the lists, the
REST list) is timed through the application (server time, median of 5 warm loads) beside
the bare SQL doing the same work (hand-written statements, run with psycopg2 in the same
run, the sum of their times).

    python -m bench.supervision [requests]
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

PG = os.environ.get("SAOY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUNS = 5
OFFICES = 100


def database() -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"saoy_bench_sup_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG).set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


#: The rows, made by PostgreSQL itself (generate_series): 98 more communes under the
#: supervisor's department, then per request a document, the request, its register entry.
FILL = """
INSERT INTO org_office (kind, code, name, parent_id, active)
SELECT 'commune', 'BENCH-' || n, 'UBND Xã Thử Nghiệm ' || n, :parent, true
FROM generate_series(1, :extra) n;

CREATE TEMP TABLE bench_office AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS slot FROM org_office
WHERE id = :office_a OR id = :office_b OR code LIKE 'BENCH-%';

INSERT INTO sign_document (office_id, verify_code, access_code, stage, scan_sha256,
                           current_sha256, created_at)
SELECT o.id, md5('d' || n), 'x', 'sealed', repeat('0', 64), repeat('0', 64), now()
FROM generate_series(0, :total - 1) n JOIN bench_office o ON o.slot = n % :offices;

INSERT INTO copy_request (office_id, state, version, requester_name, requester_identity,
    document_type_id, copies, pages, document_id, fee, fee_paid, paid_at, received_at,
    due_at, delivered_at, returned_at, return_ground, created_by_id, number, book)
SELECT d.office_id,
       CASE WHEN r < 0.90 THEN 'delivered' WHEN r < 0.93 THEN 'returned'
            WHEN r < 0.96 THEN 'awaiting_signature' ELSE 'awaiting_seal' END,
       1, 'Nguyễn Văn ' || d.id, lpad((79000000000 + d.id)::text, 12, '0'),
       :type_first + d.id % :type_count, 1 + d.id % 3, 1 + d.id % 5, d.id,
       2000 * (1 + d.id % 3), r < 0.90, CASE WHEN r < 0.90 THEN t END, t,
       t + interval '1 day', CASE WHEN r < 0.90 THEN t + (1 + d.id % 70) * interval '1 hour' END,
       CASE WHEN r >= 0.90 AND r < 0.93 THEN t END,
       CASE WHEN r >= 0.90 AND r < 0.93 THEN d.id % 7 END, :user_id,
       CASE WHEN r < 0.90 THEN (d.id)::text END, CASE WHEN r < 0.90 THEN '01/2026' END
FROM (SELECT id, office_id, ((id::bigint * 7919) % 10007) / 10007.0 AS r,
             now() at time zone 'utc'
             - ((id::bigint * 104729) % (730 * 24 * 60)) * interval '1 minute' AS t
      FROM sign_document) d;

INSERT INTO reg_register (office_id, name, book_number, type_symbol, year, start_number,
                          next_number, opening_date, status, created_at)
SELECT id, 'Sổ thử nghiệm', 'B' || id, 'SCTĐT/BS', 2026, 1, 1000000, '2024-01-01', 'open', now()
FROM bench_office;

INSERT INTO reg_entry (office_id, register_id, number, request_key, status, issued_at,
                       issued_on, requester_name, document_type, pages, copies, fee)
SELECT c.office_id, g.id, c.id, 'copy:' || c.id, 'issued', c.delivered_at,
       (c.delivered_at + interval '7 hours')::date, c.requester_name, 'Giấy khai sinh',
       c.pages, c.copies, c.fee
FROM copy_request c JOIN reg_register g ON g.office_id = c.office_id AND g.name = 'Sổ thử nghiệm'
WHERE c.state = 'delivered';

INSERT INTO appt_appointment (office_id, code, citizen_id, full_name, identity_number,
    document_type_id, documents, start, "end", status, reschedule_count, created_at)
SELECT o.id, 'BN' || n, :citizen_id, 'Nguyễn Văn Hẹn', '079203001234', :type_first, 1,
       now() at time zone 'utc' - (n % (730 * 24)) * interval '1 hour',
       now() at time zone 'utc' - (n % (730 * 24)) * interval '1 hour' + interval '15 minutes',
       CASE n % 10 WHEN 0 THEN 'no_show' WHEN 1 THEN 'cancelled' ELSE 'processed' END, 0, now()
FROM generate_series(0, :appointments - 1) n JOIN bench_office o ON o.slot = n % :offices;
"""


def fill(app, total: int) -> None:
    from sqlalchemy import select, text

    from app.demo import OFFICE_A, OFFICE_B
    from app.extensions import db
    from app.offices.models import Office
    from app.users import StaffUser

    with app.app_context():
        a = db.session.scalars(select(Office).where(Office.code == OFFICE_A)).one()
        b = db.session.scalars(select(Office.id).where(Office.code == OFFICE_B)).one()
        values = {
            "parent": a.parent_id, "extra": OFFICES - 2, "office_a": a.id, "office_b": b,
            "total": total, "offices": OFFICES, "appointments": total * 3 // 10,
            **_document_types(db.session),
            "user_id": db.session.scalars(select(StaffUser.id).where(
                StaffUser.username == "officer.a")).one(),
            "citizen_id": db.session.scalar(text("SELECT id FROM citizen_account LIMIT 1")),
        }
        for statement in FILL.split(";\n\n"):
            started = time.perf_counter()
            db.session.execute(text(statement), values)
            print(f"    {statement.split()[0]} {statement.split()[2]}: "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _document_types(session) -> dict[str, int]:
    """The seeded catalogue's ids are consecutive: requests take them round-robin."""
    from sqlalchemy import text

    first, last, count = session.execute(text(
        "SELECT min(id), max(id), count(*) FROM org_document_type")).one()
    assert last - first + 1 == count
    return {"type_first": first, "type_count": count}


def page_ms(client, url: str, headers=None) -> float:
    client.get(url, headers=headers)
    times = []
    for _ in range(RUNS):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:300])
        times.append(float(r.headers["Server-Timing"].split("dur=")[1]))
    return statistics.median(times)


def sql_ms(url: str, statements: list[str], params: dict) -> float:
    """The bare SQL: each statement once to warm, then the median of 5 runs of all."""
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port, user=u.username, dbname=u.database)
    cur = conn.cursor()
    times = []
    for run in range(RUNS + 1):
        started = time.perf_counter()
        for statement in statements:
            cur.execute(statement, params)
            cur.fetchall()
        if run:
            times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return statistics.median(times)


def dashboard_sql(scope: str) -> list[str]:
    """What the dashboard asks, as one would write it by hand (30 days)."""
    period = ("{c} >= %(start)s AND {c} < %(end)s")
    where = f"office_id IN ({scope})"
    per = lambda col: f"{where} AND " + period.format(c=col)  # noqa: E731
    return [
        f"SELECT state, count(*) FROM copy_request WHERE {per('received_at')} GROUP BY state",
        f"SELECT date(received_at + interval '7 hours'), count(*) FROM copy_request "
        f"WHERE {per('received_at')} GROUP BY 1",
        f"SELECT date(delivered_at + interval '7 hours'), count(*) FROM copy_request "
        f"WHERE {per('delivered_at')} GROUP BY 1",
        f"SELECT date(start + interval '7 hours'), status, count(*) FROM appt_appointment "
        f"WHERE {per('start')} GROUP BY 1, 2",
        f"SELECT coalesce(return_ground, 0), count(*) FROM copy_request "
        f"WHERE {per('returned_at')} GROUP BY 1",
        f"SELECT count(*), coalesce(sum(fee), 0) FROM copy_request WHERE {per('paid_at')} "
        f"AND fee_paid",
        f"SELECT document_type_id, count(*) FROM copy_request WHERE {per('received_at')} "
        f"GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        f"SELECT count(*), avg(extract(epoch FROM delivered_at - received_at)), "
        f"percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - "
        f"received_at)) FROM copy_request WHERE {per('delivered_at')}",
        f"SELECT count(*) FROM copy_request WHERE {where} AND state IN ('draft', "
        f"'awaiting_signature', 'signed', 'awaiting_seal', 'sealed', 'returned') "
        f"AND due_at < now() at time zone 'utc'",
    ]


def list_sql(scope: str) -> list[str]:
    return [f"SELECT count(*) FROM copy_request WHERE office_id IN ({scope})",
            f"SELECT * FROM copy_request WHERE office_id IN ({scope}) "
            f"ORDER BY received_at DESC LIMIT 25"]


def estimated_list_sql(scope: str, exact_up_to: int) -> list[str]:
    """What the list does past ``LIST_EXACT_COUNT``: count up to the limit, ask the
    planner for the rest, read the first page."""
    where = f"FROM copy_request WHERE office_id IN ({scope})"
    return [f"SELECT count(*) FROM (SELECT 1 {where} LIMIT {exact_up_to + 1}) AS counted",
            f"EXPLAIN (FORMAT JSON) SELECT * {where}",
            f"SELECT * {where} ORDER BY received_at DESC LIMIT 25"]


def main() -> None:
    from flask_migrate import upgrade

    from app import create_app

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    url = database()
    try:
        app = create_app({"TESTING": True, "SCHEDULER_ENABLED": False, "DEMO_MODE": True,
                          "SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False,
                          "DATA_DIR": tempfile.mkdtemp(prefix="saoy-bench-sup-"),
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            upgrade()
            from app.demo import load_demo
            from app.seed import seed_reference_data, seed_roles

            seed_roles()
            seed_reference_data()
            load_demo()
        print(f"supervision at scale ({total:,} copy requests over {OFFICES} offices, "
              f"PostgreSQL) — {machine()}")
        started = time.perf_counter()
        fill(app, total)
        print(f"  filled in {time.perf_counter() - started:.0f} s")
        report(app, url)
    finally:
        drop(url)


def report(app, url: str) -> None:
    import datetime as dt

    from sqlalchemy import text

    from app.demo import OFFICE_A
    from app.extensions import db
    from app.timeutil import Period

    with app.app_context():
        office_a = db.session.scalar(text("SELECT id FROM org_office WHERE code = :c"),
                                     {"c": OFFICE_A})
        parent = db.session.scalar(text("SELECT parent_id FROM org_office WHERE id = :i"),
                                   {"i": office_a})
        province = ",".join(str(i) for i in db.session.scalars(text(
            "SELECT id FROM org_office WHERE parent_id = :p OR id = :p"), {"p": parent}))
        identity = db.session.scalar(text(
            "SELECT requester_identity FROM copy_request WHERE office_id = :o LIMIT 1"),
            {"o": office_a})
    start, end = Period.last_days(30).bounds
    params = {"start": start, "end": end}

    def client(username):
        c = app.test_client()
        assert c.post("/login/", data={"username": username, "password": "saoy-demo"}
                      ).status_code == 302
        return c

    def token(username):
        c = app.test_client()
        r = c.post("/api/v1/security/login", json={"username": username,
                                                   "password": "saoy-demo", "provider": "db"})
        return c, {"Authorization": f"Bearer {r.get_json()['access_token']}"}

    leader, supervisor, officer = client("leader.a"), client("supervisor"), client("officer.a")
    rows = [
        ("dashboard, office A (leader, 30 days)", page_ms(leader, "/dashboard/"),
         sql_ms(url, dashboard_sql(str(office_a)), params), "< 300 ms"),
        ("dashboard, province (supervisor, 30 days)", page_ms(supervisor, "/dashboard/"),
         sql_ms(url, dashboard_sql(province), params), "< 1 s"),
        ("statistics report, province, 30 days (.xlsx)",
         page_ms(supervisor, "/dashboard/statistics.xlsx"),
         sql_ms(url, [f"SELECT office_id, count(*), sum(copies), sum(pages * copies), "
                      f"sum(fee) FROM reg_entry WHERE office_id IN ({province}) AND status = "
                      f"'issued' AND issued_on >= %(first)s AND issued_on <= %(last)s "
                      f"GROUP BY 1"],
                {"first": (dt.date.today() - dt.timedelta(days=29)), "last": dt.date.today()}),
         ""),
        ("web list /copies/list/, office A (officer)", page_ms(officer, "/copies/list/"),
         sql_ms(url, list_sql(str(office_a)), {}), "< 100 ms"),
        ("web list /copies/list/, province (supervisor)", page_ms(supervisor, "/copies/list/"),
         sql_ms(url, estimated_list_sql(province, app.config["LIST_EXACT_COUNT"]), {}),
         "≤ 100 ms"),
    ]
    exact_up_to, app.config["LIST_EXACT_COUNT"] = app.config["LIST_EXACT_COUNT"], 0
    rows.append(("  the same, every row counted (before)", page_ms(supervisor, "/copies/list/"),
                 sql_ms(url, list_sql(province), {}), ""))
    app.config["LIST_EXACT_COUNT"] = exact_up_to
    for username, label, scope in (("officer.a", "office A", str(office_a)),
                                   ("supervisor", "province", province)):
        rest, headers = token(username)
        rows.append((f"REST GET /api/v1/copy/, {label}",
                     page_ms(rest, "/api/v1/copy/", headers),
                     sql_ms(url, [f"SELECT * FROM copy_request WHERE office_id IN ({scope}) "
                                  f"ORDER BY received_at DESC, id DESC LIMIT 100"], {}), ""))
        rows.append((f"REST GET /api/v1/copy/?q=<identity>, {label}",
                     page_ms(rest, f"/api/v1/copy/?q={identity}", headers),
                     sql_ms(url, [f"SELECT * FROM copy_request WHERE office_id IN ({scope}) AND "
                                  f"requester_identity = %(q)s ORDER BY received_at DESC "
                                  f"LIMIT 25"], {"q": identity}), ""))
    print(f"  {'page':<48} {'SaoY':>9} {'bare SQL':>9}  goal")
    for label, ours, bare, goal in rows:
        print(f"  {label:<48} {ours:7.1f}ms {bare:7.1f}ms  {goal}", flush=True)


if __name__ == "__main__":
    main()
