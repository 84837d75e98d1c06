"""The authorized agents an admin registered (``flask agents add``, the dashboard's agents
page), as a DRP service directory entry gives them, and their pairing (DRP 1.0 §2.05): a
signed message from the agent gets a bearer token, stored only as a SHA-256 and compared in
constant time; pairing again replaces it. A signed message is taken once: the same bytes sent
again before they expire are a replay (:func:`take`)."""

import hashlib
import hmac
import re
import secrets

from flask import current_app
from sqlalchemy import delete, select

from rights.agents import messages
from rights.errors import Conflict, Invalid, NotFound
from rights.ledger import audit
from storage.clock import utcnow
from storage.db import db
from storage.models import Agent, AgentMessageSeen

AGENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def business_id() -> str:
    """This business's id in the DRP service directory (``DRP_BUSINESS_ID``)."""
    return current_app.config["DRP_BUSINESS_ID"]


def add(agent_id: str, name: str, verify_key: str, *, actor: str) -> Agent:
    """Register an agent (flushes; audited)."""
    fields = {}
    if not AGENT_ID.fullmatch(agent_id or ""):
        fields["agent_id"] = ["letters, digits and _ . : - only, at most 100"]
    if not (name or "").strip() or len(name) > 120:
        fields["name"] = ["the agent's name, as people know it (at most 120 characters)"]
    try:
        key = messages.parse_verify_key(verify_key)
    except ValueError as exc:
        fields["verify_key"] = [str(exc)]
    if fields:
        raise Invalid("The agent cannot be registered as given.", fields)
    agent = db.session.get(Agent, agent_id)
    if agent is not None and agent.active:
        raise Conflict("An agent with that id is registered already.")
    if agent is not None:
        # Removed before, registered again (its key may be new): it pairs afresh.
        agent.name, agent.verify_key, agent.active = name.strip(), key, True
        agent.token_hash, agent.paired_at, agent.created_by = None, None, actor
    else:
        agent = Agent(id=agent_id, name=name.strip(), verify_key=key, created_by=actor)
        db.session.add(agent)
    db.session.flush()
    audit.record(actor, "agent.registered", target=f"agent:{agent_id}")
    return agent


def remove(agent_id: str, *, actor: str) -> None:
    """Stop trusting an agent: its token stops working, its key is no longer accepted
    (flushes; audited). Its requests stay, as every request does."""
    agent = db.session.get(Agent, agent_id)
    if agent is None or not agent.active:
        raise NotFound("No such agent.")
    agent.active = False
    agent.token_hash = None
    audit.record(actor, "agent.removed", target=f"agent:{agent_id}")


def listed() -> list[Agent]:
    return list(db.session.execute(select(Agent).order_by(Agent.created_at)).scalars())


def active(agent_id: str) -> Agent | None:
    agent = db.session.get(Agent, agent_id) if AGENT_ID.fullmatch(agent_id or "") else None
    return agent if agent is not None and agent.active else None


def take(agent: Agent, body: bytes) -> messages.Message:
    """A signed message from ``agent``, checked (messages.open_message) and taken: remembered
    until it expires, so that it is refused if it comes again (flushes)."""
    now = utcnow()
    message = messages.open_message(
        body, agent.verify_key, agent_id=agent.id, business_id=business_id(), now=now
    )
    db.session.execute(delete(AgentMessageSeen).where(AgentMessageSeen.expires_at < now))
    if db.session.get(AgentMessageSeen, message.digest) is not None:
        raise messages.Refused("replayed")
    db.session.add(AgentMessageSeen(digest=message.digest, expires_at=message.expires_at))
    db.session.flush()
    return message


def take_revocation(agent: Agent, body: bytes, request_id: str) -> dict:
    """A revocation of ``request_id`` signed by ``agent`` (DRP 1.0 §2.04: a ``reason`` only;
    the claims of a full message checked too when it carries them), taken once for that
    request (flushes). The body names no request and Ed25519 signatures are deterministic:
    the same reason may revoke two requests, and the memory is of (body, request)."""
    claims, signed_digest = messages.open_signed(body, agent.verify_key)
    digest = hashlib.sha256(f"{signed_digest}:{request_id}".encode()).hexdigest()
    if "agent-id" in claims and claims["agent-id"] != agent.id:
        raise messages.Refused("wrong_agent")
    if "business-id" in claims and claims["business-id"] != business_id():
        raise messages.Refused("wrong_business")
    now = utcnow()
    expires = now + messages.LONGEST
    if "expires-at" in claims:
        try:
            expires = messages.timestamp(claims["expires-at"])
        except (ValueError, OverflowError):
            raise messages.Refused("malformed") from None
        if now >= expires:
            raise messages.Refused("expired")
        expires = min(expires, now + messages.LONGEST)
    if db.session.get(AgentMessageSeen, digest) is not None:
        raise messages.Refused("replayed")
    db.session.add(AgentMessageSeen(digest=digest, expires_at=expires))
    db.session.flush()
    return claims


def pair(agent_id: str, body: bytes) -> str:
    """Pair an agent from its signed message: a new bearer token (returned once; only its
    hash is kept). Raises messages.Refused."""
    agent = active(agent_id)
    if agent is None:
        raise messages.Refused("unknown_agent")
    take(agent, body)
    token = secrets.token_urlsafe(32)  # 256 bits
    agent.token_hash = _hash(token)
    agent.paired_at = utcnow()
    audit.record(f"agent:{agent.id}", "agent.paired", target=f"agent:{agent.id}")
    return token


def by_token(authorization: str | None, agent_id: str | None = None) -> Agent | None:
    """The agent a ``Bearer`` token belongs to (and, given ``agent_id``, only that one), or
    None. The token's hash is compared in constant time with the agent's."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    token = authorization[len("Bearer ") :].strip()
    if not token or len(token) > 200:
        return None
    digest = _hash(token)
    if agent_id is not None:
        candidates = [active(agent_id)]
    else:
        candidates = list(
            db.session.execute(
                select(Agent).where(Agent.token_hash == digest, Agent.active.is_(True))
            ).scalars()
        )
    for agent in candidates:
        if agent is not None and agent.token_hash and hmac.compare_digest(agent.token_hash, digest):
            return agent
    return None


def refused(agent_id: str | None, what: str, reason: str) -> None:
    """Audit a refused message (no content: the agent id given, what it asked, why)."""
    target = f"agent:{agent_id}" if agent_id and AGENT_ID.fullmatch(agent_id) else None
    audit.record(
        "drp", "agent.message_refused", target=target, details={"what": what, "reason": reason}
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
