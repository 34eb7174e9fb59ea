"""Long exports in the background: a list's filtered view written by the jobs worker, with
a progress page and a download link when ready.

The job replays the list as the user who asked (same scope, same filters: the query
string of the list), so a background export can never show more than the list did.
Files live under ``SAOY_DATA_DIR/exports`` (not in the file store: they are working
copies, removed after ``SAOY_EXPORT_KEEP_HOURS``); only the user who asked may fetch one.
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, jsonify, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, Model, expose
from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, Enum, ForeignKey, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app import queue
from app.labels import labelled
from app.modules import Job, ModuleSpec, View
from app.ownership import Owner
from app.scope import scope, scoped
from app.timeutil import utcnow
from app.transactions import UnitSession, atomic
from app.web import acting_as, current_user

log = logging.getLogger(__name__)
PROGRESS_EVERY = 2000
LEASE = dt.timedelta(minutes=15)


class ExportState(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


EXPORT_STATE_LABELS = labelled({
    ExportState.queued: _l("Waiting"), ExportState.running: _l("Writing"),
    ExportState.done: _l("Ready"), ExportState.failed: _l("Failed"),
})


class ExportJob(Model):
    """A background export; private to the user who asked (administrators included)."""

    __tablename__ = "export_job"
    __owner__ = Owner(user="user_id")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True, nullable=False)
    view: Mapped[str] = mapped_column(String(128), nullable=False)
    query_string: Mapped[str] = mapped_column(Text, nullable=False, default="")
    fmt: Mapped[str] = mapped_column(String(8), nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[ExportState] = mapped_column(
        Enum(ExportState, name="export_state", native_enum=False, length=16),
        nullable=False, default=ExportState.queued, index=True)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: The list's address without slashes: the downloaded file's name.
    title_slug: Mapped[str | None] = mapped_column(String(64))

    @property
    def filename(self) -> str:
        return f"{self.title_slug or 'export'}-{self.id}.{self.fmt}"


def exports_dir(app: Flask | None = None) -> Path:
    folder = Path((app or current_app).config["DATA_DIR"]) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def file_path(job: ExportJob, app: Flask | None = None) -> Path:
    return exports_dir(app) / f"{job.id}.{job.fmt}"


# --- asking for one (the list's export button) -----------------------------------------

def queue_export(view: Any, fmt: str) -> ExportJob:
    """A background export of ``view``'s current filtered list, for the current user."""
    from app.extensions import db

    user = current_user()
    with atomic(db.session):
        job = ExportJob(user_id=user.id, view=type(view).__name__, fmt=fmt,
                        query_string=request.query_string.decode("ascii", "replace")[:4000],
                        title=str(view.list_title)[:255],
                        title_slug=view.route_base.strip("/")[:64])
        db.session.add(job)
        db.session.flush()
    return job


def progress_url(job: ExportJob) -> str:
    return url_for("ExportJobView.show", pk=job.id)


# --- the worker --------------------------------------------------------------------------

def run_pending(app: Flask | None = None, limit: int = 3) -> int:
    """Claim and write queued exports (also those whose writer died: the lease expired).
    Safe in several processes: a job is claimed by a compare-and-set UPDATE."""
    from app.extensions import db

    app = app or current_app._get_current_object()
    done = 0
    for _round in range(limit):
        with UnitSession(bind=db.engine) as session:
            job_id = _claim(session)
        if job_id is None:
            break
        _write(app, job_id)
        done += 1
    _remove_old(app)
    return done


def _claim(session: Session) -> int | None:
    """One queued export (or one whose writer died: its lease ran out), for this process."""
    now = utcnow()
    due = or_(ExportJob.state == ExportState.queued,
              (ExportJob.state == ExportState.running) & (ExportJob.lease_until < now))
    ids = queue.claim(session, ExportJob, due,
                      {"state": ExportState.running, "started_at": now,
                       "lease_until": now + LEASE, "rows_done": 0},
                      limit=1, order_by=(ExportJob.id,))
    return ids[0] if ids else None


def _progress(app: Flask, job_id: int, **values: Any) -> None:
    """Progress is written in its own short transaction (the export's read stays open)."""
    from app.extensions import db

    with UnitSession(bind=db.engine) as session, atomic(session):
        session.execute(update(ExportJob).where(ExportJob.id == job_id)
                        .values(lease_until=utcnow() + LEASE, **values))


