"""The privacy officers' dashboard: log-in with password and TOTP, the queue, requests and
their decisions, the audit trail, and (for admins) officers, API keys and signing keys.

Access control lives here and nowhere else in the views: every route declares the permission
it needs (``@requires``); per-object rules (who may act on which request) come from
:func:`rights.ledger.officers.may_decide`. Every refusal is logged, and an audit entry is written
for every signed-in officer who is refused.

Views never commit: :mod:`web.transaction` commits after each request (below 400; a refusal
that must keep its audit entry says so with ``keep_changes``), and :func:`web.actions.attempt`
runs a service call that may be refused.
"""

import functools
import logging
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, logout_user

from rights.ledger import audit, officers
from storage.clock import utcnow
from storage.models import Officer
from web.extensions import login_manager
from web.transaction import keep_changes

bp = Blueprint("dashboard", __name__)
log = logging.getLogger(__name__)

SINCE, SEEN, EPOCH = "officer_since", "officer_seen", "officer_epoch"


class OfficerLogin(UserMixin):
    """Flask-Login's view of an officer (the model stays free of web concerns)."""

    def __init__(self, officer: Officer):
        self.officer = officer
        self.id = str(officer.id)

    @property
    def is_active(self) -> bool:
        return self.officer.active


@login_manager.user_loader
def _load(officer_id: str):
    officer = officers.get(officer_id)
    # A deactivated or signed-out officer's sessions end on their next request: the session
    # carries the epoch it was signed in under, and sign-out moves the officer's on.
    if officer is None or not officer.active or session.get(EPOCH) != officer.session_epoch:
        return None
    return OfficerLogin(officer)


login_manager.login_view = "dashboard.login"
login_manager.login_message = "Please sign in to continue."
# A session cookie replayed from another browser (other address or user agent) is dropped.
login_manager.session_protection = "strong"


def me() -> Officer | None:
    return current_user.officer if current_user.is_authenticated else None


def actor() -> str:
    return officers.actor(me())


def _expired(now: datetime) -> bool:
    cfg = current_app.config
    since, seen = session.get(SINCE), session.get(SEEN)
    if not since or not seen:
        return True
    absolute = timedelta(hours=cfg["DASHBOARD_SESSION_HOURS"])
    idle = timedelta(minutes=cfg["DASHBOARD_IDLE_MINUTES"])
    return (
        now - datetime.fromisoformat(since) > absolute or now - datetime.fromisoformat(seen) > idle
    )


@bp.before_request
def _session_checks():
    g.dashboard = True
    if request.endpoint in ("dashboard.login", "static"):
        return None
    if not current_user.is_authenticated:
        log.info("dashboard: anonymous request refused (%s)", request.endpoint)
        return login_manager.unauthorized()
    now = utcnow()
    if _expired(now):
        audit.record(actor(), "officer.session_expired")  # committed with the redirect
        logout_user()
        session.pop(SINCE, None)
        session.pop(SEEN, None)
        flash("Your session expired. Please sign in again.")
        return redirect(url_for("dashboard.login"))
    session[SEEN] = now.isoformat()
    return None


def start_session(officer: Officer) -> None:
    now = utcnow().isoformat()
    session[SINCE] = session[SEEN] = now
    session[EPOCH] = officer.session_epoch or 0


def deny(reason: str, *, target: str | None = None, permission: str | None = None):
    """Refuse (403), logging who was refused what; never returns."""
    officer = me()
    log.warning(
        "dashboard: %s refused %s (%s)",
        officers.actor(officer) if officer else "anonymous",
        request.endpoint,
        permission or "object rule",
    )
    if officer is not None:
        audit.record(
            officers.actor(officer),
            "authz.denied",
            target=target or request.endpoint,
            details={"permission": permission, "endpoint": request.endpoint},
        )
        keep_changes()  # the refusal is in the audit trail, though the answer is a 403
    abort(403, description=reason)


def requires(permission: str):
    """Route decorator: the signed-in officer's role must grant ``permission``."""
    officers.PERMISSIONS[permission]  # a typo fails at import, not at request time

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not officers.allowed(me(), permission):
                deny("Your role does not allow this.", permission=permission)
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorate


@bp.app_context_processor
def _template_globals():
    return {
        "me": me() if g.get("dashboard") else None,
        "can": lambda permission: officers.allowed(me(), permission),
    }


from web.dashboard import (  # noqa: E402, F401
    admin,
    agents_views,
    audit_views,
    auth,
    home,
    incident_views,
    queue_views,
    request_views,
    retention_views,
    subscriber_views,
)
