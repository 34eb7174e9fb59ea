"""gunicorn for SaoY: sync workers (one request at a time per process: FAB's search
filters are shared per view), the app loaded once before forking (``preload_app``), and
every worker's database pool reset after the fork (a socket opened in the master must
never be shared).  PKCS#11 sessions are opened per signature (a batch keeps one for its
request), so none crosses a fork.  Jobs run in ``saoy worker``, never in these processes."""
import os

os.environ.setdefault("SAOY_PROCESS", "web")  # the preloaded app warms up before forking
os.environ["SAOY_SCHEDULER"] = "0"  # a scheduler in the master would not survive the fork
bind = os.environ.get("SAOY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SAOY_WORKERS", "2"))
worker_class = "sync"
preload_app = True
timeout = int(os.environ.get("SAOY_WORKER_TIMEOUT", "300"))  # long exports, 30 MB sealing
graceful_timeout = 30
max_requests = 2000  # a fresh process now and then keeps memory flat
max_requests_jitter = 200
limit_request_field_size = 16384
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"
errorlog = "-"
wsgi_app = "run:app"


def post_fork(server, worker):
    from app.extensions import db
    from run import app

    with app.app_context():
        db.engine.dispose(close=False)  # forget the master's connections, do not close them
