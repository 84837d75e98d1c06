"""Configuration: defaults, then instance/config.py or the test's dict, then ``LETHE_*``
environment variables. Read when the app is created, never at import.

Secrets (``SECRET_KEY``, ``KEY_ENCRYPTION_KEY``, ``BLIND_INDEX_KEY``) have no default. In
production a missing one stops start-up with a clear error; in development and tests they are
generated once into ``instance/secrets.json`` (mode 0600) so restarts keep working data.
"""

import base64
import copy
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from storage.wording import N_

SECRET_NAMES = ("SECRET_KEY", "KEY_ENCRYPTION_KEY", "BLIND_INDEX_KEY")


class ConfigError(RuntimeError):
    pass


def defaults(instance: Path) -> dict:
    """The built-in settings, with the embedded default's files in ``instance``."""
    return {
        **copy.deepcopy(DEFAULTS),  # an app may add to a nested dict: never to the shared one
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'lethe.db'}",
        "KEYSTORE_URL": f"sqlite:///{instance / 'keystore.db'}",
        "MAIL_DIR": str(instance / "mail"),
        "EPOCH_KEY_DIR": str(instance / "epoch-keys"),
    }


DEFAULTS = {
    "ENV_NAME": "development",
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # How Lethe is served: "http" or "https". Unset, it is PUBLIC_URL's scheme. With
    # https, every response carries HSTS (web/__init__.py); never with http.
    "PREFERRED_URL_SCHEME": None,
    # The platform people know: public pages and emails carry its name; Lethe is the service
    # behind it (the officers' dashboard keeps Lethe's name).
    # The transparency log's name (its checkpoints' origin line and signature key name),
    # e.g. "privacy.example.com/transparency". Unset: PUBLIC_URL's host and path +
    # "/transparency". Witnesses keep it: choose it once.
    "TRANSPARENCY_ORIGIN": None,
    # This business's id in the Data Rights Protocol's service directory: agents sign it into
    # every message (business-id), and a message for another business is refused.
    "DRP_BUSINESS_ID": "perkly",
    "PLATFORM_NAME": "Perkly",
    "CONTROLLER_NAME": "Perkly Inc.",
    "CONTROLLER_CONTACT": "privacy@perkly.example",
    # A phrase, not a name, by default: marked for the catalogue and shown in the reader's
    # language. A deployment's own authority (a proper name) is shown as written.
    "SUPERVISORY_AUTHORITY": N_(
        "your national data protection authority, listed at edpb.europa.eu"
    ),
    "MAIL_BACKEND": "file",  # file | smtp
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_USE_TLS": False,
    "MAIL_SENDER": "Lethe <privacy@perkly.example>",
    # Shred epochs (storage/epochs.py): subject keys are wrapped under the current epoch's
    # key, which is destroyed when the epoch has ended and every surviving key has been
    # re-wrapped. Epoch keys live in a PKCS#11 token ("pkcs11": PKCS11_MODULE, the token's
    # label and PIN) or, for the embedded default, in sealed key files ("file") in
    # EPOCH_KEY_DIR, which must never be backed up.
    "SHRED_EPOCH_HOURS": 24,
    "EPOCH_KEY_BACKEND": "file",
    "PKCS11_MODULE": None,
    "PKCS11_TOKEN_LABEL": "lethe",
    "PKCS11_PIN": None,
    "VERIFICATION_TTL_HOURS": 24,
    "DOWNLOAD_TTL_DAYS": 30,
    # Where rate limits count: memory:// counts in each process apart (development, tests);
    # production, which runs several (gunicorn.conf.py), refuses it: use redis://host:6379.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_PUBLIC_FORMS": "10 per minute;100 per day",
    # Record-key look-ups (web and API): slow enough that guessing is hopeless anyway.
    "RATELIMIT_STATEMENTS": "5 per minute;50 per day",
    # Officer log-ins, per client address (a wrong password and a wrong code count alike).
    "RATELIMIT_LOGIN": "10 per minute;60 per hour",
    # And per account: this many failed sign-ins in a row lock the account for this many
    # minutes (0 failures: never), whatever address they came from. While locked, even
    # the right password and code get the answer any failure gets.
    "LOGIN_LOCKOUT_FAILURES": 10,
    "LOGIN_LOCKOUT_MINUTES": 15,
    # Dashboard sessions end after this long without a request, and in any case after
    # the absolute limit (a shift), whatever the activity.
    "DASHBOARD_IDLE_MINUTES": 30,
    "DASHBOARD_SESSION_HOURS": 10,
    # The request form answers no sooner than this, member or not (see web/public).
    "PUBLIC_FORM_MIN_SECONDS": 0.4,
    # Reverse proxies in front of Lethe (X-Forwarded-For/-Proto hops to trust): the rate
    # limit needs the client's address, not the proxy's.
    "PROXY_HOPS": 0,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=2),
    "WTF_CSRF_TIME_LIMIT": 3600,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "OUTBOX_BATCH": 50,
    # Art. 18(3): a restriction ends this long after the subject is told it will.
    "RESTRICTION_LIFT_NOTICE_HOURS": 72,
    # Webhooks: per-attempt timeout, and whether targets may resolve to private, loopback
    # or link-local addresses (never in production: that is how SSRF reaches inside).
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": False,
    # How many POSTs one worker has in flight at once (receivers answer slowly, and one
    # slow receiver should not hold up the others).
    "WEBHOOK_PARALLEL": 8,
    # The worker sweeps every retention policy this often (0: never; run
    # `flask retention sweep` from a scheduler instead).
    "RETENTION_SWEEP_HOURS": 24,
    # The record of processing (Art. 30): the controller's data protection officer. Its
    # transfers outside the EEA are the data map's recipients' (storage/recipients.py).
    "DPO_CONTACT": "dpo@perkly.example",
    # Room for a request form with its pictures (at most three of 4 MB each, checked one
    # by one in rights/lifecycle/evidence.py); anything larger is refused before it is read.
    "MAX_CONTENT_LENGTH": 13 * 1024 * 1024,
    # /metrics (web/operations.py): scrapers send "Authorization: Bearer <METRICS_TOKEN>".
    # Unset, the page is open in development and tests, and not served at all in production.
    "METRICS_TOKEN": None,
}


