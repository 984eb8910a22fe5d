"""Settings, read from the environment.

With nothing set, the app runs on the embedded default: SQLite, eager Celery, files and e-mail
under ``var/``, secrets generated into ``var/keys``. ``DATABASE_URL``, ``REDIS_URL`` and
``S3_BUCKET`` switch to the real services; ``HEALTHAPP_ENV=production`` turns on the deployment
hardening and refuses to start without real secrets.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from healthapp.env import env_bool, env_int, env_list, env_secret, env_str, generated_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HEALTHAPP_VAR_DIR", str(BASE_DIR / "var")))

HEALTHAPP_ENV = env_str("HEALTHAPP_ENV", "development")
if HEALTHAPP_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("HEALTHAPP_ENV must be 'development' or 'production'")
PRODUCTION = HEALTHAPP_ENV == "production"
DEBUG = env_bool("HEALTHAPP_DEBUG", False)

SECRET_KEY = env_secret("HEALTHAPP_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("HEALTHAPP_SECRET_KEY (or HEALTHAPP_SECRET_KEY_FILE) is required in production")
    SECRET_KEY = generated_secret(VAR_DIR / "keys" / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Project first so its commands (migrate → owner role) override Django's.
    "healthapp",
    "tenants",
    "accounts",
    "checkups",
    "lifelog",
    "points",
    "audit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_email",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "audit.middleware.AuditRequestMiddleware",  # request id, client address, user agent for audit.record
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise (static files stay cacheable), above sessions/CSRF/auth (sees their cookies and Vary).
    "healthapp.middleware.PrivateNoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "healthapp.middleware.JapaneseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last: everything below runs inside the tenant's transaction with app.tenant_id set.
    "tenants.middleware.TenantMiddleware",
    "tenants.middleware.IpAllowlistMiddleware",  # non-employees only from the tenant's networks
    "accounts.middleware.MfaRequiredMiddleware",  # privileged users verify a second factor first
    "accounts.middleware.PasswordChangeRequiredMiddleware",  # then a privileged login's short password is changed
]

ROOT_URLCONF = "healthapp.urls"
WSGI_APPLICATION = "healthapp.wsgi.application"

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
                "csp.context_processors.nonce",
                "accounts.context_processors.access",
            ],
            "builtins": ["healthapp.templatetags.lang_tags"],  # |ja on typed Japanese data, every page
        },
    },
]

# --- Encryption keys (healthapp.crypto) ------------------------------------------------------------
# The master key comes from HEALTHAPP_MASTER_KEY / _FILE or AWS KMS (HEALTHAPP_KMS_KEY_ID); the embedded
# default generates var/keys/master.key. Unwrapped tenant keys live in process memory for this long.
HEALTHAPP_KEY_CACHE_SECONDS = env_int("HEALTHAPP_KEY_CACHE_SECONDS", 300)

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL is the application role (no table ownership, no BYPASSRLS). DATABASE_OWNER_URL is the
# role that owns the tables; migrate and operator commands switch to it (healthapp.db.use_owner_role).
_default_db_url = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASE_URL = env_str("DATABASE_URL", _default_db_url)
DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL", "") or DATABASE_URL
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Lets two test runs share one PostgreSQL server without dropping each other's test database.
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
elif PRODUCTION and DATABASE_OWNER_URL == DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_OWNER_URL must name a different role from DATABASE_URL in production: "
        "the application role must not own the tables it is isolated by (row-level security)."
    )
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" and env_bool("DB_JIT_OFF", True):
    # No JIT: the pages and lookups are short queries whose cost estimates (a big tenant's subqueries, a
    # table without statistics) pass the JIT thresholds, and compiling took longer than running them.
    # Behind PgBouncer (which refuses startup options) set DB_JIT_OFF=0 and ALTER ROLE … SET jit = off.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery -----------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "Asia/Tokyo"

# --- Files --------------------------------------------------------------------------------------
S3_BUCKET = env_str("S3_BUCKET", "")
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION  # development serves straight from static/, no collectstatic needed
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
_staticfiles_backend = (
    "whitenoise.storage.CompressedManifestStaticFilesStorage"
    if PRODUCTION
    else "django.contrib.staticfiles.storage.StaticFilesStorage"
)
if S3_BUCKET:
    _private_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION", "ap-northeast-1"),
            "access_key": env_secret("S3_ACCESS_KEY_ID"),
            "secret_key": env_secret("S3_SECRET_ACCESS_KEY"),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
        },
    }
else:
    # Private files are never under a public URL: no MEDIA_URL is served.
    _private_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "files"), "base_url": None},
    }
STORAGES = {"default": _private_storage, "staticfiles": {"BACKEND": _staticfiles_backend}}

# --- E-mail -------------------------------------------------------------------------------------
SMTP_HOST = env_str("SMTP_HOST", "")
if SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = SMTP_HOST
    EMAIL_PORT = env_int("SMTP_PORT", 587)
    EMAIL_HOST_USER = env_str("SMTP_USER", "")
    EMAIL_HOST_PASSWORD = env_secret("SMTP_PASSWORD") or ""
    EMAIL_USE_TLS = env_bool("SMTP_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "no-reply@healthapp.example")

# --- Authentication -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "accounts.validators.RoleLengthValidator"},
    {"NAME": "accounts.validators.CharacterClassValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"

# Number of reverse proxies in front of the app that append to X-Forwarded-For. 0 = use REMOTE_ADDR;
# the header is then ignored entirely, so a client cannot forge its address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

AXES_FAILURE_LIMIT = env_int("LOCKOUT_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOCKOUT_COOLOFF_MINUTES", 30))
# Lock the account, not the address: a forged or shared address can neither lift a lock nor lock
# out everyone behind the same proxy.
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks for the address as a lock key too; behind one corporate NAT that would let five typos
# lock out a whole office, so per-address throttling is a rate limit (LOGIN_FAILURES_PER_IP), not the lock.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_CLIENT_IP_CALLABLE = "healthapp.net.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # axes' own log lines carry the e-mail address
AXES_SENSITIVE_PARAMETERS = ["username", "password", "ip_address"]

SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("SESSION_IDLE_TIMEOUT_MINUTES", 30))
SESSION_IDLE_TIMEOUT_PRIVILEGED = timedelta(minutes=env_int("SESSION_IDLE_TIMEOUT_PRIVILEGED_MINUTES", 15))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env_int("SESSION_ABSOLUTE_TIMEOUT_HOURS", 12))
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "healthapp_session"
CSRF_COOKIE_HTTPONLY = True

# --- Registration / MFA -----------------------------------------------------------------------------
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", 3600)  # reset links expire after 1 h
REGISTRATION_LINK_HOURS = env_int("REGISTRATION_LINK_HOURS", 24)  # self-registration confirmation link
# Attempts per window (seconds) before a registration or reset form answers "try again later".
# Failed logins from one address (any accounts) before it must wait out the window (accounts.registration).
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 30)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
REGISTRATION_RATE_LIMIT_PER_IP = env_int("REGISTRATION_RATE_LIMIT_PER_IP", 20)
REGISTRATION_RATE_LIMIT_PER_ENTRY = env_int("REGISTRATION_RATE_LIMIT_PER_ENTRY", 5)
REGISTRATION_RATE_LIMIT_WINDOW = env_int("REGISTRATION_RATE_LIMIT_WINDOW_SECONDS", 3600)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "healthapp")
OTP_TOTP_THROTTLE_FACTOR = 1  # after each wrong code the next try waits 1, 2, 4, 8 … seconds
OTP_EMAIL_SUBJECT = "【healthapp】確認コード / Verification code"
OTP_EMAIL_BODY_TEMPLATE_PATH = "emails/mfa_code.txt"
OTP_EMAIL_TOKEN_VALIDITY = 600
OTP_EMAIL_COOLDOWN_DURATION = 30
OTP_EMAIL_SENDER = DEFAULT_FROM_EMAIL
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Security headers ---------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = PRODUCTION and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 63072000 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- I18N -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("日本語")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Tokyo"  # shown in JST; stored in UTC (USE_TZ)
USE_TZ = True

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "healthapp.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "healthapp.pagination.ApiPagination",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "healthapp API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Logging: no personal data; request ids only ---------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's request logger prints the request line, which may carry query strings.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "axes": {"level": "WARNING"},
    },
}

# --- Audit ------------------------------------------------------------------------------------
AUDIT_RETENTION_MONTHS = env_int("AUDIT_RETENTION_MONTHS", 13)  # kept in the database, then pruned once shipped
AUDIT_LOCK_YEARS = env_int("AUDIT_RETENTION_YEARS_LOCK", 7)  # Object Lock (COMPLIANCE) on shipped batches
AUDIT_SHIP_BATCH_SIZE = env_int("AUDIT_SHIP_BATCH_SIZE", 5000)
AUDIT_S3_BUCKET = env_str("AUDIT_S3_BUCKET", S3_BUCKET)  # needs Object Lock enabled; unset → local folder
AUDIT_S3_ENDPOINT_URL = env_str("AUDIT_S3_ENDPOINT_URL", "") or env_str("S3_ENDPOINT_URL", "")
AUDIT_S3_REGION = env_str("S3_REGION", "ap-northeast-1")
# Its own credentials where the archive is its own bucket (the deploy check asks for both): the application's
# file credentials could otherwise write into the archive. Fall back to the file store's.
AUDIT_S3_ACCESS_KEY_ID = env_secret("AUDIT_S3_ACCESS_KEY_ID") or env_secret("S3_ACCESS_KEY_ID")
AUDIT_S3_SECRET_ACCESS_KEY = env_secret("AUDIT_S3_SECRET_ACCESS_KEY") or env_secret("S3_SECRET_ACCESS_KEY")
AUDIT_ARCHIVE_DIR = VAR_DIR / "audit-archive"
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["audit-ship"] = {"task": "audit.tasks.ship_audit_log", "schedule": 60.0}

# --- Roster import ---------------------------------------------------------------------------
from celery.schedules import crontab  # noqa: E402  (kept inside this block: only the beat entry needs it)

ROSTER_IMPORT_MAX_BYTES = env_int("ROSTER_IMPORT_MAX_BYTES", 20 * 2**20)  # larger uploads are refused
ROSTER_IMPORT_CHUNK_ROWS = env_int("ROSTER_IMPORT_CHUNK_ROWS", 5000)  # rows per apply transaction
ROSTER_IMPORT_MAX_ERRORS = env_int("ROSTER_IMPORT_MAX_ERRORS", 1000)  # beyond this the file is refused
# Uploads this large or larger have their rows cleaned in a forked helper process during the dry run (a
# second core); smaller ones in the worker alone, where the fork costs more than it saves. -1: never.
ROSTER_IMPORT_HELPER_MIN_BYTES = env_int("ROSTER_IMPORT_HELPER_MIN_BYTES", 2 * 2**20)
ROSTER_IMPORT_KEEP_DAYS = env_int("ROSTER_IMPORT_KEEP_DAYS", 7)  # unconfirmed uploads are deleted after this
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "accounts.roster_tasks"]  # not a tasks.py module
# An unacknowledged task (acks_late) of a killed worker is handed out again once it is older than the
# visibility timeout; workers look for such tasks every interval x throttle seconds (kombu: 10 x 10).
# 15 minutes: far above our longest task (a 100,000-row import), and a task still running when its
# copy is handed out is harmless: every import step locks its job and skips work already committed.
# Tasks with an ETA or countdown beyond this would be delivered twice: we schedule none.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 900),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL_SECONDS", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
}
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["roster-expire-qualifications"] = {
    "task": "accounts.roster_tasks.roster_expire_qualifications_all",
    "schedule": crontab(hour=0, minute=5),  # 00:05 JST (CELERY_TIMEZONE): 資格喪失日 starts the day
}
CELERY_BEAT_SCHEDULE["jobs-sweep"] = {
    "task": "healthapp.tasks.jobs_sweep_all",
    "schedule": 15 * 60.0,  # uploads expire, and an import whose message was lost moves again, within the hour
}
CELERY_BEAT_SCHEDULE["registration-purge"] = {
    "task": "accounts.tasks.registration_purge_all",
    "schedule": crontab(hour=0, minute=20),  # daily: expired self-registration links and their e-mail addresses
}

# --- Checkups --------------------------------------------------------------------------------------
# A follow-up (再検査 / 精密検査 / 受診勧奨) not reported as done this many months after the physician's
# opinion is shown as overdue (期限超過).
CHECKUP_FOLLOW_UP_DUE_MONTHS = env_int("CHECKUP_FOLLOW_UP_DUE_MONTHS", 3)
CHECKUP_IMPORT_MAX_BYTES = env_int("CHECKUP_IMPORT_MAX_BYTES", 100 * 2**20)  # larger uploads are refused
CHECKUP_IMPORT_MAX_ERRORS = env_int("CHECKUP_IMPORT_MAX_ERRORS", 1000)  # people in error; beyond, refused

# Uploads up to the largest import limit stay in memory while the request runs: Django would otherwise
# write anything over 2.5 MB to a temporary file on local disk, in clear, before the import seals it
# (healthapp.crypto.files). Larger uploads are refused by every importer anyway.
FILE_UPLOAD_MAX_MEMORY_SIZE = max(ROSTER_IMPORT_MAX_BYTES, CHECKUP_IMPORT_MAX_BYTES) + 2**20
# And nothing larger is ever spooled to disk either: without the temporary-file handler an upload over
# that size is read and dropped, and the page says it is too large (healthapp.job_views).
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
