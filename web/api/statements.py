"""Holdings statements: a former member, who can no longer sign in, sends the record key they
were given at erasure and gets a freshly signed statement of what is still held."""

from flask import current_app

from rights.erasure import record_keys, statements
from rights.errors import NotFound
from web.api import errors, schemas
from web.api.blueprint import bp
from web.api.responses import StatementOut
from web.extensions import RECORD_KEY_LOOKUPS, limit_failures


def _statement_limit():
    return current_app.config["RATELIMIT_STATEMENTS"]


def _too_many_tries(when: str):
    message = record_keys.TOO_MANY_TRIES.format(when=when)
    return errors.error_response(429, "too_many_requests", message)


@bp.post("/statements", tags=["statements"])
@limit_failures(_statement_limit, scope=RECORD_KEY_LOOKUPS, answer=_too_many_tries)
@bp.declares(404, 429)
@bp.response(200, StatementOut, description="The statement")
@bp.arguments(schemas.StatementIn)
def holdings_statement(data):
    """Public, rate-limited: a record key -> a signed holdings statement.

    The key goes in the body, never a URL. The statement is a JWS (typ lethe-statement+jws).
    A key with a typo in it (its check symbol does not match) is refused with 422 before
    anything is looked up; unknown and malformed keys get one and the same 404. Only failed
    look-ups count towards the rate limit, one budget per client shared with the web form;
    past it, 429 says when to try again.
    """
    found = statements.for_record_key(data["record_key"])
    if found is None:
        raise NotFound("No record matches this key.")
    token, claims = found
    answer = {"statement": token, **{k: claims[k] for k in ("holds_nothing", "held", "as_of")}}
    return answer, 200, {"Cache-Control": "no-store"}
