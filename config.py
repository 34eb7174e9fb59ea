"""Deployment settings, all read from environment variables with safe defaults.

Nothing secret is committed: the Flask secret is generated once into the data
directory when SAOY_SECRET_KEY is not set.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from flask_appbuilder.const import AUTH_DB

BASE_DIR = Path(__file__).resolve().parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    try:
        return int(_env(name, str(default)))
    except ValueError:
        return default


def _env_bool(name: str, default: bool | None) -> bool | None:
    value = _env(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _env_pairs(name: str) -> dict[str, str]:
    """``name=value,name2=value2`` (values may contain '=', names may not)."""
    pairs = {}
    for item in (_env(name) or "").split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key.strip() and value.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def _secret_key(data_dir: Path) -> str:
    """Use SAOY_SECRET_KEY, else a key generated once and kept in the data dir."""
    key = _env("SAOY_SECRET_KEY")
    if key:
        return key
    path = data_dir / "secret_key"
    if not path.exists():
        # Written whole, then linked into place: concurrent first starts agree on one key.
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


class Config:
    """Settings shared by every process (web, worker, CLI)."""

    DATA_DIR = Path(_env("SAOY_DATA_DIR", str(BASE_DIR / "instance"))).resolve()
    PORT = _env_int("PORT", 5000)
    SECRET_KEY = _secret_key(DATA_DIR)
    SQLALCHEMY_DATABASE_URI = _env(
        "SAOY_DATABASE_URL", f"sqlite:///{DATA_DIR / 'saoy.db'}"
    )
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    BASE_URL = _env("SAOY_BASE_URL", f"http://127.0.0.1:{PORT}")
    DEMO_MODE = _env_bool("SAOY_DEMO", False)
    #: Proxies in front (nginx: 1) whose X-Forwarded-For/Proto/Host are trusted.
    PROXY_FIX = _env_int("SAOY_PROXY_FIX", 0)

    # Flask-AppBuilder
    APP_NAME = "SaoY"
    APP_THEME = ""
    AUTH_TYPE = AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    FAB_SECURITY_MANAGER_CLASS = "app.security.SaoySecurityManager"
    FAB_INDEX_VIEW = "app.views.HomeView"
    FAB_CREATE_DB = True  # our security manager only seeds roles, never creates tables
    FAB_UPDATE_PERMS = _env_bool("SAOY_UPDATE_PERMS", False)
    FAB_API_SWAGGER_UI = True
    FAB_ADD_SECURITY_API = False
    # Roles and their permissions live in code (FAB_ROLES): FAB's pages that would edit
    # permissions by hand are not offered.
    FAB_ADD_SECURITY_PERMISSION_VIEW = False
    FAB_ADD_SECURITY_VIEW_MENU_VIEW = False
    FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW = False
    FAB_API_MAX_PAGE_SIZE = 100
    FAB_PASSWORD_HASH_METHOD = "scrypt"
    PAGE_SIZE_MAX = 100

    # Security basics
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None
    AUTH_RATE_LIMITED = _env_bool("SAOY_LOGIN_RATE_LIMITED", True)
    #: Per address (generous: a whole office may share one NAT address); each account is
    #: also locked after SAOY_LOGIN_LOCK_AFTER failures in a row, with growing back-off.
    AUTH_RATE_LIMIT = _env("SAOY_LOGIN_RATE_LIMIT", "60 per 5 minute")
    LOGIN_LOCK_AFTER = _env_int("SAOY_LOGIN_LOCK_AFTER", 5)
    LOGIN_LOCK_MAX_MINUTES = _env_int("SAOY_LOGIN_LOCK_MAX_MINUTES", 60)
    #: Server-Timing's pieces (statements, commits, signature …) besides the whole, for
    #: signed-in staff only, when an operator or a benchmark asks: their counts tell apart
    #: answers made to look alike (a failed sign-in of an existing account runs more
    #: statements than one of nobody).
    SERVER_TIMING_PIECES = _env_bool("SAOY_SERVER_TIMING_PIECES", False)
    FAB_PASSWORD_COMPLEXITY_ENABLED = True  # the validator: app.passwords (create_app)
    RATELIMIT_STORAGE_URI = _env("SAOY_RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = BASE_URL.startswith("https://")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PERMANENT_SESSION_LIFETIME = _env_int("SAOY_SESSION_MINUTES", 480) * 60
    JWT_ACCESS_TOKEN_EXPIRES = _env_int("SAOY_API_TOKEN_MINUTES", 60) * 60
    JWT_REFRESH_TOKEN_EXPIRES = _env_int("SAOY_API_REFRESH_HOURS", 12) * 3600
    PROPAGATE_EXCEPTIONS = False

    # Languages and time
    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")
    LANGUAGES = {
        "vi": {"flag": "vn", "name": "Tiếng Việt"},
        "en": {"flag": "gb", "name": "English"},
    }
    DISPLAY_TIMEZONE = "Asia/Ho_Chi_Minh"

    # Modules loaded by the registry, in any order: dependencies decide the order.
    SAOY_MODULES = [
        "modules.registers",
        "modules.signing",
        "modules.appointments",
        "modules.copies",
        "modules.supervision",
    ]

    # Jobs
    SCHEDULER_ENABLED = _env_bool("SAOY_SCHEDULER", True)

    # Notifications: unset SMTP host / SMS gateway → the console channel (demo).
    SMTP_HOST = _env("SAOY_SMTP_HOST")
    SMTP_PORT = _env_int("SAOY_SMTP_PORT", 587)
    SMTP_USER = _env("SAOY_SMTP_USER")
    SMTP_PASSWORD = _env("SAOY_SMTP_PASSWORD")
    SMTP_SECURITY = _env("SAOY_SMTP_SECURITY", "starttls")  # none / starttls / ssl
    SMTP_TIMEOUT = _env_int("SAOY_SMTP_TIMEOUT", 20)
    MAIL_FROM = _env("SAOY_MAIL_FROM", "SaoY <no-reply@saoy.localhost>")
    SMS_GATEWAY_URL = _env("SAOY_SMS_GATEWAY_URL")
    SMS_GATEWAY_TOKEN = _env("SAOY_SMS_GATEWAY_TOKEN")
    #: JSON body with $phone, $text and $id placeholders (string values only).
    SMS_GATEWAY_TEMPLATE = _env("SAOY_SMS_GATEWAY_TEMPLATE",
                                '{"phone": "$phone", "text": "$text", "id": "$id"}')
    SMS_UNACCENTED = _env_bool("SAOY_SMS_UNACCENTED", False)
    SMS_TIMEOUT = _env_int("SAOY_SMS_TIMEOUT", 10)
    OUTBOX_INTERVAL_SECONDS = _env_int("SAOY_OUTBOX_INTERVAL", 5)
    OUTBOX_BATCH = _env_int("SAOY_OUTBOX_BATCH", 50)
    OUTBOX_MAX_ATTEMPTS = _env_int("SAOY_OUTBOX_MAX_ATTEMPTS", 8)
    OUTBOX_BACKOFF_SECONDS = _env_int("SAOY_OUTBOX_BACKOFF", 30)
    OUTBOX_BACKOFF_MAX_SECONDS = _env_int("SAOY_OUTBOX_BACKOFF_MAX", 3600)
    #: A claimed message not recorded within this time is claimed again (crash recovery).
    OUTBOX_LEASE_SECONDS = _env_int("SAOY_OUTBOX_LEASE", 300)

    #: Remote signing providers speaking the CSC API: "name=https://…;other=https://…"
    #: (a provider's bearer token: the file named by SAOY_CSC_<NAME>_TOKEN_FILE).
    CSC_PROVIDERS = _env("SAOY_CSC_PROVIDERS", "")
    CSC_TIMEOUT = _env_int("SAOY_CSC_TIMEOUT", 30)

    #: Where citizens report an accessibility problem (the statement page shows it).
    ACCESSIBILITY_CONTACT = _env("SAOY_ACCESSIBILITY_CONTACT", "tiepcan@saoy.example")

    # Registers
    REGISTER_TYPE_SYMBOL = _env("SAOY_REGISTER_SYMBOL", "SCTĐT/BS")
    #: The first day district justice divisions no longer certify (two-tier local
    #: government, Nghị quyết 202/2025/QH15): new work only at communes from then on.
    DISTRICT_LEVEL_ENDED = dt.date.fromisoformat(_env("SAOY_DISTRICT_LEVEL_ENDED",
                                                      "2025-07-01"))  # TWO_TIER_FROM

    # Appointments
    APPOINTMENT_MAX_ACTIVE = _env_int("SAOY_APPOINTMENT_MAX_ACTIVE", 3)
    #: Reminders go out from this hour (Vietnam time) on the day before.
    APPOINTMENT_REMINDER_HOUR = _env_int("SAOY_APPOINTMENT_REMINDER_HOUR", 8)
    #: How often the reminder and no-show jobs look (seconds).
    APPOINTMENT_JOBS_SECONDS = _env_int("SAOY_APPOINTMENT_JOBS_SECONDS", 900)

    # Copy requests: fees (Thông tư 226/2016/TT-BTC) and time limits, in đồng and hours.
    FEE_FIRST_PAGES = _env_int("SAOY_FEE_FIRST_PAGES", 2)
    FEE_FIRST_PAGE_RATE = _env_int("SAOY_FEE_FIRST_PAGE_RATE", 2000)
    FEE_LATER_PAGE_RATE = _env_int("SAOY_FEE_LATER_PAGE_RATE", 1000)
    FEE_CAP_PER_COPY = _env_int("SAOY_FEE_CAP_PER_COPY", 200000)
    #: Received after this hour (Vietnam time): due the next working day.
    SAME_DAY_CUTOFF_HOUR = _env_int("SAOY_SAME_DAY_CUTOFF_HOUR", 15)
    RETURN_HOUR = _env_int("SAOY_RETURN_HOUR", 16)
    MIN_SCAN_DPI = _env_int("SAOY_MIN_SCAN_DPI", 200)
    MAX_SCAN_PAGES = _env_int("SAOY_MAX_SCAN_PAGES", 500)

    # Signing: keys never live in the database.  PKCS#12 keys are imported by the system
    # administrator into the keystore (one passphrase per key, beside it or in
    # SAOY_KEY_PASSPHRASE_<fingerprint prefix>); tokens are declared with their PIN files.
    KEYSTORE_DIR = _env("SAOY_KEYSTORE_DIR")  # default: <data dir>/keystore
    PKCS11_LIB = _env("SAOY_PKCS11_LIB")
    #: ``token label=PIN file`` pairs: the only tokens signer keys may live on.
    PKCS11_TOKENS = _env_pairs("SAOY_PKCS11_TOKENS")
    #: ``name=URL`` pairs: the only timestamp services signer profiles may use.
    TSA_ALLOWED = _env_pairs("SAOY_TSA_ALLOWED")
    TSA_URL = _env("SAOY_TSA_URL")  # the default service (allowed too)
    #: `make demo`: where the demo PKI's OCSP, CRL and TSA answer (``saoy demo-pki``); its
    #: TSA is then the default one.  Unset: demo certificates name no responder.
    DEMO_PKI_URL = _env("SAOY_DEMO_PKI_URL")
    TSA_TIMEOUT = _env_int("SAOY_TSA_TIMEOUT", 10)
    #: Revocation (OCSP/CRL) is fetched only from hosts named in trusted or registered
    #: certificates, plus these (``host[:port],…``); ``written=asked,…`` rewrites a host
    #: named in certificates (VGCA's internal ``ocsp.ca.ptc`` → ``ocsp.ca.gov.vn``).
    REVOCATION_HOSTS = _env("SAOY_REVOCATION_HOSTS", "")
    REVOCATION_REWRITE = _env("SAOY_REVOCATION_REWRITE", "ocsp.ca.ptc=ocsp.ca.gov.vn")
    REVOCATION_SECONDS = _env_int("SAOY_REVOCATION_SECONDS", 5)
    #: How long an OCSP or CRL answer is reused (per process) before it is asked again.
    REVOCATION_CACHE_SECONDS = _env_int("SAOY_REVOCATION_CACHE_SECONDS", 300)
    #: Delivery refuses when a copy cannot be made B-LTA (no TSA).  Unset: required
    #: everywhere but a demo (``SAOY_DEMO=1`` without a served demo PKI).
    ARCHIVE_REQUIRED = _env_bool("SAOY_ARCHIVE_REQUIRED", None)
    #: A copy's archive timestamp is renewed this many days before its TSA certificate ends.
    ARCHIVE_RENEW_DAYS = _env_int("SAOY_ARCHIVE_RENEW_DAYS", 180)
    FONT_DIR = _env("SAOY_FONT_DIR", "/usr/share/fonts/truetype/noto")
    #: The signing plugin on the leader's computer (VGCA Sign Service, or SaoY's own
    #: signer): its local address and the function the leader's signature calls.
    SIGNER_URL = _env("SAOY_SIGNER_URL", "wss://127.0.0.1:8987")
    SIGNER_FUNCTION = _env("SAOY_SIGNER_FUNCTION", "SignApproved")
    #: How long a signing job's one-time download and upload links stay valid.
    SIGNING_JOB_MINUTES = _env_int("SAOY_SIGNING_JOB_MINUTES", 10)
    #: The plugin's doors (download, upload) per client address.
    SIGNER_RATE_LIMIT = _env("SAOY_SIGNER_RATE_LIMIT", "240 per 10 minute")

    # Citizens: a national identity provider (OpenID Connect, e.g. VNeID) proves identity.
    OIDC_ISSUER = _env("SAOY_OIDC_ISSUER")
    OIDC_CLIENT_ID = _env("SAOY_OIDC_CLIENT_ID")
    OIDC_CLIENT_SECRET = _env("SAOY_OIDC_CLIENT_SECRET")
    OIDC_IDENTITY_CLAIM = _env("SAOY_OIDC_IDENTITY_CLAIM", "identity_number")
    OIDC_NAME = _env("SAOY_OIDC_NAME", "VNeID")
    OIDC_SCOPE = _env("SAOY_OIDC_SCOPE", "openid profile")

    # Uploads and documents
    MAX_UPLOAD_MB = _env_int("SAOY_MAX_UPLOAD_MB", 30)
    # Public verification: budget of one verification and per address.
    VERIFY_MAX_MB = _env_int("SAOY_VERIFY_MAX_MB", MAX_UPLOAD_MB + 5)
    VERIFY_MAX_REVISIONS = _env_int("SAOY_VERIFY_MAX_REVISIONS", 30)
    VERIFY_MAX_RENDERS = _env_int("SAOY_VERIFY_MAX_RENDERS", 60)
    # One verification's wall time and memory (its child is killed past them).
    VERIFY_SECONDS = _env_int("SAOY_VERIFY_SECONDS", 15)
    VERIFY_MEMORY_MB = _env_int("SAOY_VERIFY_MEMORY_MB", 300)
    VERIFY_RATE_LIMIT = _env("SAOY_VERIFY_RATE_LIMIT", "30 per 10 minute")
    #: How long the explanation of one of our copies is kept (in the data folder, shared by
    #: every server process; the jobs worker makes it as soon as a copy is sealed), and how
    #: often the worker looks for sealed copies not explained yet.
    VERIFY_KEEP_HOURS = _env_int("SAOY_VERIFY_KEEP_HOURS", 24)
    VERIFY_WARM_SECONDS = _env_int("SAOY_VERIFY_WARM_SECONDS", 15)
    #: Citizens looked up by identity number (intake's account search, counter codes), per
    #: staff member: a counter serves a few dozen people an hour.
    IDENTITY_LOOKUP_RATE_LIMIT = _env("SAOY_IDENTITY_LOOKUP_RATE_LIMIT", "120 per hour")
    #: Exports longer than this are written in the background (progress page, link).
    EXPORT_INLINE_ROWS = _env_int("SAOY_EXPORT_INLINE_ROWS", 20000)
    #: A list counts its rows exactly up to this many; beyond (PostgreSQL), the pager
    #: says "about N" from the planner's estimate instead of counting a million rows.
    LIST_EXACT_COUNT = _env_int("SAOY_LIST_EXACT_COUNT", 10000)
    EXPORT_KEEP_HOURS = _env_int("SAOY_EXPORT_KEEP_HOURS", 24)
    #: The hard cap on any request body; bodies without a file are cut at 1 MB.
    MAX_CONTENT_LENGTH = (max(MAX_UPLOAD_MB, VERIFY_MAX_MB) + 1) * 2**20
    BUNDLED_TRUST_DIR = str(BASE_DIR / "trust")  # Vietnamese roots, always trusted
    TRUST_DIR = _env("SAOY_TRUST_DIR")  # extra anchors (PEM files)
