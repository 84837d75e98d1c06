"""The Data Rights Protocol's endpoints (DRP 1.0; rights/agents/): discovery and agent
pairing. Agents send signed ``text/plain`` bodies (base64 of signature || JSON) and get JSON.

Pairing refusals are a ``403`` with no body, as the protocol says (an unknown agent, a bad
signature, a message for another business, an expired or replayed one), and each is audited
(what was asked and why, never the message). No session, no CSRF (agents sign what they send).
"""

from flask import Blueprint, Response, current_app, jsonify, request

from rights.agents import messages, registry
from web.extensions import limiter
from web.transaction import keep_changes

bp = Blueprint("drp", __name__)
VERSION = "1.0"
ACTIONS = ["access", "deletion", "sale:opt-out", "sale:opt-in"]


def _limit() -> str:
    return current_app.config.get("RATELIMIT_DRP", "60 per minute")


@bp.get("/.well-known/data-rights.json")
def discovery():
    """Where the protocol lives and what it covers (the discovery document of DRP 0.x, kept
    for agents that still read it; DRP 1.0 agents find it in the service directory)."""
    response = jsonify(
        {
            "version": VERSION,
            "api_base": current_app.config["PUBLIC_URL"].rstrip("/"),
            "actions": ACTIONS,
            "user_relationships": ["member", "former_member"],
            "business_id": registry.business_id(),
        }
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.post("/v1/agent/<agent_id>")
@limiter.limit(_limit)
def pair(agent_id: str):
    """Pairing (DRP 1.0 §2.05): the agent's signed message in, ``{"agent-id", "token"}`` out."""
    try:
        token = registry.pair(agent_id, request.get_data(cache=False))
    except messages.Refused as exc:
        registry.refused(agent_id, "pairing", exc.reason)
        keep_changes()  # the refusal's audit entry stays; nothing else was written
        return Response(status=403)
    return jsonify({"agent-id": agent_id, "token": token})


@bp.get("/v1/agent/<agent_id>")
@limiter.limit(_limit)
def agent_information(agent_id: str):
    """Agent information (DRP 1.0 §2.06): ``{}`` to the agent whose token it is, else 403."""
    if registry.by_token(request.headers.get("Authorization"), agent_id) is None:
        return Response(status=403)
    return jsonify({})
