"""Shredding shred epochs (see :mod:`storage.epochs` for what they promise): when the current
epoch ends, a shred

1. opens the next epoch (its key made in the key manager; the old one becomes *retiring*):
   :func:`begin`;
2. re-wraps every surviving subject key from the retiring epoch's key to the new one, in
   batches each committed on its own — a shred killed mid-way resumes where it stopped, and
   loses nothing: :func:`rewrap_batch`;
3. destroys the retiring epoch's key in the key manager: :func:`finish`.

:func:`shred_steps` runs them all as steps (:mod:`storage.steps`: every ``yield`` is a commit,
made by the runner — the worker's round, or :func:`shred`). :func:`recover` is for a key store
restored from a backup older than a shred.

Concurrency: a shred's decisive steps (opening an epoch, destroying one) take the epochs' lock
exclusive, re-wrap batches take it shared like any new key (:func:`storage.epochs.lock`); a
re-wrap moves only rows still under the epoch it read them from, and claims batches with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several shredders share the work.
"""

import time
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update

from storage import epochs
from storage.clock import utcnow
from storage.db import db
from storage.epochs import CURRENT, DESTROYED, RETIRING
from storage.models.keystore import KeyEpoch, SubjectKey
from storage.steps import Steps, run_steps


def _keystore_connection():
    return db.session.connection(bind_arguments={"mapper": SubjectKey})


def due(now: datetime | None = None) -> bool:
    """Is there shredding to do: the current epoch has ended, a shred was left half-way, or
    keys from before epochs are still wrapped under the key-encryption key?"""
    now = now or utcnow()
    epoch = epochs.current(create=False)
    if epoch is None or epoch.ends_at <= now or epochs.retiring() is not None:
        return True
    legacy = db.session.execute(
        select(SubjectKey.subject_id).where(SubjectKey.epoch_id.is_(None)).limit(1)
    ).first()
    return legacy is not None


def begin(now: datetime | None = None) -> KeyEpoch | None:
    """Step 1, or nothing when a shred is already under way: open the next epoch, the current
    one becomes retiring (flushes; the caller commits). Returns the retiring epoch, if any."""
    now = now or utcnow()
    epochs.lock(shared=False)
    left = epochs.retiring()
    if left is not None:
        return left  # finish that first: never a third key
    old = epochs.current(create=False)
    if old is None:
        epochs.current()  # the first epoch: only keys from before epochs to re-wrap
        return None
    old.state = RETIRING
    old.retiring_at = now
    db.session.flush()
    epochs.open_epoch(now)
    return old


def rewrap_batch(from_epoch: str | None, batch: int = 1000) -> int:
    """Step 2, one batch: up to ``batch`` keys of ``from_epoch`` (None: keys from before
    epochs) unwrapped and wrapped again under the current epoch's key (flushes; the caller
    commits). Returns how many moved; raises EpochGone if the key manager has lost the
    epoch's key (see :func:`recover`)."""
    # Shared, like a new key: the epoch it wraps under cannot be destroyed (nor a new one
    # opened) before this batch commits.
    epochs.lock(shared=True)
    to = epochs.current()
    query = (
        select(SubjectKey.subject_id, SubjectKey.wrapped_key, SubjectKey.epoch_id)
        .order_by(SubjectKey.subject_id)
        .limit(batch)
    )
    query = query.where(
        SubjectKey.epoch_id.is_(None) if from_epoch is None else SubjectKey.epoch_id == from_epoch
    )
    if _keystore_connection().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(db.session.execute(query))  # plain rows: no objects to build and track
    if not rows:
        return 0
    keys = epochs.unwrap_rows(rows)
    readable = [r for r in rows if r.subject_id in keys]
    if len(readable) != len(rows):
        # Never dropped here: a key manager that lost an epoch's key is a misconfiguration
        # until an operator says otherwise (``flask keys recover``).
        raise epochs.EpochGone(from_epoch or "before epochs")
    wrapped = epochs.store().wrap_many(
        to.id, [(keys[r.subject_id], epochs._aad(r.subject_id, to.id)) for r in readable]
    )
    table = SubjectKey.__table__
    # Only rows still under the epoch they were read from: a row another shredder moved, or
    # an erasure deleted, meanwhile is left as it is.
    still = table.c.epoch_id.is_(None) if from_epoch is None else table.c.epoch_id == from_epoch
    moved = db.session.execute(
        update(table)
        .where(table.c.subject_id == bindparam("sid"), still)
        .values(wrapped_key=bindparam("blob"), epoch_id=to.id),
        [{"sid": r.subject_id, "blob": w} for r, w in zip(readable, wrapped, strict=True)],
    )
    return moved.rowcount if moved.rowcount is not None and moved.rowcount >= 0 else len(readable)


