"""Framewise settings: one env-driven module; the running mode follows from the URLs set."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# The fallback key only serves embedded/dev runs; `check --deploy` flags it (W009).
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-framewise-embedded-only")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Behind a TLS-terminating proxy: redirect, HSTS and secure cookies.
HTTPS = env.bool("HTTPS", default=False)

DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
BROKER_URL = env.str("BROKER_URL", default="") or REDIS_URL
EMBEDDED = not (DATABASE_URL or REDIS_URL or BROKER_URL)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "ninja",
    "channels",
    "django_dramatiq",
    "accounts",
    "videos",
    "analytics",
    "web",
]


class _MiddlewareList(list[str]):
    """`"<Django path>" in MIDDLEWARE` also finds its hop-free subclass `config.hopfree.<same name>`:
    Django's security checks (`check --deploy`) test membership of the stock paths."""

    def __contains__(self, path: object) -> bool:
        return list.__contains__(self, path) or (
            isinstance(path, str) and list.__contains__(self, "config.hopfree." + path.rpartition(".")[2])
        )


# Outermost first: a request runs down this list, its response back up. Everything here is async
# and takes no thread hop unless it does I/O (config/hopfree.py); README "HTTP layer" explains the order.
MIDDLEWARE = _MiddlewareList(
    [
        "config.metrics.PrometheusMiddleware",  # latency by route pattern, 429s and 504s included
        "config.middleware.RequestContextMiddleware",  # X-Request-ID, X-Process-Time: times all below
        "config.hopfree.SecurityMiddleware",  # HTTPS redirect first; HSTS, nosniff, Referrer-Policy on all
        "config.hopfree.XFrameOptionsMiddleware",  # on every response, 429/504 included
        "config.middleware.ContentSecurityPolicyMiddleware",  # CSP on HTML
        "config.compression.CompressionMiddleware",  # outside the ETag layer: tags name the identity body
        "config.caching.CacheHeadersMiddleware",  # Cache-Control table, ETag/304 (keeps RateLimit-* on 304)
        "config.middleware.ErrorShapeMiddleware",  # framework errors → {"error", "message", "details"}
        "config.middleware.RateLimitMiddleware",  # refuse before sessions, auth and the view cost anything
        "config.middleware.TimeoutMiddleware",  # cancels everything below it, the view included
        "config.hopfree.SessionMiddleware",  # admin and HTML pages from here down
        "config.hopfree.CommonMiddleware",
        "config.hopfree.CsrfViewMiddleware",
        "config.hopfree.AuthenticationMiddleware",
        "config.hopfree.MessageMiddleware",
    ]
)

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
APPEND_SLASH = False

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
        },
    },
]

# --- Database ---------------------------------------------------------------
if DATABASE_URL:
    _db = env.db_url("DATABASE_URL")
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["ENGINE"] = "config.postgresql"  # Django's backend whose pool drops all dead connections at once
    _db["CONN_MAX_AGE"] = 0  # Django's native pool owns connection reuse.
    _db["CONN_HEALTH_CHECKS"] = True  # The pool checks a connection on checkout: killed ones are replaced.
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        # Waiting longer for a connection than this answers 503 (a request never waits more than ~5 s in total).
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=3.0),
    }
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "var" / "db.sqlite3")),
            "OPTIONS": {
                "init_command": ("PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=5000;"),
                "transaction_mode": "IMMEDIATE",
            },
            # On disk (not shared-cache memory) so worker threads in tests get WAL, not table locks.
            "TEST": {"NAME": str(BASE_DIR / "var" / "test.sqlite3")},
        }
    }

# Hot reads on PostgreSQL skip the ORM's thread hop: an async psycopg pool per process (config/adb.py).
FAST_READS = env.bool("FAST_READS", default=True)
ADB_POOL_MIN_SIZE = env.int("ADB_POOL_MIN_SIZE", default=1)
ADB_POOL_MAX_SIZE = env.int("ADB_POOL_MAX_SIZE", default=4)
ADB_POOL_TIMEOUT_S = env.float("ADB_POOL_TIMEOUT_S", default=3.0)

# --- Cache, channel layer, broker -------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1.0,
                "SOCKET_TIMEOUT": 1.0,
                # A cache outage degrades to the database instead of failing requests.
                "IGNORE_EXCEPTIONS": True,
            },
            "KEY_PREFIX": "fw",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "fw:ch"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.ShutdownNotifications",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "config.metrics.ActorMetrics",
]
if BROKER_URL.startswith(("amqp://", "amqps://")):
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
        "OPTIONS": {"url": BROKER_URL},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
elif BROKER_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": BROKER_URL, "namespace": "fw-dramatiq"},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
DRAMATIQ_AUTODISCOVER_MODULES = ["actors"]
# With the stub broker, a worker runs inside the web process (see config/dramatiq.py).
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=not BROKER_URL)

