"""Authorized agents (the Data Rights Protocol, rights/agents/): the agents an admin registered
with their Ed25519 verify keys, the bearer token each was given at pairing (a hash only), and
the signed messages already taken (replays are refused until the message would have expired
anyway). No person in any of them."""

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db
from storage.models.platform import new_uuid


class Agent(db.Model):
    """An authorized agent, as its service directory entry gives it: the id it signs as, its
    name (shown to the person a request is about: "filed for you by …"), its verify key."""

    __tablename__ = "drp_agents"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the DRP agent-id
    name: Mapped[str] = mapped_column(String(120))
    verify_key: Mapped[bytes] = mapped_column(LargeBinary(32))  # raw Ed25519 public key
    # SHA-256 (hex) of the bearer token pairing gave it, compared in constant time; None
    # until it pairs. Pairing again replaces it: only the latest token works.
    token_hash: Mapped[str | None] = mapped_column(String(64))
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class AgentMessageSeen(db.Model):
    """A signed message already taken (SHA-256 of its signed bytes), kept until it expires:
    the same message sent again is a replay."""

    __tablename__ = "drp_messages_seen"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DrpRequest(db.Model):
    """A data rights request an agent filed (DRP 1.0 §2.01): its protocol id (``id``, the
    ``request_id`` the agent polls), the action and regime asked, the Lethe request it became
    (None when it was denied as it came: a regime not covered, no one to match), and what the
    agent asked to be told through (``status_callback``, the agent's URL)."""

    __tablename__ = "drp_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    agent_id: Mapped[str] = mapped_column(ForeignKey("drp_agents.id"), index=True)
    agent_request_id: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(24))  # as normalised: access, deletion, ...
    regime: Mapped[str] = mapped_column(String(24))  # ccpa | voluntary | what was asked
    rights_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("rights_requests.id"), unique=True
    )
    status_callback: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A status of the protocol's own, when no Lethe request carries it: "denied" (with
    # ``reason``) as it came, "fulfilled" for an opt-in recorded at once, "revoked".
    status: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(30))
    # The status last pushed to the callback (JSON text): a change sends it again.
    last_sent: Mapped[str | None] = mapped_column(Text)
