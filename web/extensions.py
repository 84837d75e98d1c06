"""Flask extensions owned by the web layer, initialised in :func:`app.create_app`."""

from flask import session
from flask_limiter import Limiter
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
migrate = Migrate()
login_manager = SessionOnlyLoginManager()
