"""Key custody helpers for tests: demo certificates, a profile switched to another key."""
from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import select

from app.transactions import atomic


def demo_token(app, slug: str, common_name: str, organisation: str, uid: str | None = None):
    """A key pair from the demo PKI standing in for a leader's own token."""
    from modules.signing.pki import DemoPki
    from modules.signing.signers import load_pkcs12

    pki = DemoPki(Path(app.config["DATA_DIR"]) / "pki")
    issued = pki.issue(slug, common_name, organisation, uid)
    return load_pkcs12(issued.p12_path.read_bytes(), pki.passphrase), issued


def profile_of(session, office_id: int, user_id: int | None):
    from modules.signing.models import SignerProfile

    return session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == office_id,
        SignerProfile.user_id.is_(None) if user_id is None
        else SignerProfile.user_id == user_id)).one()


@contextlib.contextmanager
def signing_with(session, office_id: int, user_id: int | None, key_id: int):
    """The profile signs with ``key_id`` inside the block, then with its own key again."""
    profile = profile_of(session, office_id, user_id)
    saved = profile.key_id
    with atomic(session):
        profile.key_id = key_id
    try:
        yield profile
    finally:
        session.rollback()
        with atomic(session):
            profile_of(session, office_id, user_id).key_id = saved
