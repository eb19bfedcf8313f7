"""Settings for every environment, read from environment variables (12-factor).

Nothing differs between development, CI and production except the environment. Defaults
are safe for a local run; with DEBUG off, a missing SECRET_KEY or ALLOWED_HOSTS stops
start-up instead of running with an insecure fallback.
"""

import contextlib
import copy
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from devservers.postgres import running_url
from exchange_site.redis_clients import (
    cache_settings,
    celery_broker_settings,
    channel_layer_hosts,
    parse_redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

PORT = env.int("PORT", default=8000)
WS_PORT = env.int("WS_PORT", default=8001)
# Where browsers open WebSockets. Empty means "the page's host on WS_PORT" (resolved in JS).
WS_PUBLIC_URL = env.str("WS_PUBLIC_URL", default="")
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=3)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "wallets",
    "trading",
    "marketdata",
]

MIDDLEWARE = [
    # Outermost: the request id is in every log line, and the metrics time everything.
    "exchange_site.observability.RequestIdMiddleware",
    "exchange_site.observability.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.AuthSessionMiddleware",
    # Pins the user of a write to the primary for the read-your-writes window (db_router).
    "exchange_site.db_router.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exchange_site.urls"
WSGI_APPLICATION = "exchange_site.wsgi.application"
ASGI_APPLICATION = "exchange_site.asgi.application"

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
                "exchange_site.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# PostgreSQL only. Unset DATABASE_URL means `make run`'s embedded server (var/postgres) when it
# runs, else the conventional local one.
if not env.str("DATABASE_URL", default=""):
    os.environ["DATABASE_URL"] = (
        running_url(VAR_DIR / "postgres", "exchange")
        or "postgres://postgres@127.0.0.1:5432/exchange"
    )
DATABASES = {"default": env.db("DATABASE_URL")}
_db = DATABASES["default"]
if _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(f"DATABASE_URL must point at PostgreSQL, not {_db['ENGINE']}")
if env.bool("DATABASE_POOL", default=False):
    # Under ASGI, persistent connections leak (one per request thread); the ws process
    # sets DATABASE_POOL and uses psycopg's pool instead (ARCHITECTURE §1).
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "pool": {
            "min_size": env.int("DATABASE_POOL_MIN", default=2),
            "max_size": env.int("DATABASE_POOL_MAX", default=10),
            "timeout": 10,
        }
    }
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
# The same backend with a health check that needs no round trip (see its docstring).
_db["ENGINE"] = "exchange_site.postgresql"
if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    # Planning the order path's joins cost more than running them (0.7 ms of 0.8 ms here);
    # server-side binding lets psycopg prepare a query after it has run 5 times on a
    # connection. Turn off behind a transaction-pooling PgBouncer.
    _db.setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})

