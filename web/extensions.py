"""Flask extensions owned by the web layer, initialised in :func:`app.create_app`."""

import time
from functools import wraps

from flask import session
from flask_babel import ngettext
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect


class SessionOnlyLoginManager(LoginManager):
    """Flask-Login without "remember me": the dashboard signs officers in for one session
    (idle and absolute limits, see ``web.dashboard``) and never issues a remember cookie, so
    it never sets, clears or reads one either.

    Flask-Login's strong session protection also treated every *anonymous* session that held
    anything (a CSRF token, a flashed message) as a session from another browser, and answered
    each such request by clearing a ``remember_token`` cookie nobody had — on every public
    page — and rewriting the session. Protection is for a signed-in session only; one without
    a user has nothing to protect.
    """

    def _session_protection_failed(self):
        if "_user_id" not in session:
            return False
        return super()._session_protection_failed()

    def _update_remember_cookie(self, response):
        # Drop Flask-Login's marker ("set" on login, "clear" on logout or a failed protection
        # check) without touching a cookie; leave an unchanged session unchanged.
        for key in ("_remember", "_remember_seconds"):
            if key in session:
                session.pop(key)
        return response

    def _load_user_from_remember_cookie(self, cookie):
        return None  # never issued: a remember cookie, forged or stale, signs nobody in


csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# Record-key look-ups, by the form (web/public/statements.py) and by the API
# (web/api/statements.py): one budget of failures per client for both doors.
RECORD_KEY_LOOKUPS = "record-key-lookups"
migrate = Migrate()
login_manager = SessionOnlyLoginManager()


def _failed(response) -> bool:
    """Whether an answer counts against a failures-only limit: anything but a success, and
    not the limiter's own refusal (a refused request was not an attempt)."""
    return response.status_code not in (200, 429)


def try_again_in(seconds: float) -> str:
    """When to try again, in words, to the nearest minute or hour: "in a minute" (for up to a
    minute and a half), "in 5 minutes", "in 3 hours". Retry-After has the exact seconds. In
    the page's language (the API's is English)."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return ngettext("in a minute", "in %(num)d minutes", minutes)
    hours = round(minutes / 60)
    return ngettext("in an hour", "in %(num)d hours", hours)


def limit_failures(limit_value, *, scope: str, answer, methods: list[str] | None = None):
    """A rate limit that counts failed attempts only (:func:`_failed`): a client is let in
    while it has failures left, however many times it has succeeded. One budget per client
    address for every view decorated with the same ``scope``, kept in RATELIMIT_STORAGE_URI
    (one count for every process when that is Redis).

    A refused request gets ``answer(when)`` — the view's own page or JSON, ``when`` saying in
    words when to try again (:func:`try_again_in`) — rather than the generic 429 page; the
    limiter still adds its Retry-After and X-RateLimit headers to it.

    Letting in and counting are two steps (flask-limiter's ``deduct_when``): requests already
    in flight when the last failure is counted still run, so a client can go over the limit by
    as many requests as it has in flight at that moment, no more.
    """
    shared = limiter.shared_limit(limit_value, scope=scope, methods=methods, deduct_when=_failed)

    def decorator(view):
        limited = shared(view)

        @wraps(view)
        def guarded(*args, **kwargs):
            try:
                return limited(*args, **kwargs)
            except RateLimitExceeded:
                breached = limiter.current_limit
                return answer(try_again_in(breached.reset_at - time.time() if breached else 60))

        return guarded

    return decorator
