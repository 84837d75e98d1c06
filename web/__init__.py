"""The web layer: public subject pages, the officers' dashboard, the JSON API, security
headers and error pages.

Views load input with a schema or form, call one service function, and render or dump the
result. They hold no queries and no business rules; :mod:`web.transaction` commits (or rolls
back) once per request, after the view.
"""

import re
from datetime import datetime

from flask import Flask, current_app, render_template, request
from flask_babel import gettext

import rights.catalogue  # noqa: F401  (registers each right's handler with the lifecycle)
from storage import wording
from storage.wording import N_
from web import api, dashboard, drp, i18n, operations, public, transaction, wellknown
from web import logging as access_logging
from web.extensions import csrf, limiter

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# One year, subdomains too. Only when Lethe is served over https (PREFERRED_URL_SCHEME, which
# config.py derives from PUBLIC_URL unless set): never on plain http.
HSTS = "max-age=31536000; includeSubDomains"


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Verification and resume links carry a token in the path: never leak it as a Referer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config["PREFERRED_URL_SCHEME"] == "https":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint and not request.endpoint.startswith("static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def display(value) -> str:
    """A stored value as a person reads it: dates spelled out, empties as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str) and _ISO.match(value):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
        return wording.date_and_time(when)
    if isinstance(value, dict) and {"item", "brand"} <= set(value):  # a perk
        perk = {"item": value["item"], "brand": value["brand"], "value": value.get("value")}
        if value.get("campaign"):
            return gettext(
                "%(item)s from %(brand)s, campaign %(campaign)s (value %(value)s)",
                campaign=value["campaign"],
                **perk,
            )
        return gettext("%(item)s from %(brand)s (value %(value)s)", **perk)
    if isinstance(value, dict):
        return ", ".join(display(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return ", ".join(display(v) for v in value)
    return str(value)


# The errors Lethe answers with a page, named in sentence case in the reader's language
# (werkzeug's names are English, in title case: "Too Many Requests").
ERROR_NAMES = {
    400: N_("Bad request"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    413: N_("Request entity too large"),
    429: N_("Too many requests"),
    500: N_("Internal server error"),
}


def _html_error(exc):
    code = getattr(exc, "code", 500) or 500
    # Refusals say why (our own wording, never data); other errors keep to their name.
    reason = getattr(exc, "description", None) if code == 403 else None
    heading = gettext(ERROR_NAMES[code]) if code in ERROR_NAMES else None
    # The headers the error must carry (Allow on a 405, Retry-After...) survive the page.
    return (
        render_template(
            "error.html",
            code=code,
            name=getattr(exc, "name", "Error"),
            heading=heading,
            reason=reason,
        ),
        code,
        api.errors.exception_headers(exc),
    )


def init_app(app: Flask) -> None:
    i18n.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(wellknown.bp)
    # Authorized agents (the Data Rights Protocol): signed bodies, no session, no CSRF.
    app.register_blueprint(drp.bp)
    csrf.exempt(drp.bp)
    app.register_blueprint(dashboard.bp, url_prefix="/dashboard")
    # Probes and scrapes (/healthz, /readyz, /metrics): no CSRF, no rate limit, no session.
    app.register_blueprint(operations.bp)
    csrf.exempt(operations.bp)
    limiter.exempt(operations.bp)
    csrf.exempt(api.bp)
    # Picking a language changes a cookie holding "en" or "de", nothing else.
    csrf.exempt(i18n.bp)
    transaction.install(app)
    app.after_request(_security_headers)
    app.add_template_filter(display, "display")
    app.add_template_filter(wording.long_date, "long_date")
    access_logging.install()
    access_logging.install_request_log(app, operations.observe_latency)
    for code in (400, 403, 404, 405, 413, 429, 500):
        app.register_error_handler(code, _dispatch_error)


def _dispatch_error(exc):
    if request.path.startswith("/api/"):
        return api.errors.http_error(exc)
    if drp.is_protocol_path(request.path):
        return drp.error_answer(exc)
    return _html_error(exc)
