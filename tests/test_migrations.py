"""Upgrades keep data: a database at the previous release's schema (0007), holding rows,
migrated to the head; the latest migration downgrades and upgrades again."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BACKENDS, build_app


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_upgrade_keeps_every_row_and_the_audit_chain(backend, backend_url_factory,
                                                        tmp_path):
    from flask_migrate import downgrade, upgrade

    from app.audit import GENESIS, chain_hash

    url = backend_url_factory(backend)
    app = build_app(url, tmp_path)
    with app.app_context():
        upgrade(revision="0007")
    engine = create_engine(url)
    now = dt.datetime(2026, 11, 30, 8, 0)
    events, prev = [], GENESIS
    for seq, event in ((1, "office_created"), (2, "copy_sign")):
        payload = {"seq": seq, "created_at": now.isoformat(timespec="microseconds"),
                   "user_id": None, "office_id": None, "object_type": "Office",
                   "object_id": 1, "event": event, "from_state": None, "to_state": None,
                   "reason": "before the upgrade", "file_sha256": None}
        row_hash = chain_hash(prev, payload)
        events.append({**payload, "created_at": now, "prev_hash": prev, "row_hash": row_hash})
        prev = row_hash
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO org_office (id, kind, code, name, active) VALUES "
                          "(1, 'commune', '99999', 'UBND Xã Cũ', :t)"), {"t": True})
        conn.execute(text("INSERT INTO ab_user (id, first_name, last_name, username, active, "
                          "email, office_id) VALUES (1, 'Lê', 'Cũ', 'leader.old', :t, "
                          "'old@example.vn', 1)"), {"t": True})
        conn.execute(text("INSERT INTO sign_signer (id, office_id, user_id, kind, pkcs12_path, "
                          "title, active) VALUES (1, 1, 1, 'pkcs12', '/srv/old.p12', "
                          "'Chủ tịch', :t)"), {"t": True})
        conn.execute(text("INSERT INTO citizen_account (id, user_id, full_name, "
                          "identity_number, created_at) VALUES (1, 1, 'Lê Cũ', "
                          "'079203001999', :n)"), {"n": now})
        for row in events:
            conn.execute(text("INSERT INTO audit_event (seq, created_at, user_id, office_id, "
                              "object_type, object_id, event, from_state, to_state, reason, "
                              "file_sha256, prev_hash, row_hash) VALUES (:seq, :created_at, "
                              ":user_id, :office_id, :object_type, :object_id, :event, "
                              ":from_state, :to_state, :reason, :file_sha256, :prev_hash, "
                              ":row_hash)"), row)
        conn.execute(text("UPDATE audit_head SET seq = 2, last_hash = :h WHERE id = 1"),
                     {"h": prev})

    def check() -> None:
        from app.audit import verify_chain
        from app.extensions import db

        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM org_office")).scalar() == "UBND Xã Cũ"
            assert conn.execute(text("SELECT title, key_id FROM sign_signer")).one() == \
                ("Chủ tịch", None)  # kept, unbound until its key is registered
            assert conn.execute(text("SELECT verified_at FROM citizen_account")).scalar() \
                is None
            assert conn.execute(text("SELECT locked_until FROM ab_user")).scalar() is None
        report = verify_chain(db.session)
        assert report.ok and report.checked == 2
        db.session.remove()

    with app.app_context():
        upgrade()
        check()
        downgrade(revision="-1")
        upgrade()
        check()
    engine.dispose()
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()
