"""Settings, read from the environment (12-factor). Defaults are for a laptop demo."""

from __future__ import annotations

import contextlib
import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from jobs import conf as jobs_conf

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


# Two small helpers rather than django-environ: with dj-database-url doing the URL, they are all
# the parsing these settings need, and shorter than its Env schema.
def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("ALLOW_INSECURE_KEY"):
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a generated development key).")
    # Generated once per checkout so sessions survive restarts of the demo.
    # Owner-only (0600), like var/demo-env.json: the key signs sessions and password resets.
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process just made it
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(get_random_secret_key())
    elif key_file.stat().st_mode & 0o077:
        with contextlib.suppress(OSError):  # made by an older version: tighten it
            key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.ProjectAdminConfig",  # django.contrib.admin, its site guarded (input_guard)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_rq",
    "graphene_django",
    "health_check",
    "axes",
    "bundles",
    "jobs",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads parameters: NUL characters are refused with 400 (input_guard).
    "config.input_guard.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Signal receivers record the saving user on the jobs they cause (jobs/actor.py).
    "jobs.actor.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username/IP before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own overrides (admin branding, error pages); each app still ships its
        # own templates (jobs/templates, bundles/templates), so jobs stays reusable.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Workers run in other processes: the test database must be a file they can open too.
    # The suite sets TEST_SQLITE_NAME per run so parallel runs don't share a file.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TEST_SQLITE_NAME", str(VAR_DIR / "test-db.sqlite3"))
    }
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        # WAL lets the web server read while a worker writes. A checkpoint (which syncs the
        # file) every 10,000 pages rather than SQLite's 1,000: a catalog recompute commits a
        # batch every few milliseconds, and every tenth commit paid for a checkpoint.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;"
        ),
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Sessions start in UTC, so Django need not send SET TIME ZONE on every new connection
    # (a forking worker's horse opens one per job; a server whose zone is "Etc/UTC" is not
    # "UTC" to Django).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c TimeZone=UTC")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the project's own files (the favicon)

# --- redis and RQ ---------------------------------------------------------------------------
# With no REDIS_URL the demo command and the test suite start a private server and set it.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

JOB_QUEUES = (
    "bundle-recompute",
    "bundle-reindex",
    "bundle-consistency-check",
    "bundle-bulk-operation",
)
# Connect timeout 2 s: with Redis unreachable, a save's on-commit dispatch gives up quickly and
# the relay sends the job later. django-rq 4.2 ignores REDIS_CLIENT_KWARGS for a URL config, so
# it goes in the URL's query (a value already in REDIS_URL comes first and wins). No
# socket_timeout: RQ workers block on dequeue and set their own.
RQ_QUEUES = {
    name: {
        "URL": f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}socket_connect_timeout=2",
        "DEFAULT_TIMEOUT": 600,
    }
    for name in (*JOB_QUEUES, "default")
}
RQ_SHOW_ADMIN_LINK = False

# rq-scheduler calls crontab without default_utc; our times are aware UTC, so the warning that
# crontab's default will change is noise in every scheduler log line.
warnings.filterwarnings("ignore", message=r"Version 0\.22\.0\+ of crontab", category=FutureWarning)

