"""The archive's upkeep: copies whose archive timestamp nears the end of its certificate
are stamped again (with fresh revocation answers for the old stamp's chain), one copy per
unit of work, so one failure never holds back the others."""
from __future__ import annotations

import datetime as dt
import logging

from flask import current_app
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.transactions import atomic
from modules.signing import services

log = logging.getLogger(__name__)


def renew_archives(session: Session, margin: dt.timedelta, limit: int = 100) -> dict[str, int]:
    """What was renewed, skipped (no timestamp service) and failed (logged, tried again
    at the next run)."""
    done = {"renewed": 0, "skipped": 0, "failed": 0}
    for document_id in services.archives_due(session, margin, limit):
        try:
            with atomic(session):
                renewed = services.renew_archive(session, document_id)
        except DomainError as exc:
            log.warning("archive of document %s not renewed: %s", document_id, exc.message)
            done["failed"] += 1
            continue
        done["renewed" if renewed else "skipped"] += 1
    if any(done.values()):
        log.info("archive renewal: %s", done)
    return done


def renewal_job() -> None:
    from app.extensions import db

    renew_archives(db.session, dt.timedelta(days=current_app.config["ARCHIVE_RENEW_DAYS"]))


def warm_explanations_job() -> None:
    """Copies delivered lately, explained before anyone scans their QR code."""
    from app.extensions import db

    services.warm_explanations(db.session)
