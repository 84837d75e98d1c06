"""``Idempotency-Key`` on POST: a retry replays the first answer instead of acting twice."""

import functools

from flask import current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from rights.lifecycle import idempotency
from rights.lifecycle.idempotency import KEY_MAX_LENGTH, KEY_PATTERN
from storage.db import db
from web.api.blueprint import bp
from web.api.parser import parsed_body

HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying a POST with the same key and body replays the first answer "
    "(header Idempotent-Replayed: true); the same key with another body is refused (422). "
    f"1 to {KEY_MAX_LENGTH} printable ASCII characters, spaces only inside; anything else is "
    "refused (422).",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
REPLAYED = {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}}


def idempotent(view):
    """Honour ``Idempotency-Key``: replay the first answer to a retried POST.

    The record and the stored answer are written in one transaction, which the request's
    boundary commits (web/transaction.py). Everything is flushed here, inside the view, so
    that a unique-key race surfaces now, not at commit once the answer is made: a concurrent
    duplicate with the same key rolls back and replays the winner's answer; without a key, the
    loser of a race gets the blueprint's 409.

    Goes below ``require`` (a key is needed to know whose key it is) and above
    ``bp.response``, whose success statuses it documents as possibly replayed.
    """

    @functools.wraps(view)
    def inner(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            resp = current_app.make_response(view(*args, **kwargs))
            db.session.flush()
            return resp
        api_key_id, body = g.api_key.id, parsed_body()
        where = (request.method, request.path, body)
        idempotency.claim(api_key_id, key)
        stored = idempotency.lookup(api_key_id, key, *where)
        if stored:
            return _replay(*stored)
        try:
            resp = current_app.make_response(view(*args, **kwargs))
            idempotency.remember(api_key_id, key, *where, resp.status_code, resp.get_json())
        except IntegrityError:
            db.session.rollback()
            stored = idempotency.lookup(api_key_id, key, *where)
            if not stored:
                raise
            return _replay(*stored)
        return resp

    success = getattr(view, "_apidoc", {}).get("success_status_codes", [])
    document = bp.doc(
        parameters=[HEADER], responses={code: {"headers": REPLAYED} for code in success}
    )
    return document(bp.declares(409, 422)(inner))


def _replay(status: int, payload: dict):
    resp = jsonify(payload)
    resp.headers["Idempotent-Replayed"] = "true"
    return resp, status