# --- jobs -----------------------------------------------------------------------------------
JOBS_RETENTION_DAYS = int(os.environ.get("JOBS_RETENTION_DAYS", "30"))
# No purge keeps fewer days (a schedule's retention_days is refused below it).
JOBS_MIN_RETENTION_DAYS = int(os.environ.get("JOBS_MIN_RETENTION_DAYS", "1"))
# A running job whose worker has not reported for this long is considered dead.
JOBS_STALE_AFTER_SECONDS = int(os.environ.get("JOBS_STALE_AFTER_SECONDS", "90"))
# A new fan-out job is started no sooner than this after its first change, so a burst of saves
# merges into one job; up to 2 s the worker that takes it waits out the window (exact), longer
# windows go through RQ's scheduler (whole seconds).
BUNDLES_FANOUT_DEBOUNCE_SECONDS = float(os.environ.get("BUNDLES_FANOUT_DEBOUNCE_SECONDS", "1"))
# Bundles per coalesced recompute batch job (fan-outs, feeds).
BUNDLES_RECOMPUTE_BATCH_SIZE = int(os.environ.get("BUNDLES_RECOMPUTE_BATCH_SIZE", "500"))
# Bundles per batch job of a bulk operation when its caller names no batch size.
BUNDLES_BULK_BATCH_SIZE = int(os.environ.get("BUNDLES_BULK_BATCH_SIZE", "500"))
# Variants per fan-out job (a bigger feed makes several).
BUNDLES_FANOUT_MAX_VARIANTS = int(os.environ.get("BUNDLES_FANOUT_MAX_VARIANTS", "10000"))
# Bundles a consistency check's result lists with their reasons (``unlisted`` counts the rest).
BUNDLES_CHECK_MAX_LISTED = int(os.environ.get("BUNDLES_CHECK_MAX_LISTED", "1000"))
# /health/ fails when a component change has waited longer than this (seconds) to reach its
# bundles (bundles.freshness; the strip shows it red past it too).
BUNDLES_STALENESS_HEALTH_SECONDS = int(os.environ.get("BUNDLES_STALENESS_HEALTH_SECONDS", "600"))
# Cron schedules (UTC), all periodic work in one list. Each names a request function (the same
# one the admin, GraphQL and commands call) and its JSON arguments. Ids must stay stable.
JOBS_SCHEDULES = [
    # Every night at 02:00 UTC: check active bundles (the admin's "check active" merges in).
    {
        "id": "nightly-consistency-check",
        "cron": os.environ.get("JOBS_NIGHTLY_CRON", "0 2 * * *"),
        "request": "bundles.check",
        "kwargs": {"scope": "active", "fix": False, "notify_admins": True},
        "description": "Nightly consistency check of active bundles",
    },
    # Every Sunday at 03:00 UTC: check all with fix, reindex all, prune old jobs.
    {
        "id": "weekly-maintenance",
        "cron": os.environ.get("JOBS_WEEKLY_CRON", "0 3 * * 0"),
        "request": "bundles.maintenance",
        "kwargs": {},
        "description": "Weekly maintenance: check all (fix), reindex all, purge old jobs",
    },
    # Every minute: re-send undispatched jobs and reconcile jobs whose worker died.
    {
        "id": "relay-and-reconcile",
        "cron": "* * * * *",
        "request": "jobs.relay",
        "kwargs": {},
        "description": "Re-send undispatched jobs and reconcile dead ones",
    },
]

# /health/: the scheduler's heartbeat may be this old, the oldest waiting job wait this long.
JOBS_HEALTH_SCHEDULER_MAX_AGE = int(os.environ.get("JOBS_HEALTH_SCHEDULER_MAX_AGE", "60"))
JOBS_HEALTH_MAX_WAIT = int(os.environ.get("JOBS_HEALTH_MAX_WAIT", "600"))
# /metrics: a bearer token and/or client addresses (CIDR allowed) that may scrape it; staff may.
JOBS_METRICS_TOKEN = os.environ.get("JOBS_METRICS_TOKEN") or None
JOBS_METRICS_ALLOWED_IPS = env_list("JOBS_METRICS_ALLOWED_IPS")

