"""The audit trail: every state change is an entry, chained by hash.

Entries name the actor, the action, a pseudonymous subject reference and a target id; details
must never carry personal data in clear. Each entry's hash covers the previous entry's hash, so
editing, inserting, deleting or reordering entries breaks the chain; the hash is keyed, so a
broken chain cannot be re-computed without the service key. Truncation (cutting the tail) is
caught by signed checkpoints (:mod:`rights.ledger.audit_checkpoints`).
"""

import hashlib
import hmac
import json

from sqlalchemy import select

from storage import vault
from storage.clock import utcnow
from storage.db import db, serialise
from storage.models import AuditCheckpoint, AuditEvent

GENESIS = "0" * 64
# Any constant: the advisory-lock key that serialises appends to the chain.
CHAIN_LOCK = 0x4C455448  # "LETH"


def digest(prev_hash: str, entry: AuditEvent) -> str:
    body = json.dumps(
        {
            "at": entry.at.isoformat(),
            "actor": entry.actor,
            "action": entry.action,
            "subject_ref": entry.subject_ref,
            "target": entry.target,
            "details": entry.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    # Keyed (HMAC): without the service key nobody can re-chain edited or forged entries.
    return hmac.new(_chain_key(), f"{prev_hash}|{body}".encode(), hashlib.sha256).hexdigest()


def _chain_key() -> bytes:
    return vault.keyed_fingerprint("audit-chain", "v1").encode()


def record(
    actor: str,
    action: str,
    *,
    subject_ref: str | None = None,
    target: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Append an audit entry (flushes, does not commit).

    Appends are serialised so that two transactions never chain to the same predecessor: on
    PostgreSQL with a transaction-scoped advisory lock (released at commit or rollback), on
    SQLite by taking the write lock before the tail is read (``storage.db.serialise``).
    """
    serialise(db.session, CHAIN_LOCK)
    last = db.session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last is None:  # empty: new, or retention pruned it all: chain to the anchor if any
        last = db.session.execute(
            select(AuditCheckpoint.last_hash)
            .where(AuditCheckpoint.anchor.is_(True))
            .order_by(AuditCheckpoint.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    entry = AuditEvent(
        at=utcnow(),
        actor=actor,
        action=action,
        subject_ref=subject_ref,
        target=target,
        details=details or {},
        prev_hash=last or GENESIS,
    )
    entry.hash = digest(entry.prev_hash, entry)
    db.session.add(entry)
    db.session.flush()
    return entry


def verify_chain(anchor_id: int | None = None, anchor_hash: str | None = None) -> list[int]:
    """Ids of entries whose link or hash does not hold (empty when the chain is intact).

    After retention pruned the chain up to a signed checkpoint (``anchor_id``, ``anchor_hash``)
    the chain starts after it: the first entry must link to the anchor — or, while a prune is
    under way, lie inside the pruned range."""
    broken = []
    prev = GENESIS
    rows = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    ).scalars()
    for i, entry in enumerate(rows):
        if i == 0 and anchor_id is not None:
            prev = anchor_hash if entry.id > anchor_id else entry.prev_hash
        if entry.prev_hash != prev or entry.hash != digest(prev, entry):
            broken.append(entry.id)
        prev = entry.hash
    return broken


def entries(
    *,
    page: int = 1,
    per_page: int = 50,
    subject_ref: str | None = None,
    actor: str | None = None,
    action: str | None = None,
):
    """The trail, newest first, one page; filtered by subject reference, actor or action."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if subject_ref:
        query = query.where(AuditEvent.subject_ref == subject_ref)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)