def normalise_db_url(url: str) -> str:
    # psycopg 3 is the driver we ship; plain postgres:// URLs (Heroku style) mean it too.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _generated_secrets(instance: Path) -> dict:
    path = instance / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "BLIND_INDEX_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


def _transparency_origin(cfg) -> str:
    """The transparency log's name: TRANSPARENCY_ORIGIN, else PUBLIC_URL's host and path +
    "/transparency". It is a signed note's key name too: one word, no spaces, no '+'."""
    origin = cfg.get("TRANSPARENCY_ORIGIN")
    if origin is None:
        url = urlsplit(str(cfg.get("PUBLIC_URL") or ""))
        origin = ((url.netloc + url.path).rstrip("/") or "lethe") + "/transparency"
        what = "the log's name made from LETHE_PUBLIC_URL"
    else:
        what = "LETHE_TRANSPARENCY_ORIGIN"
    if (
        not isinstance(origin, str)
        or not origin
        or "+" in origin
        or any(c.isspace() or not c.isprintable() for c in origin)
    ):
        raise ConfigError(
            f"{what} must be one word with no spaces and no '+' "
            "(set LETHE_TRANSPARENCY_ORIGIN, e.g. privacy.example.com/transparency)"
        )
    return origin


def _url_scheme(cfg) -> str:
    """An explicit PREFERRED_URL_SCHEME, else the scheme of PUBLIC_URL (the address people
    and receivers are given), else http."""
    explicit = cfg.get("PREFERRED_URL_SCHEME")
    if explicit:
        scheme = str(explicit).strip().lower()
        if scheme not in ("http", "https"):
            raise ConfigError("LETHE_PREFERRED_URL_SCHEME must be http or https")
        return scheme
    return "https" if urlsplit(str(cfg.get("PUBLIC_URL") or "")).scheme == "https" else "http"


def load(app: Flask, test_config: dict | None) -> None:
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(defaults(instance))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    if test_config is None or test_config.get("READ_ENV", False):
        # DATABASE_URL is the convention of most hosts; LETHE_DATABASE_URL wins over it.
        if os.environ.get("DATABASE_URL"):
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
        app.config.from_prefixed_env("LETHE")
        if app.config.get("DATABASE_URL"):
            app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]

    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_db_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_BINDS"] = {"keystore": normalise_db_url(app.config["KEYSTORE_URL"])}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}

    app.config["PREFERRED_URL_SCHEME"] = _url_scheme(app.config)

    missing = [name for name in SECRET_NAMES if not app.config.get(name)]
    if missing:
        if app.config["ENV_NAME"] == "production":
            raise ConfigError(
                "missing secrets for production: "
                + ", ".join(f"LETHE_{n}" for n in missing)
                + " (see README, 'Configuration')"
            )
        generated = _generated_secrets(instance)
        for name in missing:
            app.config[name] = generated[name]
    for name in ("KEY_ENCRYPTION_KEY", "BLIND_INDEX_KEY"):
        try:
            ok = len(base64.urlsafe_b64decode(app.config[name])) == 32
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise ConfigError(f"LETHE_{name} must be 32 random bytes, base64url-encoded")
    app.config["TRANSPARENCY_ORIGIN"] = _transparency_origin(app.config)

    if app.config["ENV_NAME"] == "production":
        app.config["SESSION_COOKIE_SECURE"] = True
        if app.config["MAIL_BACKEND"] == "file":
            raise ConfigError("LETHE_MAIL_BACKEND=file is for development; configure SMTP")
        # Each worker process would count a client's failed record-key look-ups (and sign-in
        # attempts) apart, and forget them on restart: one store for all of them.
        storage = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
        if app.config.get("RATELIMIT_ENABLED", True) and storage.startswith("memory://"):
            raise ConfigError(
                "LETHE_RATELIMIT_STORAGE_URI=memory:// counts in each process apart; set a "
                "shared store for production, e.g. redis://127.0.0.1:6379"
            )
