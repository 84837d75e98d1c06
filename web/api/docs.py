"""Browsable API docs at ``/api/v1/docs``: Swagger UI reading ``/api/v1/openapi.json``.

Every file comes from Lethe itself, never a CDN: Swagger UI's build from the pinned
flask-swagger-ui package, whose ``dist`` folder ships it with its licence (only the files are
used: the package's own page starts Swagger UI with an inline script, which the
Content-Security-Policy forbids; web/static/api-docs.js does it here).
"""

from importlib.resources import files

from flask import abort, make_response, render_template, send_from_directory

from web.api.blueprint import bp

SWAGGER_UI = str(files("flask_swagger_ui") / "dist")
# What the page loads, and the licence; nothing else of the package is served.
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "LICENSE"})


@bp.get("/docs", tags=["documentation"])
@bp.response(200, {"type": "string"}, content_type="text/html", description="Swagger UI")
def docs():
    """This document, browsable (Swagger UI)."""
    return make_response(render_template("api/docs.html"))


def swagger_ui_file(filename: str):
    if filename not in SWAGGER_UI_FILES:
        abort(404)
    return send_from_directory(SWAGGER_UI, filename)


@bp.record_once
def _serve_swagger_ui(state) -> None:
    # Beside the app's static files, outside /api/v1: they are no part of the API (every
    # route under /api/v1 is an operation of the document). The endpoint is named static_...
    # so they are cached like the app's own static files (web/__init__.py's no-store spares
    # static endpoints).
    state.app.add_url_rule(
        "/swagger-ui/<path:filename>", endpoint="static_swagger_ui", view_func=swagger_ui_file
    )
