"""Shred epochs as the worker and the operator run them (the mechanism is ``storage.epochs``
and ``storage.shred``): a due shred runs in the worker's rounds, a few seconds at a time, and
``flask keys shred`` ends the current epoch at once. Each destroyed epoch key is an audit
entry — with counts and the epoch id, never a subject."""

import time

from rights.ledger import audit
from storage import epochs, leases, shred
from storage.db import db
from storage.steps import Steps, run_steps

WORKER_SECONDS = 5.0


def _record(result: dict, actor: str) -> Steps[None]:
    for epoch_id in result["destroyed"]:
        audit.record(
            actor,
            "keys.epoch_destroyed",
            target=f"epoch:{epoch_id}",
            details={"rewrapped": result["rewrapped"]},
        )
    if result["destroyed"]:
        yield


def run_if_due(seconds: float = WORKER_SECONDS) -> bool:
    """:func:`run_if_due_steps` now, each step committed."""
    return run_steps(run_if_due_steps(seconds))


def run_if_due_steps(seconds: float = WORKER_SECONDS) -> Steps[bool]:
    """The worker's part: shred when the current epoch has ended (or a shred was left
    half-way, or keys from before epochs remain), for at most ``seconds`` per round; the next
    round goes on (steps). One worker at a time shreds, across all workers (the ``shredding``
    lease, taken only once a shred is due). Returns whether anything was done."""
    if not shred.due():
        db.session.rollback()  # only read: nothing of this round's check is kept
        return False
    return (yield from leases.exclusive("shredding", lambda: _shred_if_due(seconds), busy=False))


def _shred_if_due(seconds: float) -> Steps[bool]:
    if not shred.due():  # another worker finished it while this one waited for the lease
        return False
    result = yield from shred.shred_steps(deadline=time.monotonic() + seconds)
    yield from _record(result, "lethe")
    return bool(result["rewrapped"] or result["destroyed"])


def shred_now(*, batch: int = 1000, actor: str = "cli", progress=None) -> dict:
    """End the current epoch now and carry the shred through (each step committed): every
    surviving key re-wrapped under a new epoch's key, the old epoch key destroyed."""
    return run_steps(_shred_now_steps(batch, actor, progress))


def _shred_now_steps(batch: int, actor: str, progress) -> Steps[dict]:
    result = yield from shred.shred_steps(batch=batch, force=True, progress=progress)
    yield from _record(result, actor)
    return result


def recover(*, actor: str = "cli") -> dict:
    """After restoring the key store from a backup older than a shred (each step committed):
    epochs whose key the key manager no longer holds are recorded as destroyed, and the keys
    under them — readable by nobody, ever — are deleted; then run ``flask erasure replay``."""
    return run_steps(_recover_steps(actor))


def _recover_steps(actor: str) -> Steps[dict]:
    result = shred.recover()
    yield  # the epochs lock goes before the audit chain's is taken
    audit.record(actor, "keys.recovered", details=result)
    yield
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
