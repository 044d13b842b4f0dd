"""Base settings: safe defaults for the embedded demo; every deployer knob is an environment variable."""

from pathlib import Path

import django_stubs_ext
import environ
from corsheaders.defaults import default_headers
from django.utils.translation import gettext_lazy as _

# Lets ModelAdmin[Lead], ModelSerializer[Lead] etc. be written with their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is a convenience for developers; real deployments set the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The default key is only good for the local demo; production.py refuses to start without one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-demo-key-change-me-" + "x" * 32)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "common",
    "users",
    "leads",
    "scoring",
    "assignment",
    "nurturing",
    "reports",
]

MIDDLEWARE = [
    "common.middleware.QueryCountHeaderMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # LEADCRM_PUBLIC_PATHS leave here for LEADCRM_PUBLIC_MIDDLEWARE; every other URL continues below.
    "common.middleware.PublicEndpointMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "users.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Public endpoints without login or cookies (the web-form submit URL, posted from other sites): served through
# a short chain without the session, CSRF, auth, user-language and messages middleware (common/middleware.py).
LEADCRM_PUBLIC_PATHS = [r"^/api/v1/forms/[-\w]+/submit/$"]
LEADCRM_PUBLIC_MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",  # a form's own allowed origins (leads.api.webforms)
    "django.middleware.locale.LocaleMiddleware",  # error pages and messages in the visitor's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "leadcrm.urls"
WSGI_APPLICATION = "leadcrm.wsgi.application"
ASGI_APPLICATION = "leadcrm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# No DATABASE_URL → an SQLite file next to manage.py (the one-command demo).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with the per-request health check skipped while a connection is in steady use.
    DATABASES["default"]["ENGINE"] = "common.db_backends.postgresql"
# A persistent connection idle at least this long gets a health check (SELECT 1) before a request uses it.
LEADCRM_DB_HEALTH_CHECK_IDLE_S = env.float("DATABASE_HEALTH_CHECK_IDLE_S", default=5.0)
# The web-form intake's hot statements are prepared once per connection (common/prepared.py); turn off behind
# a pooler that does not keep server sessions (PgBouncer in transaction mode before 1.21).
LEADCRM_DB_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if LEADCRM_DB_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"] == "common.db_backends.postgresql":
    # psycopg prepares nothing while prepare_threshold is None (Django's default). Django's own cursors bind
    # client-side and never prepare whatever the threshold; only common.prepared's cursors ask to prepare.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 1_000_000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["users.backends.RoleModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "leads:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"

# --- Celery -------------------------------------------------------------------------------
# No broker configured → tasks run eagerly in-process (the embedded demo and quick tests).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# A task is acknowledged only after it ran, so a dead worker's task is redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after this long; longer than any task may run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TIMEZONE = TIME_ZONE
# Lets a test (or a second deployment on one broker) give its workers a queue of their own.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "common.tasks.worker_heartbeat_task",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    "sweep-dirty-leads": {
        "task": "leads.tasks.pipeline.sweep_dirty_leads_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "drain-assignment-queue": {
        "task": "assignment.tasks.queue_drain_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "check-first-touch-deadlines": {
        "task": "assignment.tasks.sla_check_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "sweep-import-jobs": {
        "task": "leads.tasks.imports.import_sweep_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "sweep-rescore-jobs": {
        "task": "scoring.tasks.rescore_sweep_task",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Retrain the predictive score on the outcomes known so far (it replaces the active one only if as good).
    "train-predictive-model": {
        "task": "scoring.tasks.predictive_train_scheduled_task",
        "schedule": env.float("LEADCRM_PREDICTIVE_TRAIN_EVERY_S", default=86400.0),
        "options": {"expires": env.float("LEADCRM_PREDICTIVE_TRAIN_EVERY_S", default=86400.0)},
    },
}

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "users.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "common.pagination.KeysetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="6000/min"),
        # Public web-form submissions per client IP (each form also has its own per-minute limit).
        "form_submit": env.str("API_THROTTLE_FORM_SUBMIT", default="30/min"),
    },
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "leadcrm API",
    "DESCRIPTION": "Leads: collect, classify, track, score, convert.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's scripts come from the drf-spectacular-sidecar package, served locally, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "leads.models.Stage",
        "SourceChannelEnum": "leads.models.SourceChannel",
        "ScoringRuleKindEnum": "scoring.models.RuleKind",
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Web forms posted from other sites may send an Idempotency-Key (a double click makes one lead).
CORS_ALLOW_HEADERS = (*default_headers, "idempotency-key")

