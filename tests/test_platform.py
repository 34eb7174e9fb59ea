"""Module registry, audit chain, file store, migrations, translations."""
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from app.modules import ModuleError, ModuleSpec, merge_roles, order_specs

# --- module registry -------------------------------------------------------------


def test_modules_load_in_dependency_order(app):
    names = [spec.name for spec in app.extensions["saoy_modules"]]
    assert names.index("copies") > max(names.index(n) for n in ("registers", "signing",
                                                                 "appointments"))


def test_missing_dependency_fails_loudly():
    with pytest.raises(ModuleError, match="depends on 'ghost'"):
        order_specs([ModuleSpec(name="a", depends=("platform", "ghost"))])


def test_dependency_cycle_fails_loudly():
    with pytest.raises(ModuleError, match="cycle: a -> b -> a|cycle: b -> a -> b"):
        order_specs([ModuleSpec(name="a", depends=("b",)), ModuleSpec(name="b", depends=("a",))])


def test_import_error_fails_loudly(app):
    from app.modules import load_modules

    with pytest.raises(ModuleError, match="failed to import"):
        load_modules(["modules.does_not_exist"])


def test_duplicate_table_name_fails_loudly():
    """FAB's Model would merge two declarations of one table; the registry refuses."""
    from sqlalchemy import Column, Integer
    from sqlalchemy.orm import declarative_base

    from app.modules import check_table_owners

    base = declarative_base()

    def declare(module: str, column: str):
        namespace = {"__tablename__": "shared_name", "__module__": module,
                     "__table_args__": {"extend_existing": True},
                     "id": Column(Integer, primary_key=True), column: Column(Integer)}
        return type(f"T_{column}", (base,), namespace)

    # Keep the classes referenced: the registry only holds them weakly.
    alpha = declare("modules.alpha.models", "a")
    check_table_owners(base.registry)  # one owner: fine
    beta = declare("modules.beta.models", "b")
    with pytest.raises(ModuleError, match="declared by several modules"):
        check_table_owners(base.registry)
    assert alpha.__table__ is beta.__table__  # what extend_existing would have done


def test_role_patterns_must_be_anchored():
    with pytest.raises(ModuleError, match="anchored"):
        merge_roles({}, [ModuleSpec(name="x", roles={"Clerk": [["RegisterView", "^can_list$"]]})])


# --- audit log -------------------------------------------------------------------


def test_audit_chain_detects_tampering(db_session):
    from app import audit
    from app.audit import AuditEvent, verify_chain

    for i in range(3):
        audit.record(db_session, None, "test_event", reason=f"r{i}")
    db_session.commit()
    assert verify_chain(db_session).ok
    row = db_session.scalars(select(AuditEvent).where(AuditEvent.chain == 0)
                             .order_by(AuditEvent.seq.desc())).first()
    original = row.reason
    db_session.execute(update(AuditEvent).where(AuditEvent.id == row.id).values(reason="forged"))
    db_session.commit()
    try:
        report = verify_chain(db_session)
        assert not report.ok and (report.chain, report.broken_at) == (0, row.seq)
    finally:
        db_session.execute(update(AuditEvent).where(AuditEvent.id == row.id)
                           .values(reason=original))
        db_session.commit()
    assert verify_chain(db_session).ok


def test_audit_cli_reports_broken_chain(app, db_session):
    from app import audit
    from app.audit import AuditEvent

    audit.record(db_session, None, "cli_event")
    db_session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["saoy", "audit-verify"]).exit_code == 0
    last = db_session.scalars(select(AuditEvent).where(AuditEvent.chain == 0)
                              .order_by(AuditEvent.seq.desc())).first()
    assert last.event == "cli_event"
    db_session.execute(update(AuditEvent).where(AuditEvent.id == last.id).values(event="x"))
    db_session.commit()
    try:
        result = runner.invoke(args=["saoy", "audit-verify"])
        assert result.exit_code == 1 and "BROKEN" in result.output
    finally:
        db_session.execute(update(AuditEvent).where(AuditEvent.id == last.id)
                           .values(event="cli_event"))
        db_session.commit()


def test_concurrent_audit_writers_keep_one_chain(app):
    from app import audit
    from app.audit import verify_chain
    from app.extensions import db

    errors = []

    def writer(n):
        try:
            with app.app_context():
                for i in range(10):
                    audit.record(db.session, None, "concurrent", reason=f"{n}-{i}")
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with app.app_context():
        report = verify_chain(db.session)
        assert report.ok
        assert db.session.scalar(text("SELECT count(*) FROM audit_event "
                                      "WHERE event = 'concurrent'")) >= 60


# --- file store ------------------------------------------------------------------


def test_file_store_is_content_addressed_and_atomic(tmp_path):
    import hashlib

    from app.storage import FileStore, FileTooLargeError

    store = FileStore(tmp_path)
    data = b"%PDF-1.7 test" * 1000
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(sha) == data
    assert store.put_bytes(data) == sha  # same content, same file
    with pytest.raises(FileTooLargeError):
        store.put_stream(iter([b"x" * 1000] * 10), max_bytes=5000)
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left behind
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


# --- migrations ------------------------------------------------------------------


def test_models_and_migrations_agree(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_appbuilder import Model

    from app.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Model.metadata)
    assert diff == []


def test_flask_db_check_reports_no_difference(app):
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


# --- translations and formats ----------------------------------------------------


def test_vi_catalog_has_no_untranslated_or_fuzzy_entry():
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    from translations import catalog

    missing = catalog.problems("vi")
    assert missing == [], f"untranslated vi entries: {missing[:20]}"
    # The template must contain every string of the code (no forgotten extraction).
    subprocess.run([sys.executable, str(root / "translations" / "catalog.py"), "extract"],
                   check=True, capture_output=True, cwd=str(root), env={**os.environ})
    assert catalog.problems("vi") == []


def test_login_page_is_vietnamese_by_default(client):
    html = client.get("/login/").get_data(as_text=True)
    assert "Tên đăng nhập" in html and "Mật khẩu" in html and "Đăng nhập" in html


def test_english_is_the_second_language(client):
    client.get("/lang/en")
    html = client.get("/login/").get_data(as_text=True)
    assert "Username" in html and "Password" in html


def test_dates_are_dd_mm_yyyy_in_vietnam_time():
    import datetime as dt

    from app.i18n import format_money
    from app.timeutil import date_in_words, format_date, format_datetime, to_utc

    stored = dt.datetime(2026, 11, 27, 17, 30)  # naive UTC
    assert format_date(stored) == "28/11/2026"
    assert format_datetime(stored) == "28/11/2026 00:30"
    assert to_utc(dt.datetime(2026, 11, 28, 0, 30)) == stored
    assert date_in_words(dt.date(2026, 11, 7)) == "ngày 07 tháng 11 năm 2026"
    assert format_money(200000) == "200.000 đ"
