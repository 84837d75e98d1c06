"""Bearer API keys: who is asking, what their scopes let them do, and which requests are
theirs to see (a key reads, withdraws and downloads only the requests it filed).

A call reads its key once (one query); its last use is written at most once a minute per key,
after the answer (rights/ledger/apikeys.py says why)."""

import functools

from flask import after_this_request, g, request

from rights.errors import NotFound
from rights.ledger import apikeys
from rights.lifecycle import requests
from web.api import errors
from web.api.blueprint import bp
from web.validation import clean_text


def require(scope: str):
    """Bearer key with ``scope``: 401 without a valid key, 403 without the scope. The
    operation's document says so: the apiKey security scheme, and both answers."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            key = header[7:].strip() if header[:7].lower() == "bearer " else ""
            api_key = apikeys.authenticate(key) if key else None
            if api_key is None:
                resp = errors.error_response(401, "unauthorized", "A valid API key is required.")
                resp[0].headers["WWW-Authenticate"] = 'Bearer realm="lethe"'
                return resp
            record_use = apikeys.use_to_record(api_key)
            if record_use is not None:
                _after_the_answer(record_use)
            if not apikeys.has_scope(api_key, scope):
                return errors.error_response(403, "forbidden", f"This key lacks scope '{scope}'.")
            g.api_key = api_key
            return view(*args, **kwargs)

        return bp.doc(security=[{"apiKey": []}])(bp.declares(401, 403)(inner))

    return wrap


def _after_the_answer(work) -> None:
    """Run ``work`` once the answer has been sent and the request's transaction is over (the
    server closes the response: werkzeug's ``call_on_close``), so that it neither delays the
    answer nor waits on a lock the request itself holds."""

    @after_this_request
    def schedule(response):
        response.call_on_close(work)
        return response


def actor() -> str:
    """The asking key, as the audit trail and the request history name it."""
    return f"apikey:{g.api_key.name}"


def reads_all() -> bool:
    return apikeys.has_scope(g.api_key, "requests:read:all")


def filed_by_this_key(req) -> bool:
    return req.api_key_id is not None and req.api_key_id == g.api_key.id


def request_of_this_key(request_id: str, *, metadata: bool = False):
    """A request this key filed (or, with ``metadata`` and scope ``requests:read:all``, any
    request). Every other id — another service's request, a request made on the web form,
    which is the subject's alone, or no request at all — is the same 404."""
    if not clean_text(request_id):
        raise NotFound("No such request.")  # a NUL in the path cannot be an id
    req = requests.get(request_id)
    if not filed_by_this_key(req) and not (metadata and reads_all()):
        raise NotFound("No such request.")
    return req