# --- alerts (jobs.alerts, issue 24) -----------------------------------------------------------
# Webhook deliveries go to the quiet consistency-check queue, never behind a recompute burst.
JOBS_ALERTS_QUEUE = "bundle-consistency-check"
JOBS_ALERTS_INTERVAL = int(os.environ.get("JOBS_ALERTS_INTERVAL", "30"))
# Set both from the environment: the secret never lives in the repository.
JOBS_ALERT_WEBHOOK_URL = os.environ.get("JOBS_ALERT_WEBHOOK_URL", "")
JOBS_ALERT_WEBHOOK_SECRET = os.environ.get("JOBS_ALERT_WEBHOOK_SECRET", "")
# The default rules (the data migration creates them once; then the table is the truth).
# The jobs app's own default rules (jobs/conf.py), then the project's: one recompute-queue
# rule and the bundles' conditions.
JOBS_ALERT_RULES = [
    *jobs_conf.DEFAULTS["JOBS_ALERT_RULES"],
    # Recompute batches failing point at the pricing engine or the database: tighter than the
    # global rate. Off by default: enable once a shop knows its normal rate.
    {
        "name": "failure-rate-recompute",
        "condition": "failure_rate",
        "subject_type": "queue",
        "subject": "bundle-recompute",
        "threshold": 20,
        "min_count": 10,
        "window_seconds": 900,
        "enabled": False,
        "description": "Over 20 % of recompute jobs failed in 15 minutes",
    },
    # The last consistency check left broken bundles that it could not fix.
    {
        "name": "check-broken",
        "condition": "check_broken",
        "threshold": 0,
        "window_seconds": 86400 * 2,
        "description": "The last consistency check found broken bundles it did not fix",
    },
    # The oldest component change not yet in its bundles: 10 minutes is what shops complain of.
    {
        "name": "bundle-staleness",
        "condition": "bundle_staleness",
        "threshold": 600,
        "description": "A component change has waited 10 minutes to reach its bundles",
    },
]

# --- Django Tasks (django-tasks on 5.2, django.tasks on 6) ---------------------------------
# ``@task`` functions enqueue ledger jobs on the RQ queue their ``queue_name`` names.
TASKS = {
    "default": {
        "BACKEND": "jobs.tasks.LedgerBackend",
        "OPTIONS": {
            "MAX_ATTEMPTS": int(os.environ.get("JOBS_TASKS_MAX_ATTEMPTS", "3")),
            "BACKOFF": [int(s) for s in env_list("JOBS_TASKS_BACKOFF", "10,60,300")],
        },
    }
}

# --- mail -----------------------------------------------------------------------------------
ADMINS = [tuple(item.split(":", 1)) if ":" in item else (item, item) for item in env_list("ADMINS")]
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "bundles@localhost")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", SERVER_EMAIL)
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")

# --- graphql --------------------------------------------------------------------------------
GRAPHENE = {"SCHEMA": "config.schema.schema"}
# What GraphiQL opens on for a staff user who has not typed a query there before (its own
# local storage keeps what they type afterwards): a first look at this API, not the generic
# welcome text.
GRAPHIQL_DEFAULT_QUERY = """# Bundle jobs: queues and the newest jobs. Run it with Ctrl-Enter.
# The Docs panel lists every query and mutation: jobs, workers, schedules, bundles,
# recomputeBundle, bulkRecomputeBundles, runConsistencyCheck, retryJob, pauseQueue...
query Overview {
  jobQueues {
    name
    waiting
    running
    failed
    paused
    oldestWaitingSeconds
  }
  jobs(first: 10) {
    totalCount
    edges {
      node {
        id
        kind
        state
        progress
        progressMessage
        targetLabel
        attempts
      }
    }
  }
}
"""

# --- security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if env_bool("HTTPS"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Probes talk plain HTTP to the pod; they must not be redirected.
    SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", r"^health/,^metrics$")
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)

# Content-Security-Policy (django-csp): only our own files run. The two inline blocks we have
# (GraphiQL's settings and page style) carry the per-request nonce; style *attributes* stay
# allowed because the admin and our progress bars set widths with them.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one
# username from one IP, that pair is locked out for AXES_COOLOFF_MINUTES (HTTP 429).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Behind N reverse proxies that append to X-Forwarded-For, the client is the N-th entry from the
# right; 0 (the default): REMOTE_ADDR, the header ignored. The login throttling above and the
# /metrics allow-list both take the client's address from jobs.client_ip.
_proxies = os.environ.get("TRUSTED_PROXIES", "0").strip() or "0"
if not _proxies.isdecimal():
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES is a number of proxies (0 or more), not {_proxies!r}."
    )
TRUSTED_PROXIES = int(_proxies)
AXES_CLIENT_IP_CALLABLE = "jobs.client_ip.client_ip"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "rq.worker": {"level": os.environ.get("RQ_LOG_LEVEL", "INFO")},
        # django-axes logs its configuration at INFO each time a process starts (every
        # manage.py command, a dozen times in bin/run); its lockout warnings stay.
        "axes.apps": {"level": "WARNING"},
    },
}
