"""Signed checkpoints of the audit chain, and the one check that runs them all.

A chain of keyed hashes shows edits, insertions, deletions and reorderings, but not a cut
tail: what is left is still a valid chain. So the worker periodically signs "the chain had N
entries, ending at id I with hash H" (a JWS, like receipts) and keeps it in the key store;
:func:`verify` checks the chain and every checkpoint against it.
"""

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from rights.errors import InvalidSignature
from rights.ledger import audit, signing, transparency
from storage.clock import utcnow
from storage.db import db
from storage.models import AuditCheckpoint, AuditEvent
from storage.steps import Steps

log = logging.getLogger(__name__)
CHECKPOINT_TYP = "lethe-audit-checkpoint+jws"
EVERY = 100


@dataclass
class Report:
    entries: int
    checkpoints: int
    broken_ids: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken_ids and not self.problems


def _latest() -> AuditCheckpoint | None:
    return db.session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    ).scalar_one_or_none()


def anchor() -> AuditCheckpoint | None:
    """The checkpoint retention pruned the chain up to, if it was pruned."""
    return db.session.execute(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.anchor.is_(True))
        .order_by(AuditCheckpoint.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _pruned(start: AuditCheckpoint | None) -> int:
    """How many entries retention removed (counts stay "since the chain began")."""
    if start is None:
        return 0
    left = db.session.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.id <= start.last_id)
    ).scalar_one()
    return start.entries - left


def write() -> AuditCheckpoint | None:
    """Sign a checkpoint at the chain's current end (flushes); None if nothing new."""
    last = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    latest = _latest()
    if last is None or (latest is not None and latest.last_id == last.id):
        return None
    # The entries up to the one it names: counted without that bound, a statement of its own
    # on a database where each statement sees the latest commits (PostgreSQL), an entry
    # committed meanwhile by another transaction would be counted too.
    entries = db.session.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.id <= last.id)
    ).scalar_one() + _pruned(anchor())
    claims = {
        "last_id": last.id,
        "last_hash": last.hash,
        "entries": entries,
        "at": utcnow().isoformat(),
    }
    row = AuditCheckpoint(
        last_id=last.id,
        last_hash=last.hash,
        entries=entries,
        jws=signing.sign(claims, CHECKPOINT_TYP),
    )
    db.session.add(row)
    transparency.queue(row.jws, "audit-checkpoint")
    db.session.flush()
    return row


def maybe_write(every: int = EVERY) -> AuditCheckpoint | None:
    """A checkpoint once ``every`` entries have been added since the last one."""
    latest = _latest()
    since = db.session.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.id > (latest.last_id if latest else 0))
    ).scalar_one()
    return write() if since >= every else None


def verify() -> Report:
    """The chain's own links and hashes, then every checkpoint: its signature, and that the
    entry it names is still there, unchanged, with the same number of entries up to it. A
    chain pruned by retention starts after its anchor checkpoint (kept, signed, in the key
    store): what came before is expected to be gone, and counted as such."""
    start = anchor()
    pruned = _pruned(start)
    report = Report(
        entries=db.session.execute(select(func.count(AuditEvent.id))).scalar_one(),
        checkpoints=db.session.execute(select(func.count(AuditCheckpoint.id))).scalar_one(),
        broken_ids=audit.verify_chain(
            start.last_id if start else None, start.last_hash if start else None
        ),
    )
    checkpoints = db.session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id))
    for cp in checkpoints.scalars():
        try:
            claims = signing.verify(cp.jws, CHECKPOINT_TYP)
        except InvalidSignature:
            report.problems.append(f"checkpoint {cp.id}: signature does not verify")
            continue
        if (claims["last_id"], claims["last_hash"], claims["entries"]) != (
            cp.last_id,
            cp.last_hash,
            cp.entries,
        ):
            report.problems.append(f"checkpoint {cp.id}: altered")
            continue
        if start is not None and cp.last_id <= start.last_id:
            continue  # pruned by retention: its entries are meant to be gone
        entry = db.session.get(AuditEvent, cp.last_id)
        if entry is None:
            report.problems.append(
                f"checkpoint {cp.id}: entry {cp.last_id} is gone (the chain was cut)"
            )
        elif entry.hash != cp.last_hash:
            report.problems.append(f"checkpoint {cp.id}: entry {cp.last_id} was changed")
        up_to = db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.id <= cp.last_id)
        ).scalar_one()
        if entry is not None and up_to + pruned != cp.entries:
            report.problems.append(
                f"checkpoint {cp.id}: {cp.entries} entries expected up to {cp.last_id}, "
                f"found {up_to + pruned}"
            )
    return report


def prunable(cutoff) -> AuditCheckpoint | None:
    """The newest checkpoint signed at or before ``cutoff``: the chain can be pruned up to it
    (whole stretches between signed checkpoints, never part of one). Chosen by when the key
    store says it was signed — never by the entries' own dates, which anyone able to write to
    the main database could backdate."""
    return db.session.execute(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.created_at <= cutoff)
        .order_by(AuditCheckpoint.last_id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _stretch_intact(target: AuditCheckpoint) -> bool:
    """Whether the entries up to ``target`` still chain, hash and end as it signed."""
    start = anchor()
    prev = None
    rows = db.session.execute(
        select(AuditEvent)
        .where(AuditEvent.id <= target.last_id)
        .order_by(AuditEvent.id)
        .execution_options(yield_per=1000)
    ).scalars()
    last = None
    for entry in rows:
        if prev is None:
            if start is not None and entry.id > start.last_id:
                prev = start.last_hash
            elif start is None:
                prev = audit.GENESIS
            else:
                prev = entry.prev_hash  # inside a prune already under way
        if entry.prev_hash != prev or entry.hash != audit.digest(prev, entry):
            return False
        prev, last = entry.hash, entry
    return last is None or (last.id == target.last_id and last.hash == target.last_hash)


def preview_prune(cutoff) -> tuple[int, object]:
    """How many entries a prune at ``cutoff`` would remove, and the oldest's date."""
    target = prunable(cutoff)
    if target is None:
        return 0, None
    count, oldest = db.session.execute(
        select(func.count(AuditEvent.id), func.min(AuditEvent.at)).where(
            AuditEvent.id <= target.last_id
        )
    ).one()
    return count, oldest


def prune_steps(cutoff, *, batch: int = 5000) -> Steps[int]:
    """Remove the entries written at or before ``cutoff``, up to the newest checkpoint among
    them, which becomes the chain's signed anchor (steps; resumable: the anchor is committed
    first, then each batch of deletions, and a rerun finishes the deletion). Older checkpoints
    go too. Returns how many entries went."""
    target, start = prunable(cutoff), anchor()
    if target is None or (start is not None and target.last_id <= start.last_id):
        return (yield from _finish(start)) if start is not None else 0
    if not _stretch_intact(target):
        # Tampered with: keep the evidence, say so (flask audit verify shows where).
        log.error(
            "audit trail: not pruning up to checkpoint %s: the chain does not verify", target.id
        )
        return 0
    target.anchor = True
    yield
    removed = 0
    while True:
        ids = (
            db.session.execute(
                select(AuditEvent.id)
                .where(AuditEvent.id <= target.last_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        removed += db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids))).rowcount
        yield
    return removed + (yield from _finish(target))


def _finish(target: AuditCheckpoint) -> Steps[int]:
    """Complete a prune up to ``target`` (a rerun after a crash): the rest of its stretch and
    the checkpoints before it (one step)."""
    removed = db.session.execute(delete(AuditEvent).where(AuditEvent.id <= target.last_id)).rowcount
    db.session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.id < target.id))
    yield
    return removed
