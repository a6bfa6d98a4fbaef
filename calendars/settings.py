"""Convoke settings.

This is the only module that reads the environment (docs/style.md rule 7). Every variable of
docs/design.md section 2 is read here with a default that makes ``make run`` work on one machine.
With ``DEBUG`` false (production), start-up is refused unless ``SECRET_KEY``,
``CALDAV_INBOUND_API_KEY`` and ``FIELD_ENCRYPTION_KEY`` are set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# An operator's `.env` next to manage.py is read when present; real environment variables win.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)

# --- Secrets: required in production, generated per process in DEBUG ---------------------
_REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "CALDAV_INBOUND_API_KEY", "FIELD_ENCRYPTION_KEY")
# Read by the system check convoke.E012; empty with DEBUG on.
MISSING_PRODUCTION_SECRETS: list[str] = (
    [] if DEBUG else [name for name in _REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
)
# `manage.py check` (--deploy) lists every problem, the missing secrets among them (E012);
# every other process refuses to start without them.
_ONLY_CHECKING = Path(sys.argv[0]).name in ("manage.py", "django-admin") and sys.argv[1:2] == [
    "check"
]
if MISSING_PRODUCTION_SECRETS and not _ONLY_CHECKING:
    raise ImproperlyConfigured(
        "Convoke refuses to start in production mode (DEBUG is false) without "
        + ", ".join(MISSING_PRODUCTION_SECRETS)
        + ". Set them in the environment or .env (`python manage.py check --deploy` lists "
        "every setting a deployment needs), or set DEBUG=true for local development "
        "(`make run` generates development values in var/dev.env)."
    )

SECRET_KEY: str = env.str("SECRET_KEY", default="") or "insecure-development-key-" + "0" * 32
CALDAV_INBOUND_API_KEY: str = env.str("CALDAV_INBOUND_API_KEY", default="")
# Comma-separated Fernet keys; the first encrypts, all decrypt (key rotation).
FIELD_ENCRYPTION_KEY: str = env.str(
    "FIELD_ENCRYPTION_KEY",
    # A fixed development key, only ever used with DEBUG on (refused above otherwise).
    default="Y29udm9rZS1kZXZlbG9wbWVudC1vbmx5LWtleS0zMmI=",
)

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
APP_URL: str = env.str("APP_URL", default="http://127.0.0.1:8000").rstrip("/")
_app_host = urlsplit(APP_URL).hostname
CSRF_TRUSTED_ORIGINS: list[str] = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[f"{urlsplit(APP_URL).scheme}://{urlsplit(APP_URL).netloc}"] if _app_host else [],
)

# --- Applications -------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "anymail",
    "calendars.apps.CalendarsConfig",
    "scheduling.apps.SchedulingConfig",
    "invitations.apps.InvitationsConfig",
    "gcal_push.apps.GcalPushConfig",
]

MIDDLEWARE = [
    # /healthz answers before host validation and the HTTPS redirect: container health checks
    # call http://127.0.0.1:8000/healthz, a host no deployment lists in ALLOWED_HOSTS.
    "calendars.health.HealthzMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and scripts) from STATIC_ROOT, filled by collectstatic.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "calendars.urls"
WSGI_APPLICATION = "calendars.wsgi.application"
ASGI_APPLICATION = "calendars.asgi.application"
AUTH_USER_MODEL = "calendars.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/api/v1.0/bookings/"
LOGOUT_REDIRECT_URL = "login"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["calendars.templatetags.translate"],
        },
    },
    # The emails (templates/emails/, and nothing else) are Jinja2: compiled templates cost the
    # worker a fraction of Django's engine per email (invitations/rendering/templates.py).
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "emails",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "invitations.rendering.templates.environment"},
    },
]

# --- Database -----------------------------------------------------------------------------
# SQLite is the embedded default; it is set up for several processes (web, worker, beat):
# WAL journal, a busy timeout and IMMEDIATE transactions (docs/design.md section 4).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'convoke.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite creates the file but not its folder (a fresh clone has no var/).
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Keep connections between requests (a webhook should not pay for a new one each time);
    # health checks replace a connection the server closed.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# The callback's store keeps its one statement prepared on the server, per connection
# (scheduling/services.py). Behind a connection pooler in transaction mode that does not keep
# prepared statements (PgBouncer before 1.21, or without max_prepared_statements), set false.
DATABASE_PREPARED_STATEMENTS: bool = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # psycopg prepares nothing while prepare_threshold is None (Django's default). Django's
    # cursors bind parameters client-side and never prepare whatever the threshold: this only
    # lets the store's explicit prepare=True take effect; no statement is prepared by count.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)

# --- Cache ------------------------------------------------------------------------------------
# Per-process memory by default; set CACHE_URL (e.g. redis://127.0.0.1:6379/1) when several
# web processes must share throttling counters and cached lookups.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The same cache, without a new Redis client for every operation (calendars/cache.py).
    CACHES["default"]["BACKEND"] = "calendars.cache.RedisCache"
# gunicorn's number of web processes (gunicorn reads this variable itself); above 1, the
# system check convoke.E014 requires a cache the processes share.
WEB_CONCURRENCY: int = env.int("WEB_CONCURRENCY", default=1)

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("nl", "Nederlands")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
TRANSLATIONS_JSON_PATH: Path = Path(
    env.str("TRANSLATIONS_JSON_PATH", default=str(BASE_DIR / "translations.json"))
)

# Served by WhiteNoise from STATIC_ROOT, filled by `manage.py collectstatic` (the image does
# it at build time).
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# How many reverse proxies (Caddy: 1) stand in front of Convoke. With one or more, the client
# address is taken that many hops from the end of X-Forwarded-For (booking throttle) and
# X-Forwarded-Proto says whether the request came over HTTPS; without, both headers are ignored
# (a client could forge them).
NUM_PROXIES: int = env.int("NUM_PROXIES", default=0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES else None
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
# The CalDAV server may call the callback over plain http inside the network
# (http://web:8000/...): a redirect would lose its POST, so only that path is exempted.
CALLBACK_ALLOW_HTTP: bool = env.bool("CALLBACK_ALLOW_HTTP", default=False)
SECURE_REDIRECT_EXEMPT: list[str] = (
    [r"^api/v1\.0/caldav-scheduling-callback/$"] if CALLBACK_ALLOW_HTTP else []
)

# --- CalDAV ---------------------------------------------------------------------------------
CALDAV_URL: str = env.str("CALDAV_URL", default="")
CALDAV_OUTBOUND_API_KEY: str = env.str("CALDAV_OUTBOUND_API_KEY", default="")
CALDAV_USERNAME: str = env.str("CALDAV_USERNAME", default="")
CALDAV_PASSWORD: str = env.str("CALDAV_PASSWORD", default="")
CALDAV_CALENDAR_HOME_TEMPLATE: str = env.str("CALDAV_CALENDAR_HOME_TEMPLATE", default="")
# Retired: whether the server schedules is asked of it (RFC 6638 OPTIONS), and RSVP answers
# reach the organizer either way. Still set, it is named by `check --deploy` (convoke.W002).
RETIRED_VARIABLES_SET: tuple[str, ...] = tuple(
    name for name in ("CALDAV_SERVER_SCHEDULES",) if name in os.environ
)
CALLBACK_MAX_BYTES: int = env.int("CALLBACK_MAX_BYTES", default=1024 * 1024)
# The request body limit Django enforces must let a callback of CALLBACK_MAX_BYTES through.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(CALLBACK_MAX_BYTES, 2_621_440)

# --- Email ----------------------------------------------------------------------------------
CALENDAR_ITIP_ENABLED: bool = env.bool("CALENDAR_ITIP_ENABLED", default=True)
CALENDAR_INVITATION_FROM_EMAIL: str = env.str(
    "CALENDAR_INVITATION_FROM_EMAIL", default="convoke@localhost"
)
DEFAULT_FROM_EMAIL = CALENDAR_INVITATION_FROM_EMAIL
# RSVP links stay valid until the end of the event's last occurrence plus a grace period; an
# endless series gets a fixed lifetime from the day the email is built.
RSVP_TOKEN_GRACE_DAYS: int = env.int("RSVP_TOKEN_GRACE_DAYS", default=7)
RSVP_TOKEN_OPEN_SERIES_DAYS: int = env.int("RSVP_TOKEN_OPEN_SERIES_DAYS", default=365)
SERVER_EMAIL = CALENDAR_INVITATION_FROM_EMAIL

# The route is Brevo when BREVO_API_KEY is set, else SMTP when EMAIL_HOST is set, else files.
# These variables feed Django 6.1's MAILERS; the deprecated EMAIL_* settings are not defined.
_brevo_api_key = env.str("BREVO_API_KEY", default="")
_email_host = env.str("EMAIL_HOST", default="")
_email_file_path = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
if _brevo_api_key:
    MAIL_ROUTE = "brevo"
    MAILERS = {
        "default": {
            "BACKEND": "anymail.backends.brevo.EmailBackend",
            "OPTIONS": {"api_key": _brevo_api_key},
        }
    }
elif _email_host:
    MAIL_ROUTE = "smtp"
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host,
                "port": env.int("EMAIL_PORT", default=587),
                "username": env.str("EMAIL_HOST_USER", default="") or None,
                "password": env.str("EMAIL_HOST_PASSWORD", default="") or None,
                "use_tls": env.bool("EMAIL_USE_TLS", default=True),
                "timeout": env.int("EMAIL_TIMEOUT", default=30),
            },
        }
    }
else:
    MAIL_ROUTE = "file"
    MAILERS = {
        "default": {
            # One .eml file per email (Django's own backend appends several to one file).
            "BACKEND": "calendars.mail_files.EmailBackend",
            "OPTIONS": {"file_path": _email_file_path},
        }
    }

# Inbound email (native iTIP answers, invitations.inbound): Brevo's inbound parsing posts to
# /webhooks/brevo/inbound/ with HTTP Basic credentials "user:password" = ANYMAIL_WEBHOOK_SECRET
# (the webhook refuses everything while it is empty). Attachments are fetched from Brevo's API
# with BREVO_API_KEY.
ANYMAIL: dict[str, object] = {
    "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default=""),
    "BREVO_API_KEY": _brevo_api_key,
}

# --- La Suite Messages ------------------------------------------------------------------------
MESSAGES_API_URL: str = env.str("MESSAGES_API_URL", default="").rstrip("/")
MESSAGES_API_KEY: str = env.str("MESSAGES_API_KEY", default="")
MESSAGES_CHANNEL_ID: str = env.str("MESSAGES_CHANNEL_ID", default="")
MESSAGES_API_TIMEOUT_SECONDS: float = env.float("MESSAGES_API_TIMEOUT_SECONDS", default=10.0)
# How long a sender address -> Messages mailbox id lookup is cached.
MESSAGES_MAILBOX_CACHE_SECONDS: int = env.int("MESSAGES_MAILBOX_CACHE_SECONDS", default=3600)

# --- Delivery of invitations --------------------------------------------------------------------
# A transient failure is retried after min(BASE * 2**(attempt-1), MAX) seconds, spread by
# +/- JITTER; the defaults make 10 attempts over about 24 hours, then the delivery is dead.
DELIVERY_MAX_ATTEMPTS: int = env.int("DELIVERY_MAX_ATTEMPTS", default=10)
DELIVERY_RETRY_BASE_SECONDS: float = env.float("DELIVERY_RETRY_BASE_SECONDS", default=300.0)
DELIVERY_RETRY_MAX_SECONDS: float = env.float("DELIVERY_RETRY_MAX_SECONDS", default=6 * 3600.0)
DELIVERY_RETRY_JITTER: float = env.float("DELIVERY_RETRY_JITTER", default=0.2)
# A delivery still "sending" after this long belongs to a worker that died; it is retried.
DELIVERY_SENDING_TIMEOUT_SECONDS: float = env.float(
    "DELIVERY_SENDING_TIMEOUT_SECONDS", default=15 * 60.0
)
# How often the periodic sweep looks for due retries, lost enqueues and stuck deliveries.
DELIVERY_SWEEP_INTERVAL_SECONDS: float = env.float("DELIVERY_SWEEP_INTERVAL_SECONDS", default=60.0)
# The delivery engine (invitations.services.send): a worker claims up to BATCH_SIZE pending
# deliveries at once, and goes on claiming while there are some, for at most BATCH_SECONDS
# per task. Each worker process holds at most EMAIL_MAX_SESSIONS SMTP sessions to the relay
# (MESSAGES_API_MAX_CONNECTIONS connections to the Messages API) at once: a relay that takes
# seconds per message is waited on by that many sessions together.
DELIVERY_BATCH_SIZE: int = env.int("DELIVERY_BATCH_SIZE", default=100)
DELIVERY_BATCH_SECONDS: float = env.float("DELIVERY_BATCH_SECONDS", default=20.0)
EMAIL_MAX_SESSIONS: int = env.int("EMAIL_MAX_SESSIONS", default=128)
MESSAGES_API_MAX_CONNECTIONS: int = env.int("MESSAGES_API_MAX_CONNECTIONS", default=32)
for _name in ("DELIVERY_BATCH_SIZE", "EMAIL_MAX_SESSIONS", "MESSAGES_API_MAX_CONNECTIONS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# --- Google -----------------------------------------------------------------------------------
GOOGLE_INVITE_ENABLED: bool = env.bool("GOOGLE_INVITE_ENABLED", default=False)
GOOGLE_CLIENT_ID: str = env.str("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET: str = env.str("GOOGLE_CLIENT_SECRET", default="")
GOOGLE_WEBHOOK_URL: str = env.str("GOOGLE_WEBHOOK_URL", default="")
GOOGLE_API_ENDPOINT: str = env.str(
    "GOOGLE_API_ENDPOINT", default="https://www.googleapis.com/calendar/v3/"
)
GOOGLE_AUTH_URI: str = env.str(
    "GOOGLE_AUTH_URI", default="https://accounts.google.com/o/oauth2/auth"
)
GOOGLE_TOKEN_URI: str = env.str("GOOGLE_TOKEN_URI", default="https://oauth2.googleapis.com/token")
GOOGLE_REVOKE_URI: str = env.str(
    "GOOGLE_REVOKE_URI", default="https://oauth2.googleapis.com/revoke"
)
# The Calendar API adapter: socket timeout, and retries of 429, rate-limit 403 and 5xx with
# exponential backoff (base seconds, doubled per attempt, with jitter, capped at 32 s).
GOOGLE_API_TIMEOUT_SECONDS: float = env.float("GOOGLE_API_TIMEOUT_SECONDS", default=20.0)
GOOGLE_API_MAX_RETRIES: int = env.int("GOOGLE_API_MAX_RETRIES", default=3)
GOOGLE_API_BACKOFF_SECONDS: float = env.float("GOOGLE_API_BACKOFF_SECONDS", default=1.0)

# --- Bookings ---------------------------------------------------------------------------------
# Public booking requests per client address (DRF throttle rate), how long the subscriber's
# Confirm/Deny links stay valid, how far ahead a slot may be booked, and how the publish
# task retries (attempts, then the booking shows publish_state "failed" to operators).
BOOKING_REQUEST_THROTTLE_RATE: str = env.str("BOOKING_REQUEST_THROTTLE_RATE", default="30/hour")
BOOKING_DECISION_TOKEN_MAX_AGE_DAYS: int = env.int(
    "BOOKING_DECISION_TOKEN_MAX_AGE_DAYS", default=30
)
BOOKING_MAX_DAYS_AHEAD: int = env.int("BOOKING_MAX_DAYS_AHEAD", default=366)
BOOKING_PUBLISH_MAX_RETRIES: int = env.int("BOOKING_PUBLISH_MAX_RETRIES", default=8)
BOOKING_PUBLISH_BACKOFF_SECONDS: float = env.float("BOOKING_PUBLISH_BACKOFF_SECONDS", default=30.0)
CALDAV_TIMEOUT_SECONDS: float = env.float("CALDAV_TIMEOUT_SECONDS", default=20.0)
# Push notifications (gcal_push): the lifetime asked for new watch channels (Google may grant
# less), and how often every watched calendar is synced anyway, since Google drops some
# notifications.
GOOGLE_CHANNEL_TTL_SECONDS: int = env.int("GOOGLE_CHANNEL_TTL_SECONDS", default=7 * 24 * 3600)
GOOGLE_SYNC_RECONCILE_MINUTES: float = env.float("GOOGLE_SYNC_RECONCILE_MINUTES", default=30.0)
if GOOGLE_SYNC_RECONCILE_MINUTES <= 0:
    raise ImproperlyConfigured("GOOGLE_SYNC_RECONCILE_MINUTES must be a positive number.")
# A sync requested by a notification waits this long, so that the rest of a burst coalesces.
GOOGLE_SYNC_DEBOUNCE_SECONDS: float = env.float("GOOGLE_SYNC_DEBOUNCE_SECONDS", default=2.0)

# --- Celery -----------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport under var/, which needs no server, with
# atomic writes and claims (calendars.broker) so that no reader sees a half-written message.
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT: str | None = (
    "calendars.broker:Transport" if CELERY_BROKER_URL.startswith("filesystem") else None
)
CELERY_BROKER_CONFIGURED: bool = "CELERY_BROKER_URL" in env.ENVIRON
_celery_dir = Path(env.str("CELERY_FILESYSTEM_DIR", default=str(VAR_DIR / "celery")))
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: too slow for a worker to keep up.
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "control"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER: bool = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep their database connections from task to task (Celery's Django fixup would
# close them around every task); Django's CONN_MAX_AGE and health checks retire them before
# each task, as between web requests (calendars/celery.py).
CELERY_DB_REUSE_MAX = 2**31
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Time limits (docs/design.md 1.5): no task holds a worker past them. At the soft limit the task
# gets SoftTimeLimitExceeded (a render that reaches it is dead-lettered as permanent); at the
# hard limit the worker process running it is replaced. Tasks that page through Google or
# talk to the CalDAV server several times get the long limit.
TASK_SOFT_TIME_LIMIT_SECONDS: float = env.float("TASK_SOFT_TIME_LIMIT_SECONDS", default=60.0)
TASK_TIME_LIMIT_SECONDS: float = env.float("TASK_TIME_LIMIT_SECONDS", default=90.0)
TASK_LONG_TIME_LIMIT_SECONDS: float = env.float("TASK_LONG_TIME_LIMIT_SECONDS", default=900.0)
if not 0 < TASK_SOFT_TIME_LIMIT_SECONDS < TASK_TIME_LIMIT_SECONDS:
    raise ImproperlyConfigured(
        "TASK_SOFT_TIME_LIMIT_SECONDS must be positive and below TASK_TIME_LIMIT_SECONDS."
    )
if TASK_LONG_TIME_LIMIT_SECONDS < TASK_TIME_LIMIT_SECONDS:
    raise ImproperlyConfigured(
        "TASK_LONG_TIME_LIMIT_SECONDS must be at least TASK_TIME_LIMIT_SECONDS."
    )
if DELIVERY_BATCH_SECONDS >= TASK_SOFT_TIME_LIMIT_SECONDS / 2:
    raise ImproperlyConfigured(
        "DELIVERY_BATCH_SECONDS must be below half of TASK_SOFT_TIME_LIMIT_SECONDS (a batch then "
        "waits for the emails still with the relay)."
    )
CELERY_TASK_SOFT_TIME_LIMIT = TASK_SOFT_TIME_LIMIT_SECONDS
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT_SECONDS
CELERY_TASK_ANNOTATIONS: dict[str, dict[str, float]] = {
    name: {
        "soft_time_limit": TASK_LONG_TIME_LIMIT_SECONDS,
        "time_limit": TASK_LONG_TIME_LIMIT_SECONDS + 60.0,
    }
    for name in (
        "gcal_push.tasks.calendar_sync_task",
        "gcal_push.tasks.channels_renew_task",
        "gcal_push.tasks.calendars_reconcile_task",
        "gcal_push.tasks.calendars_watch_task",
        "calendars.tasks.booking_publish_task",
        "invitations.tasks.inbound_reply_apply_task",
    )
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's file-backed scheduler, creating the schedule file's folder first (a fresh clone
# on PostgreSQL and Redis has no var/).
CELERY_BEAT_SCHEDULER = "calendars.celery:PersistentScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
CELERY_BEAT_SCHEDULE["invitations-deliveries-sweep"] = {
    "task": "invitations.tasks.deliveries_sweep_task",
    "schedule": DELIVERY_SWEEP_INTERVAL_SECONDS,
}
# Bookings to publish whose enqueue or retry was lost (broker down, worker killed).
CELERY_BEAT_SCHEDULE["calendars-bookings-publish-sweep"] = {
    "task": "calendars.tasks.bookings_publish_sweep_task",
    "schedule": DELIVERY_SWEEP_INTERVAL_SECONDS,
}
# Hourly renewal of watch channels expiring within 24 hours: the window spans many runs,
# so a missed or failed run never lets a channel lapse.
CELERY_BEAT_SCHEDULE["gcal-push-channels-renew"] = {
    "task": "gcal_push.tasks.channels_renew_task",
    "schedule": 3600.0,
    "kwargs": {"within_hours": 24},
}
CELERY_BEAT_SCHEDULE["gcal-push-calendars-reconcile"] = {
    "task": "gcal_push.tasks.calendars_reconcile_task",
    "schedule": GOOGLE_SYNC_RECONCILE_MINUTES * 60.0,
}

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Convoke API",
    "DESCRIPTION": "Calendar invitations, RSVP and bookings.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # One schema component per closed vocabulary, whichever field uses it.
    "ENUM_NAME_OVERRIDES": {
        "LanguageEnum": "calendars.models.Language.choices",
        "BookingStatusEnum": "calendars.models.BookingStatus.choices",
    },
}

# --- Metrics and logging -------------------------------------------------------------------------
# /metrics requires "Authorization: Bearer <METRICS_TOKEN>" when set, else answers loopback only.
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
# Counters live in per-process files in this folder (prometheus_client's multiprocess mode);
# every web, worker and beat process of one installation must share it.
PROMETHEUS_MULTIPROC_DIR: str = env.str(
    "PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus")
)
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# prometheus_client reads the folder from the environment in each process that counts.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "calendars.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
