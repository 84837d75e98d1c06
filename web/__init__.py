"""The web layer: public subject pages, the JSON API, security headers and error pages.

Views load input with a schema or form, call one service function, and render or dump the
result. They hold no queries and no business rules; they own the commit.
"""

from flask import Flask, render_template, request

from web import api, public
from web.extensions import csrf

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Verification and resume links carry a token in the path: never leak it as a Referer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint and not request.endpoint.startswith("static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _html_error(exc):
    code = getattr(exc, "code", 500) or 500
    return render_template("error.html", code=code, name=getattr(exc, "name", "Error")), code


def init_app(app: Flask) -> None:
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    csrf.exempt(api.bp)
    app.after_request(_security_headers)
    for code in (400, 403, 404, 405, 413, 429, 500):
        app.register_error_handler(code, _dispatch_error)


def _dispatch_error(exc):
    if request.path.startswith("/api/"):
        return api.errors.http_error(exc)
    return _html_error(exc)
