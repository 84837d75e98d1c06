"""The transparency log (:mod:`rights.ledger.transparency`), in the key store (bind
``keystore``): the documents waiting to be appended, the leaves, the hashes of the tree's
complete subtrees, and the signed checkpoints. Hashes only — never a document, never personal
data — and, once written, never rewritten: leaves, nodes and checkpoints are only inserted.

Kept in the key store with the signing keys and the receipts' copies: restoring an old backup
of the main database must not shrink the log (a witness would see it rewritten)."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db

# 64-bit on PostgreSQL; SQLite's INTEGER is already 64-bit, and an INTEGER primary key is the
# table's rowid (no second index).
LogIndex = BigInteger().with_variant(Integer, "sqlite")


class LogPending(db.Model):
    """A signed document's leaf hash, queued in the transaction that issued the document, for
    the sequencer to append (in id order). Deleted when appended."""

    __bind_key__ = "keystore"
    __tablename__ = "tlog_pending"

    id: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(20))  # receipt, statement, audit-checkpoint
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogLeaf(db.Model):
    """Leaf ``index`` of the log: the Merkle leaf hash of a signed document, SHA-256(0x00 ||
    SHA-256(JWS)) (RFC 9162 section 2.1.1), unique: what a proof is asked for by. It is also
    node (0, index)."""

    __bind_key__ = "keystore"
    __tablename__ = "tlog_leaves"

    index: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    appended_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LogNode(db.Model):
    """The hash of a complete subtree: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __bind_key__ = "keystore"
    __tablename__ = "tlog_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(db.Model):
    """A signed tree head published after a batch of appends: the C2SP tlog-checkpoint note
    (origin, size, root hash, Ed25519 note signature)."""

    __bind_key__ = "keystore"
    __tablename__ = "tlog_checkpoints"

    size: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
