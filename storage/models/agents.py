"""Authorized agents (the Data Rights Protocol, rights/agents/): the agents an admin registered
with their Ed25519 verify keys, the bearer token each was given at pairing (a hash only), and
the signed messages already taken (replays are refused until the message would have expired
anyway). No person in any of them."""

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


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