def _write(app: Flask, job_id: int) -> None:
    """Replay the list as its owner sees it: the list's own query with the scope and the
    permissions of the user who asked (``acting_as``), no one signed in."""
    from app.exports import csv_chunks, write_xlsx
    from app.extensions import db
    from app.users import StaffUser

    job = db.session.get(ExportJob, job_id)
    view = next((v for v in app.appbuilder.baseviews if type(v).__name__ == job.view), None)
    user = db.session.get(StaffUser, job.user_id)
    target = file_path(job, app)
    try:
        if view is None or user is None or not user.is_active:
            raise PermissionError("the list or the user is gone")
        if not app.appbuilder.sm._has_view_access(user, "can_list", view.class_permission_name):
            raise PermissionError("the user may no longer export this list")
        with app.test_request_context(f"{view.route_base}/list/?{job.query_string}"), \
                acting_as(user):
            columns, headers = view.export_table()
            _progress(app, job_id, rows_total=view.export_count())
            rows = _counted(app, job_id, view.export_rows(columns))
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=f".{job.fmt}.tmp")
            os.close(fd)
            if job.fmt == "csv":
                with open(tmp, "w", encoding="utf-8", newline="") as out:
                    for chunk in csv_chunks(headers, rows):
                        out.write(chunk)
            else:
                write_xlsx(tmp, job.title, headers, rows)
            os.replace(tmp, target)
        _progress(app, job_id, state=ExportState.done, finished_at=utcnow())
    except Exception as exc:
        log.exception("export %s failed", job_id)
        _progress(app, job_id, state=ExportState.failed, finished_at=utcnow(),
                  error=type(exc).__name__)
    finally:
        db.session.remove()


def _counted(app: Flask, job_id: int, rows):
    count = 0
    for row in rows:
        count += 1
        if count % PROGRESS_EVERY == 0:
            _progress(app, job_id, rows_done=count)
        yield row
    _progress(app, job_id, rows_done=count)


def _remove_old(app: Flask) -> None:
    """Exports older than SAOY_EXPORT_KEEP_HOURS: the file goes, the row stays (history)."""
    limit = dt.datetime.now().timestamp() - app.config["EXPORT_KEEP_HOURS"] * 3600
    for path in exports_dir(app).iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


def run_job() -> None:
    run_pending()


# --- pages -------------------------------------------------------------------------------

class ExportJobView(BaseView):
    """``/exports/<id>``: progress, then the download link.  Only the user who asked
    sees a job (404 for anyone else)."""

    route_base = "/exports"
    default_view = "mine"
    scoped_model = ExportJob

    def _mine(self, pk: int) -> ExportJob:
        from app.extensions import db

        return scoped(db.session, current_user(), ExportJob).get_or_404(pk)

    def _signed_in(self) -> bool:
        user = current_user()
        return bool(user is not None and getattr(user, "is_authenticated", False))

    @expose("/")
    def mine(self):
        from app.extensions import db

        if not self._signed_in():
            return redirect(url_for("AuthDBView.login"))
        jobs = db.session.scalars(select(ExportJob).where(
            scope(current_user(), ExportJob)).order_by(ExportJob.id.desc()).limit(20))
        return self.render_template("saoy/exports.html", jobs=list(jobs), job=None)

    @expose("/<int:pk>")
    def show(self, pk: int):
        if not self._signed_in():
            return redirect(url_for("AuthDBView.login"))
        return self.render_template("saoy/exports.html", job=self._mine(pk), jobs=[])

    @expose("/<int:pk>/status")
    def status(self, pk: int):
        if not self._signed_in():
            abort(404)
        job = self._mine(pk)
        return jsonify(state=job.state.value, label=str(EXPORT_STATE_LABELS[job.state]),
                       rows_done=job.rows_done, rows_total=job.rows_total,
                       ready=job.state is ExportState.done and file_path(job).exists(),
                       download=url_for("ExportJobView.download", pk=job.id))

    @expose("/<int:pk>/file")
    def download(self, pk: int):
        if not self._signed_in():
            abort(404)
        job = self._mine(pk)
        path = file_path(job)
        if job.state is not ExportState.done or not path.exists():
            abort(404)
        from app.exports import XLSX_MIMETYPE

        return send_file(path, as_attachment=True, download_name=job.filename, max_age=0,
                         mimetype=XLSX_MIMETYPE if job.fmt == "xlsx" else
                         "text/csv; charset=utf-8")


MODULE = ModuleSpec(
    name="exports",
    platform=True,
    depends=("offices",),
    models="app.export_jobs",
    menu=(View("app.export_jobs:ExportJobView"),),
    jobs=(Job("platform.exports", run_job, seconds=5),),
)
