"""One phase of the pulled-token fault (``tests/test_faults.py``), in a server process of
its own: ``pull`` sets up an app on SQLite with the leader's key on a SoftHSM token, takes
the token away and asks for a signature; ``back`` puts it back, starts again and signs.
Prints one JSON line: the answer's status and message, the request's state, the chain."""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

WORK = Path(sys.argv[1])
PHASE = sys.argv[2]


def token_env() -> dict[str, str]:
    from modules.signing.pki import DemoPki
    from tests.softhsm import make_token

    conf = WORK / "softhsm2.conf"
    if not conf.exists():
        pki = DemoPki(WORK / "pki")
        issued = pki.issue("pulled", "Lê Thị Rút", "UBND Phường Sài Gòn", "CCCD:079190000098")
        before = set((WORK / "tokens").iterdir()) if (WORK / "tokens").exists() else set()
        make_token(WORK, "leader-token", issued.key_pem_path, issued.cert_pem_path, "key")
        (token_dir,) = set((WORK / "tokens").iterdir()) - before
        (WORK / "token-dir").write_text(str(token_dir))
        (WORK / "pin").write_text("123456")
    return {"SOFTHSM2_CONF": str(conf)}


def main() -> None:
    os.environ.update(token_env())
    from app import create_app
    from tests.softhsm import softhsm_lib

    first = not (WORK / "data").exists()
    app = create_app({
        "TESTING": True, "SCHEDULER_ENABLED": False, "DEMO_MODE": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{WORK / 'saoy.db'}", "DATA_DIR": str(WORK / "data"),
        "PKCS11_LIB": softhsm_lib(), "PKCS11_TOKENS": {"leader-token": str(WORK / "pin")},
        "TRUST_DIR": str(WORK / "pki" / "demo-root.pem"), "AUTH_RATE_LIMITED": False})
    token_dir, away = Path((WORK / "token-dir").read_text()), WORK / "away"
    with app.app_context():
        if first:
            pk = install(app)
        else:
            pk = int((WORK / "request").read_text())
    if PHASE == "pull":
        shutil.move(str(token_dir), str(away))
    elif away.exists():
        shutil.move(str(away), str(token_dir))
    client = app.test_client()
    login = client.post("/api/v1/security/login", json={
        "username": "leader.a", "password": "saoy-demo", "provider": "db"}).get_json()
    r = client.post(f"/api/v1/copy/{pk}/sign", headers={
        "Authorization": f"Bearer {login['access_token']}", "Accept-Language": "vi"})
    with app.app_context():
        from app.audit import verify_chain
        from app.extensions import db
        from modules.copies.models import CopyRequest

        state = db.session.get(CopyRequest, pk).state.value
        chain_ok = verify_chain(db.session).ok
    print(json.dumps({"status": r.status_code, "message": (r.get_json() or {}).get("message"),
                      "state": state, "chain_ok": chain_ok}, ensure_ascii=False))


def install(app) -> int:
    """Schema, demo offices, the key registered on the token and bound, one request."""
    from flask_migrate import upgrade

    from app.demo import load_demo
    from app.extensions import db
    from app.offices.services import offered_document_types
    from app.seed import seed_reference_data, seed_roles
    from app.transactions import atomic
    from modules.copies import services, workflow
    from modules.signing import keys
    from tests.conftest import open_signing_session, user_named
    from tests.keys import profile_of
    from tests.pdfs import scan_pdf

    upgrade()
    seed_roles()
    seed_reference_data()
    load_demo()
    session = db.session
    admin, leader = user_named(session, "admin"), user_named(session, "leader.a")
    officer = user_named(session, "officer.a")
    register = dict(office_id=leader.office_id, user_id=leader.id, name="Token",
                    token_label="leader-token", key_label="key")
    with app.test_request_context():
        try:
            keys.register_pkcs11(session, admin, **register)
        except keys.KeyRegistrationError as named_otherwise:  # the certificate names Lê Thị Rút
            session.rollback()
            fingerprint = named_otherwise.message.split()[-1].rstrip(".")
        with atomic(session):
            key = keys.register_pkcs11(session, admin, **register,
                                       confirmed_fingerprint=fingerprint)
            profile_of(session, leader.office_id, leader.id).key_id = key.id
            keys.choose_server_custody(session, admin, key.id)  # the token is the server's
        with atomic(session):
            copy, _info = services.intake(
                session, officer, upload=services.Upload(io.BytesIO(scan_pdf()), "s.pdf"),
                document_type_id=offered_document_types(session, officer.office_id)[0].id,
                copies=1, requester=services.Requester(identity_number="079203001234"))
            workflow.apply(session, officer, copy.id, workflow.Event.submit)
    open_signing_session(app, "leader.a")  # as the leader's one-time code would
    (WORK / "request").write_text(str(copy.id))
    return copy.id


if __name__ == "__main__":
    main()
