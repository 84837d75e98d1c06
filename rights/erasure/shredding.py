"""Shred epochs as the worker and the operator run them (the mechanism is
``storage.epochs``): a due shred runs in the worker's rounds, a few seconds at a time, and
``flask keys shred`` ends the current epoch at once. Each destroyed epoch key is an audit
entry — with counts and the epoch id, never a subject."""

import time

from rights.ledger import audit
from storage import epochs
from storage.db import db

WORKER_SECONDS = 5.0


def _record(result: dict, actor: str) -> None:
    for epoch_id in result["destroyed"]:
        audit.record(
            actor,
            "keys.epoch_destroyed",
            target=f"epoch:{epoch_id}",
            details={"rewrapped": result["rewrapped"]},
        )
    if result["destroyed"]:
        db.session.commit()


def run_if_due(seconds: float = WORKER_SECONDS) -> bool:
    """The worker's part: shred when the current epoch has ended (or a shred was left
    half-way, or keys from before epochs remain), for at most ``seconds`` per round; the next
    round goes on (commits). Returns whether anything was done."""
    if not epochs.due():
        db.session.rollback()
        return False
    result = epochs.shred(deadline=time.monotonic() + seconds)
    _record(result, "lethe")
    return bool(result["rewrapped"] or result["destroyed"])


def shred_now(*, batch: int = 1000, actor: str = "cli", progress=None) -> dict:
    """End the current epoch now and carry the shred through (commits): every surviving key
    re-wrapped under a new epoch's key, the old epoch key destroyed."""
    result = epochs.shred(batch=batch, force=True, progress=progress)
    _record(result, actor)
    return result


def recover(*, actor: str = "cli") -> dict:
    """After restoring the key store from a backup older than a shred (commits): epochs whose
    key the key manager no longer holds are recorded as destroyed, and the keys under them —
    readable by nobody, ever — are deleted; then run ``flask erasure replay``."""
    result = epochs.recover()
    db.session.commit()  # the epochs lock goes before the audit chain's is taken
    audit.record(actor, "keys.recovered", details=result)
    db.session.commit()
    return result


def status() -> list[dict]:
    """The epochs that still have a key: id, state, start, end."""
    return [
        {
            "id": e.id,
            "state": e.state,
            "backend": e.backend,
            "started_at": e.started_at.isoformat(),
            "ends_at": e.ends_at.isoformat(),
        }
        for e in epochs.alive()
    ]