# --- Read replicas (exchange_site/db_router.py; CONFIGURATION.md, "Read replicas") ---------
# Aliases replica_0, replica_1, ... with the primary's options. Only the reads a call site
# marks as tolerating staleness go to them; empty, there is no router and every read is on
# the primary.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
DATABASE_READ_YOUR_WRITES_SECONDS = env.float("DATABASE_READ_YOUR_WRITES_SECONDS", default=10.0)
DATABASE_REPLICA_CHECK_SECONDS = env.float("DATABASE_REPLICA_CHECK_SECONDS", default=1.0)
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=5.0)
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    _parsed = environ.Env.db_url_config(_url)
    if _parsed["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS must name PostgreSQL: {_url}")
    _replica = copy.deepcopy(_db)
    _replica.update({key: _parsed[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})
    _replica["OPTIONS"] = {**_replica.get("OPTIONS", {}), **_parsed.get("OPTIONS", {})}
    # A replica that is down must cost a read little before it falls back to the primary.
    _replica["OPTIONS"].setdefault("connect_timeout", 2)
    if "pool" in _replica["OPTIONS"]:
        _replica["OPTIONS"]["pool"]["timeout"] = 2
    # Tests never create a database for a replica: it reads the test database.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_index}"] = _replica
if DATABASE_REPLICA_URLS:
    DATABASE_ROUTERS = ["exchange_site.db_router.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ---------------------------------------
# One server (redis://, rediss://, unix://) or a Sentinel group
# (sentinel://h1:26379,h2:26379,h3:26379/0?master=exchange): every client follows it
# (exchange_site/redis_clients.py; docs/CONFIGURATION.md "Redis Sentinel").
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Redis pub/sub ignores the database number, so exchanges (or test runs) sharing one Redis
# server on different databases would hear each other's streams: every pub/sub channel name
# starts with this prefix, which names the database by default.
REDIS_PUBSUB_PREFIX = env.str(
    "REDIS_PUBSUB_PREFIX", default=f"exchange:{parse_redis_url(REDIS_URL).db}:"
)

CACHES = {"default": cache_settings(REDIS_URL)}

CHANNEL_LAYERS = {
    "default": {
        # Pub/sub: each ws process receives a market's message once, on its hub's channel
        # (marketdata/hub.py), not once per consumer as the core layer's queues would
        # (ARCHITECTURE §6). The matcher pipelines into the same groups
        # (trading/matcher/publish.py).
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": channel_layer_hosts(REDIS_URL), "prefix": REDIS_PUBSUB_PREFIX + "asgi"},
    }
}

_celery_redis = celery_broker_settings(
    env.str("CELERY_BROKER_URL", default=REDIS_URL),
    env.str("CELERY_RESULT_BACKEND", default=REDIS_URL),
)
CELERY_BROKER_URL = _celery_redis["broker_url"]
CELERY_BROKER_TRANSPORT_OPTIONS = _celery_redis["broker_transport_options"]
CELERY_BROKER_USE_SSL = _celery_redis.get("broker_use_ssl", False)
CELERY_RESULT_BACKEND = _celery_redis["result_backend"]
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = _celery_redis["result_backend_transport_options"]
CELERY_REDIS_BACKEND_USE_SSL = _celery_redis.get("redis_backend_use_ssl")
CELERY_RESULT_EXPIRES = timedelta(hours=1)
# A result stored on a connection to a master that went away (a Sentinel failover) is stored
# again on a new connection, through the sentinels, instead of failing the task.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 10
# The result backend's own socket settings (Celery's defaults: a 120 s read, an unbounded
# connect), bounded like every other Redis client's (exchange_site/redis_clients.py).
CELERY_REDIS_SOCKET_TIMEOUT = 5.0
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2.0
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "flush-expired-tokens": {
        "task": "accounts.tasks.token_flush_expired_task",
        "schedule": crontab(minute=17),
    },
    "prune-login-history": {
        "task": "accounts.tasks.auth_history_prune_task",
        "schedule": crontab(hour=3, minute=41),
    },
}

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's default order unless the environment picks others (the end-to-end test stack uses
# a fast hasher so that its subprocesses can verify the test users' passwords).
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrUsernameBackend"]
# Failed logins (API, pages, admin) per account and per client address, counted in Redis:
# after LOGIN_SLOWDOWN_AFTER failures each retry waits LOGIN_SLOWDOWN_SECONDS (doubling), and
# at LOGIN_LOCKOUT_FAILURES (per address: LOGIN_LOCKOUT_IP_FAILURES) logins are refused for
# LOGIN_LOCKOUT_SECONDS. A success clears the account's count. 0 failures turns a limit off.
LOGIN_SLOWDOWN_AFTER = env.int("LOGIN_SLOWDOWN_AFTER", default=3)
LOGIN_SLOWDOWN_SECONDS = env.int("LOGIN_SLOWDOWN_SECONDS", default=2)
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
LOGIN_LOCKOUT_IP_FAILURES = env.int("LOGIN_LOCKOUT_IP_FAILURES", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Consecutive wrong two-factor codes of one account within OTP_FAILURE_WINDOW_SECONDS: at
# OTP_MAX_FAILURES every code is refused until the window ends (or an operator resets 2FA).
OTP_MAX_FAILURES = env.int("OTP_MAX_FAILURES", default=20)
OTP_FAILURE_WINDOW_SECONDS = env.int("OTP_FAILURE_WINDOW_SECONDS", default=86400)

# Account recovery (accounts.recovery): how long emailed links work, and how many emails one
# address can be sent, or one client can ask for, per hour.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TTL_SECONDS", default=3600)
EMAIL_VERIFICATION_TTL_SECONDS = env.int("EMAIL_VERIFICATION_TTL_SECONDS", default=3 * 86400)
EMAIL_CHANGE_TTL_SECONDS = env.int("EMAIL_CHANGE_TTL_SECONDS", default=86400)
ACCOUNT_EMAILS_PER_ADDRESS = env.int("ACCOUNT_EMAILS_PER_ADDRESS", default=5)
ACCOUNT_EMAIL_REQUESTS_PER_IP = env.int("ACCOUNT_EMAIL_REQUESTS_PER_IP", default=20)
# How long the login history and ended sessions are kept (beat prunes them daily).
LOGIN_HISTORY_DAYS = env.int("LOGIN_HISTORY_DAYS", default=365)
AUTH_SESSION_KEEP_DAYS = env.int("AUTH_SESSION_KEEP_DAYS", default=30)
# Encrypts API-key secrets at rest (Fernet). Comma-separated: the first encrypts, all decrypt,
# so a key can be rotated. Any string works (a Fernet key is derived from it); unset, it is
# derived from SECRET_KEY, which then must not change while keys exist.
API_KEY_ENCRYPTION_KEY = env.list("API_KEY_ENCRYPTION_KEY", default=[]) or [SECRET_KEY]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TTL_SECONDS", default=900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TTL_SECONDS", default=604800)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Empty counts as unset (docker-compose.yml passes it through): never sign with "".
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY,
}

