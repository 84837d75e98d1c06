"""Signed checkpoints of the audit chain, and the one check that runs them all.

A chain of keyed hashes shows edits, insertions, deletions and reorderings, but not a cut
tail: what is left is still a valid chain. So the worker periodically signs "the chain had N
entries, ending at id I with hash H" (a JWS, like receipts) and keeps it in the key store;
:func:`verify` checks the chain and every checkpoint against it.
"""

from dataclasses import dataclass, field

from sqlalchemy import func, select

from rights import audit, signing
from rights.errors import InvalidSignature
from storage.clock import utcnow
from storage.db import db
from storage.models import AuditCheckpoint, AuditEvent

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


def write() -> AuditCheckpoint | None:
    """Sign a checkpoint at the chain's current end (flushes); None if nothing new."""
    last = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    latest = _latest()
    if last is None or (latest is not None and latest.last_id == last.id):
        return None
    entries = db.session.execute(select(func.count(AuditEvent.id))).scalar_one()
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
    entry it names is still there, unchanged, with the same number of entries up to it."""
    report = Report(
        entries=db.session.execute(select(func.count(AuditEvent.id))).scalar_one(),
        checkpoints=db.session.execute(select(func.count(AuditCheckpoint.id))).scalar_one(),
        broken_ids=audit.verify_chain(),
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
        if entry is not None and up_to != cp.entries:
            report.problems.append(
                f"checkpoint {cp.id}: {cp.entries} entries expected up to {cp.last_id}, "
                f"found {up_to}"
            )
    return report
