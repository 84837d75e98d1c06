"""The audit trail and the keys that sign: hash-chained audit events in the main database;
signed checkpoints of that chain and the signing keys in the key store (bind ``keystore``), so
that whoever can edit the main database cannot rewrite them too.
"""

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


class AuditEvent(db.Model):
    """Who did what, when, to whose (pseudonymous) records. Each row chains the previous
    row's hash, so an edited, inserted, deleted or reordered row is detectable."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject_ref: Mapped[str | None] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(db.Model):
    """A signed statement that the audit chain held ``entries`` entries ending at ``last_id``
    with ``last_hash``. Kept in the key store: cutting the chain's tail in the main database
    (truncation leaves a valid chain) no longer matches the last checkpoint."""

    __bind_key__ = "keystore"
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    jws: Mapped[str] = mapped_column(Text)
    # Set when retention pruned the chain up to this checkpoint: the chain now starts after it.
    anchor: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SigningKey(db.Model):
    __bind_key__ = "keystore"
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="EdDSA")
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
