"""One JSON error shape for the API: ``{"error": {"code", "message", "fields"}}``, dumped
through :class:`web.api.responses.ErrorOut`, which the OpenAPI document states.

Every error answer comes from here: the blueprint's handlers (web/api/blueprint.py) and, for
HTTP errors under /api/ (404, 405, 413, 429...), web/__init__.py's dispatch. flask-smorest's
own error handler, which has another shape, is never installed (web/api/openapi.py).
"""

from flask import jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from rights.errors import RightsError
from web.api.responses import ErrorOut


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return jsonify(ErrorOut().dump(body)), status


def exception_headers(exc) -> dict[str, str]:
    """The headers an HTTP error must carry (``Allow`` on 405, ``Retry-After``,
    ``WWW-Authenticate``...), which a custom error page would otherwise drop."""
    if not isinstance(exc, HTTPException):
        return {}
    return {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}


def http_error(exc):
    if isinstance(exc, HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description if exc.code != 500 else "Something went wrong on our side."
        if exc.code == 429:
            message = "Too many requests; slow down and try again later."
        resp, status = error_response(exc.code or 500, code, message)
        resp.headers.update(exception_headers(exc))
        return resp, status
    return error_response(500, "internal_server_error", "Something went wrong on our side.")


def flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow nests errors for list items and nested objects ({"records": {0: [...]}});
    clients get one flat shape: {"records.0": ["Not a valid string."]}."""
    if isinstance(messages, dict):
        out = {}
        for key, value in messages.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages}
    if isinstance(messages, list):
        out = {}
        for value in messages:
            out.update(flatten(value, prefix))
        return out
    return {prefix or "_schema": [str(messages)]}


def validation_error(exc: ValidationError):
    return error_response(422, "invalid", "Some fields are not valid.", flatten(exc.messages))


def rights_error(exc: RightsError):
    return error_response(exc.status, exc.code, exc.message, exc.fields)


def integrity_error(exc):
    # Two writers created the same record at the same moment: the loser retries and updates.
    # (The request's transaction is rolled back: web/transaction.py, as for every error.)
    return error_response(
        409, "conflict", "A concurrent request changed the same record; retry the request."
    )