def finish(epoch: KeyEpoch, now: datetime | None = None) -> bool:
    """Step 3: destroy the retiring epoch's key once no subject key is wrapped under it
    (flushes; the caller commits). False while keys are left (another shredder holds them)."""
    epochs.lock(shared=False)
    left = db.session.execute(
        select(func.count()).select_from(SubjectKey).where(SubjectKey.epoch_id == epoch.id)
    ).scalar_one()
    if left:
        return False
    epochs.store().destroy(epoch.id)
    epoch.state = DESTROYED
    epoch.destroyed_at = now or utcnow()
    db.session.flush()
    return True


def shred(
    *, batch: int = 1000, deadline: float | None = None, force: bool = False, progress=None
) -> dict:
    """:func:`shred_steps` now, each step committed."""
    return run_steps(shred_steps(batch=batch, deadline=deadline, force=force, progress=progress))


def shred_steps(
    *, batch: int = 1000, deadline: float | None = None, force: bool = False, progress=None
) -> Steps[dict]:
    """Run a whole shred (or resume one): the steps above, each batch a step of its own
    (:mod:`storage.steps`: the runner commits at every ``yield``). ``force`` ends the current
    epoch now (``flask keys shred``); otherwise only a due shred runs. ``deadline`` (a
    ``time.monotonic()`` value) stops between batches — the next call goes on. Returns
    counts: ``rewrapped``, ``destroyed`` (epoch ids), ``done``."""
    counts = {"rewrapped": 0, "destroyed": [], "done": False}
    if not force and not due():
        counts["done"] = True
        return counts
    old = epochs.retiring()
    left_over = old is not None
    if old is None and (force or _ended()):
        old = begin()
    else:
        epochs.current()  # at least the first epoch, for keys from before epochs
    yield
    for source in [None] + ([old.id] if old is not None else []):
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return counts
            moved = rewrap_batch(source, batch)
            yield
            counts["rewrapped"] += moved
            if progress is not None and moved:
                progress(moved)
            if moved == 0:
                break
    if old is not None:
        epoch = db.session.get(KeyEpoch, old.id)
        if finish(epoch):
            counts["destroyed"].append(epoch.id)
        yield
        counts["done"] = epoch.state == DESTROYED
    else:
        counts["done"] = True
    if force and left_over and counts["done"]:
        # That finished a shred left half-way; "now" means the current epoch too.
        again = yield from shred_steps(
            batch=batch, deadline=deadline, force=True, progress=progress
        )
        counts["rewrapped"] += again["rewrapped"]
        counts["destroyed"] += again["destroyed"]
        counts["done"] = again["done"]
    return counts


def recover() -> dict:
    """After the key store was restored from a backup older than a shred: every epoch the key
    manager no longer holds is recorded as destroyed, the keys wrapped under those epochs —
    which nobody can ever read again — are deleted, and a new epoch is opened if needed
    (flushes; the caller commits). The tombstone replay (``flask erasure replay``) then
    erases the rows of everyone erased since. Returns counts."""
    epochs.lock(shared=False)
    now = utcnow()
    held = set(epochs.store().list_epochs())
    if not held:
        # Far likelier a wrong key folder or token than a restore: that would delete every key.
        raise epochs.EpochGone("the key manager holds no epoch key at all: check its configuration")
    known = {e.id for e in db.session.execute(select(KeyEpoch)).scalars()}
    dead = []
    for epoch in epochs.alive():
        if epoch.id not in held:
            epoch.state, epoch.destroyed_at = DESTROYED, epoch.destroyed_at or now
            dead.append(epoch.id)
    # Epoch keys the restored key store never heard of (opened after the backup was taken):
    # copies of keys erased under them must not stay readable, so they go too.
    orphans = sorted(held - known)
    for epoch_id in orphans:
        epochs.store().destroy(epoch_id)
    db.session.flush()
    unreadable = 0
    for epoch_id in _dead_with_keys():
        unreadable += db.session.execute(
            delete(SubjectKey).where(SubjectKey.epoch_id == epoch_id)
        ).rowcount
    if epochs.retiring() is not None and epochs.current(create=False) is None:
        # The retiring epoch survived, the current did not: it becomes current again.
        left = epochs.retiring()
        left.state, left.retiring_at = CURRENT, None
    epochs.current()
    db.session.flush()
    return {"epochs_lost": dead, "unreadable_keys": unreadable, "orphans_destroyed": orphans}


def _dead_with_keys() -> list[str]:
    """Destroyed epochs that still have subject keys under them: only after the key store was
    restored from a backup older than their destruction. Those keys can never be read."""
    return list(
        db.session.execute(
            select(SubjectKey.epoch_id)
            .join(KeyEpoch, KeyEpoch.id == SubjectKey.epoch_id)
            .where(KeyEpoch.state == DESTROYED)
            .distinct()
        ).scalars()
    )


def _ended() -> bool:
    epoch = epochs.current(create=False)
    return epoch is not None and epoch.ends_at <= utcnow()
