"""The Data Rights Protocol's endpoints (DRP 1.0; rights/agents/): discovery, agent pairing,
and data rights requests — filed, read and revoked. Agents send signed ``text/plain`` bodies
(base64 of signature || JSON) and get JSON.

Pairing refusals are a ``403`` with no body, as the protocol says. Elsewhere a refusal is the
protocol's error object ``{"code", "message", "fatal"}``: 403 for who the agent is (no or an
unknown token, a signature that does not verify, another agent's message or request, another
business), 400 for what it sent (expired, replayed, malformed, an action or version not
supported) — ``fatal`` when sending it again cannot succeed. Each refusal is audited (what was
asked and why, never the message) and files nothing. No session, no CSRF (agents sign what
they send).
"""

from flask import Blueprint, Response, current_app, jsonify, request

from rights.agents import drp_requests, messages, registry
from rights.errors import InvalidTransition
from storage.db import db
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
            # Status callbacks are signed with this key (Standard Webhooks, "v1a").
            "callback_verify_key": drp_requests.callback_verify_key(),
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
    # "agent_id" too: the reference agent's conformance check reads that spelling.
    return jsonify({"agent-id": agent_id, "agent_id": agent_id, "token": token})


@bp.get("/v1/agent/<agent_id>")
@limiter.limit(_limit)
def agent_information(agent_id: str):
    """Agent information (DRP 1.0 §2.06): ``{}`` to the agent whose token it is, else 403."""
    if registry.by_token(request.headers.get("Authorization"), agent_id) is None:
        return Response(status=403)
    return jsonify({})


# Why a message was refused → the answer: who the agent is (403) or what it sent (400).
WHO = {"unknown_agent", "bad_signature", "not_base64", "wrong_agent", "wrong_business"}
SAID = {
    "unknown_agent": "Unknown agent or token.",
    "bad_signature": "The signature does not verify with this agent's key.",
    "not_base64": "The body is not a base64 signed message.",
    "wrong_agent": "The message was signed for another agent.",
    "wrong_business": "The message is for another business.",
    "expired": "The message has expired.",
    "not_yet_valid": "The message is dated in the future.",
    "too_long_lived": "The message lives longer than a day.",
    "replayed": "This message was received already.",
    "malformed": "The message's claims are malformed.",
    "too_large": "The message is too large.",
}


def _error(status: int, message: str, *, fatal: bool = True):
    response = jsonify({"code": str(status), "message": message, "fatal": fatal})
    response.status_code = status
    return response


def _refuse(agent_id: str | None, what: str, reason: str):
    registry.refused(agent_id, what, reason)
    keep_changes()  # the refusal's audit entry stays; nothing else was written
    return _error(403 if reason in WHO else 400, SAID.get(reason, "Refused."))


def _agent():
    return registry.by_token(request.headers.get("Authorization"))


@bp.post("/v1/data-rights-request", strict_slashes=False)
@limiter.limit(_limit)
def file_request():
    """A data rights request (DRP 1.0 §2.01): the status object of what it became."""
    agent = _agent()
    if agent is None:
        return _refuse(None, "request", "unknown_agent")
    try:
        message = registry.take(agent, request.get_data(cache=False))
    except messages.Refused as exc:
        return _refuse(agent.id, "request", exc.reason)
    try:
        drp = drp_requests.submit(agent, message.claims)
    except drp_requests.Unsupported as exc:
        db.session.rollback()
        registry.refused(agent.id, "request", "unsupported")
        keep_changes()
        return _error(400, exc.message)
    return jsonify(drp_requests.status_of(drp))


def _own(request_id: str):
    agent = _agent()
    if agent is None:
        return None, _refuse(None, "status", "unknown_agent")
    drp = drp_requests.get(request_id)
    if drp is None:
        registry.refused(agent.id, "status", "unknown_request")
        keep_changes()
        return None, _error(404, "No such request.", fatal=True)
    if drp.agent_id != agent.id:
        return None, _refuse(agent.id, "status", "wrong_agent")
    return (agent, drp), None


@bp.get("/v1/data-rights-request/<request_id>")
@limiter.limit(_limit)
def request_status(request_id: str):
    """The status of a request this agent filed (DRP 1.0 §2.02)."""
    found, refusal = _own(request_id)
    if refusal is not None:
        return refusal
    return jsonify(drp_requests.status_of(found[1]))


@bp.delete("/v1/data-rights-request/<request_id>")
@limiter.limit(_limit)
def revoke_request(request_id: str):
    """Revoke a request this agent filed, with a signed ``{"reason"}`` (DRP 1.0 §2.04)."""
    found, refusal = _own(request_id)
    if refusal is not None:
        return refusal
    agent, drp = found
    try:
        registry.take_revocation(agent, request.get_data(cache=False), drp.id)
    except messages.Refused as exc:
        return _refuse(agent.id, "revocation", exc.reason)
    try:
        drp_requests.revoke(drp, agent)
    except InvalidTransition as exc:
        db.session.rollback()
        registry.refused(agent.id, "revocation", "not_revocable")
        keep_changes()
        return _error(400, exc.message, fatal=False)
    return jsonify(drp_requests.status_of(drp))


def error_answer(exc):
    """An HTTP error on the protocol's paths (a rate limit, a body too large, a method not
    allowed, a server error) in the protocol's error object, not an HTML page."""
    code = getattr(exc, "code", None) or 500
    message = (
        "Too many requests; slow down."
        if code == 429
        else (
            "Something went wrong on our side." if code >= 500 else getattr(exc, "description", "")
        )
    )
    response = _error(code, message or "Refused.", fatal=code not in (429, 500, 503))
    if code == 429 and getattr(exc, "retry_after", None):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def is_protocol_path(path: str) -> bool:
    return path.startswith("/v1/") or path == "/.well-known/data-rights.json"
