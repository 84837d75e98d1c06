"""Signing in (password and a one-time code, on one form) and out."""

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user

from rights.ledger import audit, officers
from web.dashboard import SEEN, SINCE, OfficerLogin, actor, bp, me, start_session
from web.dashboard.forms import ConfirmForm, LoginForm
from web.extensions import limiter
from web.transaction import keep_changes


def _login_limit():
    return current_app.config["RATELIMIT_LOGIN"]


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another site (open redirect)."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and parts.path.startswith("/dashboard")
            and "\\" not in target
        ):
            return parts.path + (f"?{parts.query}" if parts.query else "")
    return url_for("dashboard.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if me() is not None:
        return redirect(url_for("dashboard.home"))
    form = LoginForm()
    if form.validate_on_submit():
        officer = officers.authenticate(form.email.data, form.password.data, form.code.data)
        if officer is not None:
            grants = session.get("grants")
            session.clear()  # no session fixation: a fresh session for the signed-in officer
            if grants:
                session["grants"] = grants
            start_session(officer)
            login_user(OfficerLogin(officer))
            return redirect(_safe_next(request.args.get("next")), code=303)
        form.password.data = form.code.data = ""
        # The failure stays in the audit trail and counts towards the lockout, though the
        # answer is a 401.
        keep_changes()
        return render_template("dashboard/login.html", form=form, failed=True), 401
    status = 422 if form.is_submitted() else 200
    return render_template("dashboard/login.html", form=form), status


@bp.post("/logout")
def logout():
    if ConfirmForm().validate_on_submit():
        audit.record(actor(), "officer.logout")
        officers.end_sessions(me())  # a copied cookie stops working too
        logout_user()
        session.pop(SINCE, None)
        session.pop(SEEN, None)
        flash("You are signed out.")
    return redirect(url_for("dashboard.login"), code=303)
