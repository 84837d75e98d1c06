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

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import find_tables

from storage import vault
from storage.clock import utcnow
from storage.commit_notes import CommitNotes
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
    """Note an audit entry in the current transaction; it is chained and written when the
    transaction commits (:func:`_chain_at_commit`), or forgotten with it when it rolls back.

    Chaining serialises writers (two transactions must never chain to the same predecessor):
    done at commit, in one place, a transaction holds the chain's lock only while its entries
    are written and committed — not from its first entry to its end — and reads the chain's
    tail once, whatever the number of its entries.
    """
    entry = AuditEvent(
        at=utcnow(),
        actor=actor,
        action=action,
        subject_ref=subject_ref,
        target=target,
        details=details or {},
    )
    _NOTES.note(db.session(), entry)
    return entry


# Noted entries follow the transaction: a rollback (or a rolled-back savepoint) forgets its
# own, a closed session all of them.
_NOTES = CommitNotes("lethe.audit_pending")


def pending() -> list[AuditEvent]:
    """Entries noted in this transaction and not yet written (they are at its commit)."""
    return _NOTES.pending(db.session())


def _chain(session, entries: list[AuditEvent]) -> None:
    """Append ``entries`` to the chain, in order, under the chain's lock (held to commit)."""
    serialise(session, CHAIN_LOCK)
    last = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last is None:  # empty: new, or retention pruned it all: chain to the anchor if any
        last = session.execute(
            select(AuditCheckpoint.last_hash)
            .where(AuditCheckpoint.anchor.is_(True))
            .order_by(AuditCheckpoint.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    last = last or GENESIS
    now = utcnow()
    for entry in entries:
        # When it was written: in id order, times never go back (a transaction that noted an
        # entry early and committed late would otherwise put an older time after newer ones).
        entry.at = now
        entry.prev_hash = last
        entry.hash = last = digest(last, entry)
        session.add(entry)
        session.flush()  # one at a time: ids follow the chain's order on every database


@event.listens_for(Session, "before_commit")
def _chain_at_commit(session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: its entries wait for the outer commit
    entries = _NOTES.take(session)
    if entries:
        # The transaction's own changes first, so that the chain's lock is the last it takes
        # (no row lock is waited for while holding it).
        session.flush()
        _chain(session, entries)


@event.listens_for(Session, "do_orm_execute")
def _chain_before_reading(state) -> None:
    """A statement that reads or changes the trail in the transaction that noted entries
    (a checkpoint, a prune, a check) sees them: they are chained first. (SQL written as text
    is not parsed: Lethe reads the trail through SQLAlchemy's expressions only.)"""
    session = state.session
    if _NOTES.pending(session) and _touches_trail(state.statement):
        _chain(session, _NOTES.take(session))


def _touches_trail(statement) -> bool:
    """Whether ``statement`` reads or changes the trail, however it names it (ORM or Core,
    aliased, in a subquery, UPDATE or DELETE)."""
    name = AuditEvent.__tablename__
    return any(
        getattr(t, "name", None) == name
        for t in find_tables(statement, include_aliases=True, include_crud=True)
    )


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
