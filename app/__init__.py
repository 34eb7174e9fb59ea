"""SaoY application factory: database, AppBuilder, Babel, module registry, scheduler."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing import IntegerConverter

from app import errors, http, i18n, security, sessions
from app.cli import register_cli
from app.extensions import csrf, db, migrate
from app.modules import load_modules, register_all, resolve, specs_of
from app.params import TextRequest
from app.storage import FileStore

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
#: The platform's parts, in menu order; the feature modules follow (``SAOY_MODULES``).
PLATFORM_PARTS = ("app.offices", "app.notifications", "app.export_jobs", "app.citizens",
                  "app.views")

# Vietnam time for everything the process prints or stamps (pyHanko's visible signing
# time and APScheduler read the local zone); storage stays UTC.
os.environ["TZ"] = "Asia/Ho_Chi_Minh"
time.tzset()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys, WAL for concurrent readers, wait on locks."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


class BoundedInt(IntegerConverter):
    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app.  ``overrides`` (tests) win over environment-driven config."""
    from config import Config

    app = Flask(
        __name__,
        template_folder=str(ROOT / "app" / "templates"),
        static_folder=str(ROOT / "app" / "static"),
        static_url_path="/static",
    )
    app.request_class = TextRequest  # form text checked at the door, as it is parsed
    app.url_map.converters["int"] = BoundedInt  # ids beyond 32 bits are 404, not SQL errors
    app.config.from_object(Config)
    if overrides:
        app.config.update(overrides)
    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    from app.passwords import fab_validator

    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", fab_validator)
    if not app.config.get("KEYSTORE_DIR"):
        app.config["KEYSTORE_DIR"] = str(data_dir / "keystore")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:  # a restarted server or a killed connection: the next checkout reconnects
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    # The platform's parts first, then the modules (the registry checks table ownership).
    specs = load_modules((*PLATFORM_PARTS, *app.config["SAOY_MODULES"]))
    app.extensions["saoy_modules"] = specs
    # Each module keeps its templates in modules/<name>/templates/<name>/.
    app.jinja_loader = ChoiceLoader([app.jinja_loader] + [
        FileSystemLoader(str(ROOT / "modules" / spec.name / "templates"))
        for spec in specs if not spec.platform])
    app.config["FAB_ROLES"] = security.builtin_roles_config(specs)

    app.extensions["saoy_files"] = FileStore(data_dir / "files")
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)

    with app.app_context():
        appbuilder = AppBuilder(update_perms=app.config["FAB_UPDATE_PERMS"])
        appbuilder.init_app(app, db.session)
        register_all(app, appbuilder, specs)
    exempt_from_global_csrf(app)

    from app.params import bound_request_body, check_request_text

    app.before_request_funcs.setdefault(None, []).insert(0, bound_request_body)
    app.before_request_funcs[None].insert(1, check_request_text)
    app.before_request(security.guard_session_api_calls)
    http.register(app)
    sessions.register(app)
    errors.register_error_handlers(app)
    i18n.register(app)
    register_cli(app)

    if app.config.get("PROXY_FIX"):  # behind nginx: its X-Forwarded-* are the truth
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,
                                x_port=hops)
    if _serving(app):
        warm_up(app)
        if app.config.get("SCHEDULER_ENABLED"):
            from app.jobs import start_scheduler

            start_scheduler(app)
    return app


def _serving(app: Flask) -> bool:
    """A web server process (`make demo`, gunicorn), not `flask db …` or tests."""
    if app.config.get("TESTING"):
        return False
    return os.environ.get("SAOY_PROCESS") == "web"


def warm_up(app: Flask) -> None:
    """Each module's one-time work before the first request (with gunicorn's preload, in
    the master: every worker starts warm)."""
    with app.app_context():
        for spec in specs_of(app):
            if spec.warm_up:
                resolve(spec.warm_up)()


def exempt_from_global_csrf(app: Flask) -> None:
    """REST APIs authenticate with bearer tokens (cookie calls are guarded by
    ``security.guard_session_api_calls``); upload views check the token themselves."""
    for blueprint in app.blueprints.values():
        if (blueprint.url_prefix or "").startswith("/api/"):
            csrf.exempt(blueprint)
    for view in app.view_functions.values():
        if getattr(view, "saoy_own_csrf", False):
            csrf.exempt(view)
