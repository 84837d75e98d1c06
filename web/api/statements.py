"""Holdings statements: a former member, who can no longer sign in, sends the record key they
were given at erasure and gets a freshly signed statement of what is still held."""

from flask import current_app

from rights.erasure import statements
from rights.errors import NotFound
from web.api import schemas
from web.api.blueprint import bp
from web.api.responses import StatementOut
from web.extensions import limiter


@bp.post("/statements", tags=["statements"])
@limiter.limit(lambda: current_app.config["RATELIMIT_STATEMENTS"])
@bp.declares(404, 429)
@bp.response(200, StatementOut, description="The statement")
@bp.arguments(schemas.StatementIn)
def holdings_statement(data):
    """Public, rate-limited: a record key -> a signed holdings statement.

    The key goes in the body, never a URL. The statement is a JWS (typ lethe-statement+jws).
    Unknown and malformed keys get one and the same 404.
    """
    found = statements.for_record_key(data["record_key"])
    if found is None:
        raise NotFound("No record matches this key.")
    token, claims = found
    answer = {"statement": token, **{k: claims[k] for k in ("holds_nothing", "held", "as_of")}}
    return answer, 200, {"Cache-Control": "no-store"}