# --- Cache (throttling, rate limits) --------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Domain -------------------------------------------------------------------------------
# Region used to parse phone numbers written without a country code.
LEADCRM_DEFAULT_PHONE_REGION = env.str("LEADCRM_DEFAULT_PHONE_REGION", default="CN")
# Adds an X-DB-Queries header to every response (benchmarks read it); off in production.
LEADCRM_QUERY_COUNT_HEADER = env.bool("LEADCRM_QUERY_COUNT_HEADER", default=False)
# Largest campaign-list file accepted for import (bytes); the upload itself is streamed to disk.
LEADCRM_IMPORT_MAX_BYTES = env.int("LEADCRM_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
# Database connections that write an import's chunks at once (PostgreSQL): each chunk's database work
# (indexes, foreign-key checks) is single-threaded in its backend, so two writers use two cores.
LEADCRM_IMPORT_WRITERS = env.int("LEADCRM_IMPORT_WRITERS", default=2)
# An import waiting, running or undoing that nobody has moved this long (seconds) is sent again.
LEADCRM_IMPORT_STALE_S = env.int("LEADCRM_IMPORT_STALE_S", default=600)

# --- Event pipeline (issue #4) ---------------------------------------------------------------
# Dotted paths of post-score hooks, called per processed lead: hook(lead=, result=, previous_score=, previous_stage=).
LEADCRM_PIPELINE_HOOKS = env.list("LEADCRM_PIPELINE_HOOKS", default=["assignment.services.pipeline_hook"])
LEADCRM_PIPELINE_BATCH_SIZE = env.int("LEADCRM_PIPELINE_BATCH_SIZE", default=500)
# Seconds one processing task runs batches before it re-enqueues itself (lets other tasks in).
LEADCRM_PIPELINE_TIME_BUDGET = env.float("LEADCRM_PIPELINE_TIME_BUDGET", default=20.0)
# The sweeper re-enqueues processing when a lead has been dirty longer than this (seconds).
LEADCRM_DIRTY_SWEEP_AFTER = env.int("LEADCRM_DIRTY_SWEEP_AFTER", default=30)
# Test-only: seconds of sleep per lead in a batch, so a test can kill a worker mid-batch.
LEADCRM_PIPELINE_SLOWDOWN_S = env.float("LEADCRM_PIPELINE_SLOWDOWN_S", default=0.0)
# Leads per part when a rule set is previewed or applied to every lead (scoring.rescore): bigger
# parts read the interaction table fewer times (about 100 MB of Python objects at 100k).
LEADCRM_RESCORE_BATCH_SIZE = env.int("LEADCRM_RESCORE_BATCH_SIZE", default=100_000)
# Parts of one rescore queued at a time: as many as worker processes should share it (one core each).
LEADCRM_RESCORE_PARALLEL = env.int("LEADCRM_RESCORE_PARALLEL", default=2)
# A rescore job waiting, or a part queued or running, untouched this long (seconds) is sent again.
LEADCRM_RESCORE_STALE_S = env.int("LEADCRM_RESCORE_STALE_S", default=600)
# Events API limits.
LEADCRM_EVENTS_MAX_BATCH = env.int("LEADCRM_EVENTS_MAX_BATCH", default=1000)
LEADCRM_EVENTS_MAX_PROPERTIES_BYTES = env.int("LEADCRM_EVENTS_MAX_PROPERTIES_BYTES", default=16 * 1024)

EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="leadcrm@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
