"""`make demo`'s PKI answers OCSP, CRL and timestamp requests (``saoy demo-pki``, beside the
app), so a demo copy is complete: revocation checked when the leader signs and the clerk
seals, B-LTA at delivery.  The issue measured demo copies with no timestamp and no
revocation data."""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_pem_x509_certificates
from pyhanko.sign.validation.ades import ades_lta_validation

from modules.signing.served_pki import wait_listening
from tests.conftest import build_app, migrate_and_seed
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(backend_url_factory, tmp_path_factory):
    """The demo world as `make demo` builds it: SAOY_DEMO_PKI_URL set, no TSA configured."""
    url = f"http://127.0.0.1:{free_port()}"
    data = tmp_path_factory.mktemp("demo-data")
    application = build_app(backend_url_factory("sqlite"), data, DEMO_PKI_URL=url)
    application.config["SAOY_BACKEND"] = "sqlite"
    migrate_and_seed(application)
    yield application
    with application.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


@contextlib.contextmanager
def demo_pki_served(app):
    """`flask saoy demo-pki`, the command `make serve` starts beside the app."""
    env = {**os.environ, "SAOY_DATA_DIR": app.config["DATA_DIR"],
           "SAOY_DEMO_PKI_URL": app.config["DEMO_PKI_URL"]}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "run", "saoy",
                                "demo-pki"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_listening(int(app.config["DEMO_PKI_URL"].rsplit(":", 1)[1]), process)
        yield
    finally:
        process.terminate()
        process.wait(10)


def test_a_demo_copy_is_checked_for_revocation_and_delivered_b_lta(app, api, db_session,
                                                                    tmp_path):
    from modules.signing import revocation
    from modules.signing.revocation import RevocationUnavailableError
    from tests.pdfs import pdfsig
    from tests.test_revocation import (
        _delivered_file,
        _lta_spec,
        _pay_and_deliver,
        _seal,
        _seal_signature,
    )
    from tests.test_write_path import _forwarded_in

    revocation.forget_answers()
    # The demo PKI down: the leader cannot sign (try again later).
    with pytest.raises(RevocationUnavailableError) as down:
        _forwarded_in(app, db_session, api, "A")
    assert down.value.status == 503
    db_session.rollback()
    with demo_pki_served(app):
        revocation.forget_answers()
        pk, register_id = _forwarded_in(app, db_session, api, "A")
        sealed = _seal(api, pk, register_id)
        assert sealed.status_code == 200, sealed.get_json()
        delivered = _pay_and_deliver(api, pk, "BL-DEMO")
        assert delivered.status_code == 200, delivered.get_json()
    _doc, data = _delivered_file(app, db_session, pk)
    # Read with the demo PKI switched off: everything needed is in the copy.
    answer = app.test_client().post("/api/v1/verify", content_type="multipart/form-data",
                                    data={"file": (io.BytesIO(data), "copy.pdf")}).get_json()
    assert answer["verdict"] == "valid" and answer["long_term"] == "B-LTA", answer
    assert {s["revocation"] for s in answer["signatures"] if s["kind"] == "signature"} == \
        {"good"}, answer["signatures"]
    root = load_pem_x509_certificates(
        (Path(app.config["DATA_DIR"]) / "pki" / "demo-root.pem").read_bytes())[0]
    report = asyncio.run(ades_lta_validation(_seal_signature(data),
                                             _lta_spec(root.public_bytes(Encoding.DER))))
    assert report.api_status.bottom_line, report.failure_msg
    root_pem = tmp_path / "demo-root.pem"
    root_pem.write_bytes(root.public_bytes(Encoding.PEM))
    checked = pdfsig(app, tmp_path, data, extra_roots=(str(root_pem),))
    assert checked.count("Signature is Valid") >= 2, checked