# --- REST framework -------------------------------------------------------------------
# Every request rate below is on unless THROTTLING=off (benchmarks).
THROTTLING = env.bool("THROTTLING", default=True)
# Trusted proxies in front of the app: the client address is taken from X-Forwarded-For
# only that many hops deep (0: REMOTE_ADDR; None would trust any client-sent header), and
# X-Forwarded-Proto is believed only when there is one (SECURE_PROXY_SSL_HEADER below).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first: its WWW-Authenticate header turns "not authenticated" into 401.
        "accounts.authentication.JWTAuthentication",  # simplejwt's, refusing frozen users
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "exchange_site.renderers.InputFormsBrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "exchange_site.parsers.DecimalJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "exchange_site.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    # Scoped limits (exchange_site/throttling.py): per API key, per user, else per address.
    # Views for orders, market data and credentials pick their own scopes.
    "DEFAULT_THROTTLE_CLASSES": [
        "exchange_site.throttling.PrivateReadRateThrottle",
        "exchange_site.throttling.PrivateWriteRateThrottle",
        "exchange_site.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        # Per user or API key: 16 users at 500 orders/s in all stay under; a burst of a few
        # hundred back-to-back requests from one does not.
        "orders": env.str("THROTTLE_ORDERS", default="50/s"),
        "cancels": env.str("THROTTLE_CANCELS", default="50/s"),
        "private_read": env.str("THROTTLE_PRIVATE_READ", default="20/s"),
        "private_write": env.str("THROTTLE_PRIVATE_WRITE", default="20/s"),
        # Statement downloads (wallets.statements_export): each can hold a worker for seconds.
        "statements": env.str("THROTTLE_STATEMENTS", default="10/min"),
        # Per client address.
        "market_data": env.str("THROTTLE_MARKET_DATA", default="50/s"),
        "auth": env.str("THROTTLE_AUTH", default="30/min"),
        "anon": env.str("THROTTLE_ANON", default="600/min"),
        # The Binance-compatible API (/api/v3): request weight per address, like Binance's
        # REQUEST_WEIGHT, and new orders per API key.
        "binance": env.str("THROTTLE_BINANCE", default="6000/min"),
        "binance_orders": env.str("THROTTLE_BINANCE_ORDERS", default="500/10s"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "exchange_site.exception_handler.exchange_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange API",
    "DESCRIPTION": (
        "REST API of the exchange. Authenticate with `Authorization: Bearer <access_token>` "
        "from `POST /api/v1/auth/login`, or with a session (browsable API). Errors are "
        '`{"error": {"code", "message", "details"}}`; decimals are strings.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for a choice set several fields use (an order's and an OCO stop leg's TIF).
    "ENUM_NAME_OVERRIDES": {"TimeInForceEnum": "trading.models.Order.TimeInForce"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # The error shape on every documented 4xx (exchange_site/openapi.py).
        "exchange_site.openapi.postprocess_error_responses",
    ],
}

# --- Internationalisation, static files -----------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The chart library comes from npm (`npm ci`, run by the Makefile) and is served as it ships,
# with no build step; pages work without it (no chart) on a checkout that skipped npm.
CHART_LIBRARY_DIR = BASE_DIR / "node_modules" / "lightweight-charts" / "dist"
if CHART_LIBRARY_DIR.is_dir():
    STATICFILES_DIRS.append(("vendor/lightweight-charts", CHART_LIBRARY_DIR))
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise warns on every start when this is missing (a fresh clone before collectstatic).
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders when collectstatic has not run (tests, first start).
WHITENOISE_USE_FINDERS = True

# --- Security -------------------------------------------------------------------------
# Without a proxy that overwrites X-Forwarded-Proto, any client could send "https" itself and
# pass as secure (SECURE_SSL_REDIRECT, secure cookies, the CSRF Referer check).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES > 0 else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SESSION_COOKIE_SECURE)
# No script reads either cookie: pages hand the CSRF token to fetch() in a <meta> tag.
SESSION_COOKIE_HTTPONLY = env.bool("SESSION_COOKIE_HTTPONLY", default=True)
CSRF_COOKIE_HTTPONLY = env.bool("CSRF_COOKIE_HTTPONLY", default=True)
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Lax")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
# Opt-in: browsers remember both for the whole max-age, so every subdomain must serve HTTPS.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = env.str(
    "SECURE_CROSS_ORIGIN_OPENER_POLICY", default="same-origin"
)
X_FRAME_OPTIONS = env.str("X_FRAME_OPTIONS", default="DENY")
# CORS stays closed: no view sends Access-Control-Allow-Origin, so browsers refuse other
# sites' scripts the answers; bots (/api/v3, CCXT) are not browsers and need no CORS.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# LOG_FORMAT=json: one JSON object per line (python-json-logger) for log collectors. Every
# line carries the request id of the HTTP request it belongs to ("-" outside a request).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "exchange_site.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Metrics (exchange_site/metrics.py) -----------------------------------------------
# Every process of the host writes its samples here and /metrics adds them up
# (prometheus-client's multiprocess mode); empty it before starting the processes.
PROMETHEUS_MULTIPROC_DIR = Path(
    env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
)
# /metrics answers these addresses (CIDR allowed), and anyone with METRICS_TOKEN as a
# bearer token; everyone else gets a 403.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Email ----------------------------------------------------------------------------
# Sent by the Celery worker after the transaction that asked for it commits
# (exchange_site/mail.py), never on a request thread. The defaults reach `make run`'s mail
# catcher (manage.py run_mailcatcher), which keeps every message under MAILBOX_DIR.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    # Django would only refuse this when the first email is sent, in the worker.
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL, not both.")
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Exchange <no-reply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Links in emails are absolute: there is no request to take the host from in the worker.
SITE_NAME = env.str("SITE_NAME", default="Exchange")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The demo switch (`make run` turns it on): the faucet by default, and /dev/mailbox/, which
# shows anyone every email the exchange sent, reset links included. Never in production.
DEMO_MODE = env.bool("DEMO_MODE", default=False)
MAILBOX_DIR = Path(env.str("MAILBOX_DIR", default=str(VAR_DIR / "mailbox")))
MAILCATCHER_PORT = env.int("MAILCATCHER_PORT", default=EMAIL_PORT)

# --- Wallets --------------------------------------------------------------------------
FEE_ACCOUNT_EMAIL = "fees@exchange.internal"
# Instant faucet deposits for demos (on with DEMO_MODE unless set). Caps are in units of each
# asset, e.g. "USD=100000,BTC=2"; "*" applies to assets not listed.
DEMO_DEPOSITS = env.bool("DEMO_DEPOSITS", default=DEMO_MODE)
DEMO_DEPOSIT_MAX_PER_REQUEST = env.dict(
    "DEMO_DEPOSIT_MAX_PER_REQUEST",
    default={"USD": "100000", "BTC": "2", "ETH": "50", "SOL": "1000", "*": "1000"},
)
DEMO_DEPOSIT_MAX_PER_DAY = env.dict(
    "DEMO_DEPOSIT_MAX_PER_DAY",
    default={"USD": "1000000", "BTC": "20", "ETH": "500", "SOL": "10000", "*": "10000"},
)
# Withdrawal controls (ARCHITECTURE §4). Limits are per tier (operators edit the tiers in the
# admin) over a rolling 24 hours, valued in this reference asset at the markets' last prices.
WITHDRAWAL_LIMIT_ASSET = env.str("WITHDRAWAL_LIMIT_ASSET", default="USD")
# A saved address may be used this long after it was added.
WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS = env.int("WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS", default=86400)
# How long the emailed confirmation link lives; unconfirmed requests then expire and release
# their funds.
WITHDRAWAL_CONFIRM_SECONDS = env.int("WITHDRAWAL_CONFIRM_SECONDS", default=1800)
# Withdrawals of more than this (in units of each asset) need a second operator's approval;
# "*" applies to assets not listed ("0": every one of them).
WITHDRAWAL_SECOND_APPROVAL_OVER = env.dict(
    "WITHDRAWAL_SECOND_APPROVAL_OVER",
    default={"USD": "10000", "BTC": "0.5", "ETH": "5", "SOL": "100", "*": "0"},
)
# How often the simulated chain mines a block (confirming pending deposits) and how often
# approved withdrawals are swept, in seconds.
CHAIN_BLOCK_SECONDS = env.int("CHAIN_BLOCK_SECONDS", default=10)
WITHDRAWAL_SWEEP_SECONDS = env.int("WITHDRAWAL_SWEEP_SECONDS", default=30)
CELERY_BEAT_SCHEDULE.update(
    {
        "chain-mine-block": {
            "task": "wallets.tasks.chain_block_mine_task",
            "schedule": timedelta(seconds=CHAIN_BLOCK_SECONDS),
        },
        "withdrawals-process-approved": {
            "task": "wallets.tasks.withdrawals_process_pending_task",
            "schedule": timedelta(seconds=WITHDRAWAL_SWEEP_SECONDS),
        },
        "withdrawals-expire-unconfirmed": {
            "task": "wallets.tasks.withdrawals_expire_unconfirmed_task",
            "schedule": timedelta(seconds=60),
        },
        "ledger-check": {
            "task": "wallets.tasks.ledger_check_task",
            "schedule": crontab(minute=5),
        },
    }
)

# Fee tiers (ARCHITECTURE §4 "Fees"): beat recomputes every account's 30-day traded volume
# daily at this UTC time (Binance moves VIP levels once a day, at 00:00 UTC).
FEE_VOLUME_HOUR = env.int("FEE_VOLUME_HOUR", default=0)
FEE_VOLUME_MINUTE = env.int("FEE_VOLUME_MINUTE", default=10)
CELERY_BEAT_SCHEDULE["fee-volumes-refresh"] = {
    "task": "trading.tasks.fee_volumes_refresh_task",
    "schedule": crontab(hour=FEE_VOLUME_HOUR, minute=FEE_VOLUME_MINUTE),
}

# Proof of liabilities (docs/PROOF_OF_LIABILITIES.md): beat takes a snapshot daily at this
# UTC time; the newest LIABILITY_SNAPSHOTS_KEEP are kept (0: all), ~100 MB each for 100,000
# accounts holding 4 assets.
LIABILITY_SNAPSHOT_HOUR = env.int("LIABILITY_SNAPSHOT_HOUR", default=0)
LIABILITY_SNAPSHOT_MINUTE = env.int("LIABILITY_SNAPSHOT_MINUTE", default=30)
LIABILITY_SNAPSHOTS_KEEP = env.int("LIABILITY_SNAPSHOTS_KEEP", default=30)
CELERY_BEAT_SCHEDULE["liabilities-snapshot"] = {
    "task": "wallets.tasks.liability_snapshot_take_task",
    "schedule": crontab(hour=LIABILITY_SNAPSHOT_HOUR, minute=LIABILITY_SNAPSHOT_MINUTE),
}

# --- Trading --------------------------------------------------------------------------
# A market buy by quantity reserves its estimated cost plus this margin (0.05 = 5 %); the
# engine never spends more than the reserve and releases what is left.
MARKET_ORDER_SLIPPAGE = Decimal(env.str("MARKET_ORDER_SLIPPAGE", default="0.05"))
# Order entry reuses a market read this many seconds ago in the same process (0: read it for
# every order). The placing statement re-checks the status and rules, so a halt or a new tick
# size applies to the very next order; only last_price (for market orders' estimates) lags.
ORDER_ENTRY_MARKET_CACHE_SECONDS = env.float("ORDER_ENTRY_MARKET_CACHE_SECONDS", default=1.0)
# POST /api/v1/orders/ with JSON and a bearer token skips DRF's per-request setup
# (trading/api/views.py, OrderListCreateApi._post_fast): the same checks and answers.
ORDER_ENTRY_FAST_PATH = env.bool("ORDER_ENTRY_FAST_PATH", default=True)
MATCHER_BATCH_SIZE = env.int("MATCHER_BATCH_SIZE", default=2000)
MATCHER_POLL_SECONDS = env.float("MATCHER_POLL_SECONDS", default=0.5)
# After a batch that cleared the queue, wait this long before the next one so that a steady
# stream of orders is settled a few at a time rather than one transaction per order.
MATCHER_BATCH_WINDOW_MS = env.int("MATCHER_BATCH_WINDOW_MS", default=10)
# /api/v3 order and cancel answers of type RESULT/FULL wait up to this long for the matcher,
# so that they report the order's status and fills after matching, as Binance does.
BINANCE_ORDER_WAIT_MS = env.int("BINANCE_ORDER_WAIT_MS", default=2000)
# A user-data stream's listenKey lives this long after its creation or last keep-alive (PUT),
# as on Binance; its open streams check it every LISTEN_KEY_CHECK_SECONDS and end with
# listenKeyExpired once it is gone.
LISTEN_KEY_TTL_SECONDS = env.int("LISTEN_KEY_TTL_SECONDS", default=3600)
LISTEN_KEY_CHECK_SECONDS = env.float("LISTEN_KEY_CHECK_SECONDS", default=5.0)
# A WebSocket API user-data subscription re-checks its API key this often (a revoked key or a
# frozen owner ends it with eventStreamTerminated) and renews its user's "watching" mark,
# which lapses after 60 s (exchange_site.user_events).
USER_STREAM_CHECK_SECONDS = env.float("USER_STREAM_CHECK_SECONDS", default=20.0)

# --- WebSockets -----------------------------------------------------------------------
# The matcher sends at most one order-book diff per market per this many milliseconds
# (ARCHITECTURE §6: at least 100). Every diff costs one frame per subscriber, which is what
# limits fan-out on small machines (docs/PERFORMANCE.md).
MARKETDATA_DIFF_INTERVAL_MS = env.int("MARKETDATA_DIFF_INTERVAL_MS", default=250)
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=50)
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=4096)
# Client messages per second per connection (token bucket); over the limit → close 1008.
WS_RATE_PER_SECOND = env.float("WS_RATE_PER_SECOND", default=20.0)
WS_RATE_BURST = env.int("WS_RATE_BURST", default=40)
# Messages waiting for one slow client before it is resynced instead of buffered further.
WS_OUTBOX_LIMIT = env.int("WS_OUTBOX_LIMIT", default=500)
# Bytes a client may leave unread in its socket's send buffer before its messages queue in
# the outbox (and it is resynced when that fills) rather than being written directly.
WS_SEND_BUFFER_BYTES = env.int("WS_SEND_BUFFER_BYTES", default=256 * 1024)
# Write public messages as prepared frames straight to daphne's connections (marketdata.fastsend);
# off = every message through the ASGI send (for comparison in bench/ws_fanout.py).
WS_DIRECT_SEND = env.bool("WS_DIRECT_SEND", default=True)
