"""The transparency log: every deletion receipt, holdings statement and audit checkpoint Lethe
signs, appended to one public, append-only Merkle tree (RFC 9162 section 2.1), with signed
checkpoints (C2SP tlog-checkpoint) and proofs anyone can check.

A signature proves that Lethe said something; the log proves that it said the same thing to
everyone and never quietly withdrew or rewrote it: a witness keeps the checkpoints it saw and
asks for a consistency proof that today's tree extends them (:func:`consistency`), and whoever
holds a receipt asks for the proof that it is in the tree (:func:`inclusion`).

- **A leaf's entry** is the SHA-256 of the signed document's compact JWS (its ASCII bytes) —
  a hash of a signed document, never the document, never personal data — so its Merkle leaf
  hash is SHA-256(0x00 || SHA-256(JWS)) (:mod:`rights.ledger.merkle`), and proofs are asked
  for by that leaf hash, as RFC 9162's get-proof-by-hash does.
- **Queued, then sequenced.** The transaction that signs a document queues its hash
  (:func:`queue`: one row written as the transaction commits, after its other writes, and a
  NOTIFY for the ``jobs`` workers on PostgreSQL). The
  worker's sequencer (:func:`sequence`) appends what is queued in one transaction of the key
  store, serialised by a lock (PostgreSQL's transaction-scoped advisory lock, SQLite's write
  lock): it reads the tree's right edge (at most log2 n stored hashes), writes the new leaves
  and the complete subtrees they finish (two hashes per leaf, amortised), signs a checkpoint
  of the new size and deletes the queue rows. Killed anywhere, the transaction rolls back: no
  gap, no duplicate index (the leaf index is the primary key, the entry hash is unique).
- **Checkpoints** are C2SP signed notes: origin line, tree size, base64 root hash, and an
  Ed25519 note signature by Lethe's current signing key under the origin's name (the key that
  signs receipts: one key store, one rotation, keys never deleted — a JWS's signing input
  never contains a newline and a note always does, so neither can pass for the other). The
  verifier keys of every signing key ever used are published (:func:`verifier_keys`); for
  30 days after a rotation the retired key cosigns, so witnesses roll over to the new one.
- Everything is in the key store (:mod:`storage.models.transparency`), inserted and never
  updated: restoring an old backup of the main database does not shrink the log.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, delete, event, func, insert, or_, select
from sqlalchemy.orm import Session

from rights.ledger import merkle, signed_note, signing
from storage import wakeup
from storage.clock import utcnow
from storage.commit_notes import CommitNotes
from storage.db import db, lock_key, serialise
from storage.models import LogCheckpoint, LogLeaf, LogNode, LogPending, SigningKey
from storage.steps import Steps

log = logging.getLogger(__name__)
KINDS = ("receipt", "statement", "audit-checkpoint")
BATCH = 5000  # leaves appended (and one checkpoint signed) per sequencer transaction
LOCK = lock_key("lethe", "transparency-log")
ROLLOVER = timedelta(days=30)  # how long a retired key still cosigns checkpoints
_TERMS_PER_QUERY = 64  # levels per statement: a tree of 2**64 leaves has 64


class LogError(ValueError):
    """A proof that cannot be given (an unknown leaf, a size the log has not published)."""


@dataclass(frozen=True)
class Placement:
    """Where a document is in the log, as the latest checkpoint shows it: leaf ``index`` (from
    0) of ``size``, and whether its inclusion proof checked out against that checkpoint's root
    (``checked``). ``index`` is None while the document waits for the sequencer."""

    index: int | None
    size: int
    checked: bool

    @property
    def position(self) -> int | None:
        """The leaf's position counted from 1, as people count."""
        return None if self.index is None else self.index + 1


def entry_hash(jws: str) -> bytes:
    """The log's entry for a signed document: SHA-256 of its compact serialization."""
    return hashlib.sha256(jws.encode("ascii")).digest()


def leaf_hash_of(jws: str) -> bytes:
    """The document's Merkle leaf hash: SHA-256(0x00 || SHA-256(JWS))."""
    return merkle.leaf_hash(entry_hash(jws))


def origin() -> str:
    """The log's name: its checkpoints' origin line and the note signature's key name. Fixed
    by the log's first checkpoint: a later change of configuration (PUBLIC_URL moved, a
    worker started with other settings) does not rename the log that witnesses follow.
    Before the first checkpoint, ``TRANSPARENCY_ORIGIN`` (config.py makes it from PUBLIC_URL
    when unset)."""
    first = db.session.execute(
        select(LogCheckpoint.note).order_by(LogCheckpoint.size).limit(1)
    ).scalar_one_or_none()
    if first is not None:
        return first.split("\n", 1)[0]
    return current_app.config["TRANSPARENCY_ORIGIN"]


# --- writing -----------------------------------------------------------------------------