# --- Auth -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.DRFORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.errors.drf_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"PlanEnum": "accounts.models.User.Plan"},
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "LEEWAY": 0,
}

# --- Limits -----------------------------------------------------------------
VIDEO_MAX_BYTES = env.int("VIDEO_MAX_BYTES", default=104_857_600)
REQUEST_TIMEOUT_S = env.float("REQUEST_TIMEOUT_S", default=30.0)
RATE_LIMITS = env.str("RATE_LIMITS", default="auth=5/m,upload=2/m,search=30/m,general=100/m")
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
# Number of reverse proxies in front of the app whose X-Forwarded-For entries are trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
SLOW_REQUEST_S = 1.0
# GET /metrics is open like /health (scrape it from the internal network) unless this bearer token is set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Profiling (django-silk, opt-in; see README "Profiling with silk") ---------
SILK_ENABLED = env.bool("SILK_ENABLED", default=False)
if SILK_ENABLED:
    from config import silk as _silk

    INSTALLED_APPS.append("silk")
    # Inside compression, the rate limiter and the error shape, outside everything that runs queries.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("config.middleware.RateLimitMiddleware") + 1, "config.silk_middleware.SilkyMiddleware"
    )
    LOGIN_URL = "admin:login"  # Staff sign in through the admin, then open /silk/.
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True
    SILKY_PERMISSIONS = _silk.is_staff
    SILKY_INTERCEPT_FUNC = _silk.should_record
    SILKY_IGNORE_PATHS = ["/metrics", "/health", "/health/live"]
    # cProfile for every request (SILK_PYTHON_PROFILER=1) or for chosen path prefixes (SILK_PROFILE_PATHS).
    SILK_PROFILE_PATHS = env.list("SILK_PROFILE_PATHS", default=[])
    SILKY_PYTHON_PROFILER = env.bool("SILK_PYTHON_PROFILER", default=False)
    if SILK_PROFILE_PATHS:
        SILKY_PYTHON_PROFILER_FUNC = _silk.profile_chosen_paths
    # No JWT may reach silk's tables (tests/config/test_silk.py): request bodies are masked by key, response
    # bodies (tokens, signed URLs) are never kept, nor any SQL touching the table that stores refresh tokens.
    SILKY_MAX_REQUEST_BODY_SIZE = 16 * 1024
    SILKY_MAX_RESPONSE_BODY_SIZE = 0
    SILKY_SENSITIVE_KEYS = {"username", "password", "token", "access", "refresh", "secret", "key", "api", "signature"}
    SILKY_HIDE_COOKIES = True
    SILKY_IGNORE_QUERIES = ["token_blacklist_outstandingtoken"]
    SILKY_MAX_RECORDED_REQUESTS = 10_000

# --- Static and media -------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Naming a bucket moves media to S3 (or any S3 API: MinIO, Ceph, R2) through django-storages, so web processes
# and workers on several machines share it; the code only uses the storage API (see config/storage.py).
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    from config.storage import s3_storage

    STORAGES = {
        "default": s3_storage(
            bucket=AWS_STORAGE_BUCKET_NAME,
            endpoint_url=env.str("AWS_S3_ENDPOINT_URL", default=""),
            region=env.str("AWS_S3_REGION_NAME", default=""),
            access_key=env.str("AWS_ACCESS_KEY_ID", default=""),
            secret_key=env.str("AWS_SECRET_ACCESS_KEY", default=""),
            location=env.str("AWS_LOCATION", default=""),
            querystring_expire=env.int("AWS_QUERYSTRING_EXPIRE", default=3600),
        ),
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
# Media endpoints answer 302 to a presigned URL instead of streaming the bytes (see videos/media.py).
MEDIA_REDIRECT = env.bool("MEDIA_REDIRECT", default=bool(AWS_STORAGE_BUCKET_NAME))

# --- i18n -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security ---------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HTML only (admin, /api/v1/docs): every script and stylesheet is served from here (Ninja's Swagger UI
# ships its own static files and no inline script); admin and Swagger UI use inline styles and data: images.
# With MEDIA_REDIRECT the page's <img>/<video> follow 302s to the object store, which must be allowed too.
_MEDIA_ORIGIN = env.str("MEDIA_ORIGIN", default="") or (
    (env.str("AWS_S3_ENDPOINT_URL", default="") or "https://*.amazonaws.com") if MEDIA_REDIRECT else ""
)
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: {_MEDIA_ORIGIN}; "
    f"media-src 'self' {_MEDIA_ORIGIN}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
).replace(" ;", ";")
SESSION_COOKIE_HTTPONLY = True
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health(/live)?$"]
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one INFO line per client request (tests, S3 clients): noise
    },
}