def queue(jws: str, kind: str) -> None:
    """Queue a signed document for the log, in the transaction that issued it: noted now,
    written when it commits (:func:`_write_queued`). The sequencer appends it within
    moments."""
    if kind not in KINDS:
        raise ValueError(f"unknown log entry kind {kind!r}")
    _QUEUED.note(db.session(), (leaf_hash_of(jws), kind))
    wakeup.notify("jobs")


# Written at commit, after everything else the transaction writes (the audit chain's entries
# included: that listener is registered first, as this module imports the ledger's audit
# through signing): so a transaction takes the main database's write lock before the key
# store's, as every other does. On SQLite, a statement that wrote its queue row (key store)
# first and its audit entry (main) at commit waited on an erasure holding them the other way.
_QUEUED = CommitNotes("lethe.transparency_queued")


@event.listens_for(Session, "before_commit")
def _write_queued(session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: its documents wait for the outer commit
    queued = _QUEUED.take(session)
    if queued:
        now = utcnow()
        session.add_all(
            LogPending(leaf_hash=leaf, kind=kind, queued_at=now) for leaf, kind in queued
        )
        session.flush()


def queue_once(jws: str, kind: str) -> None:
    """:func:`queue`, unless the document is already queued or in the log (a repair)."""
    leaf = leaf_hash_of(jws)
    if leaf_index(leaf) is None and not _queued(leaf):
        queue(jws, kind)


def _queued(leaf: bytes) -> bool:
    found = db.session.execute(select(LogPending.id).where(LogPending.leaf_hash == leaf).limit(1))
    return found.first() is not None


def has_pending() -> bool:
    """Whether anything waits to be appended (a read; no lock)."""
    return db.session.execute(select(LogPending.id).limit(1)).first() is not None


def sequence(limit: int = BATCH) -> int:
    """Append up to ``limit`` queued entries, in the order they were queued, and sign a
    checkpoint of the new size (flushes; the caller commits, as one transaction). Returns how
    many leaves were appended. Takes the log's lock first: one sequencer at a time."""
    session = db.session
    serialise(session, LOCK, mapper=LogLeaf)
    pending = session.execute(
        select(LogPending.id, LogPending.leaf_hash, LogPending.kind)
        .order_by(LogPending.id)
        .limit(limit)
    ).all()
    if not pending:
        return 0
    size = _stored_size()
    hashes = {row.leaf_hash for row in pending}
    already = set(
        session.execute(select(LogLeaf.leaf_hash).where(LogLeaf.leaf_hash.in_(hashes))).scalars()
    )
    now = utcnow()
    leaves: list[dict] = []
    for row in pending:
        if row.leaf_hash in already:
            continue  # queued twice (a repaired commit): one leaf per document
        already.add(row.leaf_hash)
        leaves.append(
            {
                "index": size + len(leaves),
                "leaf_hash": row.leaf_hash,
                "kind": row.kind,
                "appended_at": now,
            }
        )
    session.execute(delete(LogPending).where(LogPending.id.in_([row.id for row in pending])))
    if not leaves:
        return 0
    edge = _nodes(set(merkle.range_pieces(0, size)) if size else set())
    new = merkle.completed_nodes_batch(
        size, [leaf["leaf_hash"] for leaf in leaves], lambda lv, k: edge[lv, k]
    )
    session.execute(insert(LogLeaf), leaves)
    session.execute(insert(LogNode), [{"level": lv, "idx": k, "hash": h} for lv, k, h in new])
    known = edge | {(lv, k): h for lv, k, h in new}
    new_size = size + len(leaves)
    root = merkle.fold([known[node] for node in merkle.range_pieces(0, new_size)])
    session.add(LogCheckpoint(size=new_size, root=root, note=_sign(new_size, root), signed_at=now))
    session.flush()
    return len(leaves)


def sequence_steps(stop=lambda: False) -> Steps[int]:
    """The worker's part: append everything queued, a batch per committed step (a read when
    nothing is queued: no lock taken)."""
    appended = 0
    while not stop() and has_pending():
        appended += sequence()  # 0 when a whole batch was already in the log: go on
        yield
    return appended


def _stored_size() -> int:
    last = db.session.execute(select(func.max(LogLeaf.index))).scalar_one()
    return 0 if last is None else last + 1


def _sign(size: int, root: bytes) -> str:
    name = origin()
    if name != current_app.config["TRANSPARENCY_ORIGIN"]:
        log.warning(
            "LETHE_TRANSPARENCY_ORIGIN differs from the name the log was started under; "
            "checkpoints keep the log's name"
        )
    body = signed_note.checkpoint_body(name, size, root)
    note = signed_note.sign(body, name, signing.ed25519_private_key(signing.current_key()))
    # Cosigned by the keys retired in the last ROLLOVER: a witness that trusts only the old
    # key still verifies every checkpoint, and learns the new key from them (flask
    # transparency verify does) — a rotation never looks like a forged log.
    since = utcnow() - ROLLOVER
    for row in db.session.execute(
        select(SigningKey).where(SigningKey.retired_at >= since).order_by(SigningKey.kid)
    ).scalars():
        note = signed_note.add_signature(note, name, signing.ed25519_private_key(row))
    return note


# --- reading -----------------------------------------------------------------------------


def _nodes(wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Stored hashes of ``wanted`` complete subtrees, in one statement: ``(level = ? AND idx
    IN (…)) OR …``, one term per level — a primary-key search per term on both databases.
    (A row-value ``(level, idx) IN (…)`` is a scan of the whole table on SQLite: 261 ms for
    23 nodes at a million leaves; a statement per level costs PostgreSQL a round trip each.)"""
    by_level: dict[int, list[int]] = {}
    for level, idx in wanted:
        by_level.setdefault(level, []).append(idx)
    found: dict[merkle.Node, bytes] = {}
    terms = [
        and_(LogNode.level == level, LogNode.idx.in_(indexes))
        for level, indexes in sorted(by_level.items())
    ]
    for start in range(0, len(terms), _TERMS_PER_QUERY):
        rows = db.session.execute(
            select(LogNode.level, LogNode.idx, LogNode.hash).where(
                or_(*terms[start : start + _TERMS_PER_QUERY])
            )
        )
        found.update({(row.level, row.idx): row.hash for row in rows})
    if wanted - found.keys():
        raise LogError("the log's stored hashes are incomplete")
    return found


def latest() -> LogCheckpoint | None:
    """The newest signed checkpoint (None before the first append)."""
    return db.session.execute(
        select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
    ).scalar_one_or_none()


def checkpoint(size: int) -> LogCheckpoint | None:
    """The checkpoint signed at ``size`` leaves, if the log published one."""
    return db.session.get(LogCheckpoint, size)


def _published_size(size: int | None) -> int:
    head = latest()
    if head is None:
        raise LogError("the log is empty")
    if size is None:
        return head.size
    if not 1 <= size <= head.size:
        raise LogError(f"the log has published sizes 1 to {head.size}")
    return size


def leaf_index(leaf: bytes) -> int | None:
    """The index of the leaf whose Merkle leaf hash is ``leaf`` (None: not in the log)."""
    return db.session.execute(
        select(LogLeaf.index).where(LogLeaf.leaf_hash == leaf)
    ).scalar_one_or_none()


def inclusion(leaf: bytes, size: int | None = None) -> dict:
    """The RFC 9162 inclusion proof of the leaf whose Merkle leaf hash is ``leaf`` in the tree
    of ``size`` leaves (default: the latest checkpoint's)."""
    size = _published_size(size)
    index = leaf_index(leaf)
    if index is None or index >= size:
        raise LogError("no such leaf in the tree of that size")
    path = merkle.inclusion_proof(index, size, _nodes)
    return {"leaf_index": index, "tree_size": size, "inclusion_path": path}


def consistency(first: int, second: int | None = None) -> dict:
    """The RFC 9162 consistency proof that the tree of ``second`` leaves (default: the latest
    checkpoint's) extends the tree of ``first``."""
    second = _published_size(second)
    if not 1 <= first <= second:
        raise LogError(f"a consistency proof needs 1 <= from <= to ({second})")
    proof = merkle.consistency_proof(first, second, _nodes)
    return {"first": first, "second": second, "consistency_path": proof}


def placement(jws: str) -> Placement | None:
    """Where a signed document is in the log, its inclusion proof checked against the latest
    checkpoint's root, and that checkpoint's signature against the published keys — what the
    receipt and verification pages say. None when the log has
    no record of it (signed before the log, or not Lethe's)."""
    leaf = leaf_hash_of(jws)
    head = latest()
    index = leaf_index(leaf)
    if index is None or head is None or index >= head.size:
        if index is None and not _queued(leaf):
            return None
        return Placement(index=None, size=head.size if head else 0, checked=False)
    proof = merkle.inclusion_proof(index, head.size, _nodes)
    checked = _signed(head) and merkle.verify_inclusion(leaf, index, head.size, proof, head.root)
    return Placement(index=index, size=head.size, checked=checked)


def _signed(head: LogCheckpoint) -> bool:
    """Whether the checkpoint's note is signed by one of the published keys and says the
    size and root stored beside it (what a witness would read)."""
    try:
        body, _ = signed_note.open_note(head.note, verifier_keys())
        said = signed_note.parse_checkpoint(body)
    except ValueError:  # NoteError included
        return False
    return (said.size, said.root) == (head.size, head.root)


def verifier_keys() -> list[str]:
    """The C2SP verifier key (``<name>+<key id>+<base64 key>``) of every signing key ever
    used, newest first: what a witness needs to check a checkpoint's signature."""
    name = origin()
    rows = db.session.execute(
        select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
    ).scalars()
    return [signed_note.verifier_key(name, signing.raw_public_key(row)) for row in rows]
