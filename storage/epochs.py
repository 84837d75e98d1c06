"""Shred epochs: what makes a destroyed subject key unreadable everywhere, not only in the live
key store.

Deleting a subject key's row does not destroy the key: PostgreSQL keeps the old row version
until a vacuum, its write-ahead log keeps the insert, and archives, base backups and replicas
keep both. So subject keys are never stored in clear nor under a long-lived key: each is wrapped
under the key of the *epoch* current when it was made. An epoch lasts ``SHRED_EPOCH_HOURS``
(default 24, ending at UTC midnight). When it ends, a shred:

1. opens the next epoch (its key made in the key manager; the old one becomes *retiring*);
2. re-wraps every surviving subject key from the retiring epoch's key to the new one, in
   committed batches — a shred killed mid-way resumes where it stopped, and loses nothing;
3. destroys the retiring epoch's key in the key manager (a PKCS#11 token's own destruction, or
   the sealed key file overwritten and unlinked: ``storage.epoch_keys``).

From step 3 every copy of a key erased during that epoch — heap, WAL, archives, replicas,
backups — is unreadable, because the only key that opened it exists nowhere. Hence a receipt's
``unrecoverable_after``: the end of the epoch in which the key was deleted. At most two epoch
keys exist at once (current and retiring): a shred never opens a third epoch before it has
finished the last.

Keys made before epochs existed (``epoch_id`` NULL, wrapped under ``KEY_ENCRYPTION_KEY``) are
re-wrapped into the current epoch by the first shred, the same way.

Concurrency: wrapping a key (a new one, or a re-wrap batch) and a shred's decisive steps
(opening an epoch, destroying one) are serialised by one lock in the key store — shared for the
wrappers until they commit, exclusive for the shred (an advisory lock on PostgreSQL, the write
lock on SQLite) — so no key is ever wrapped under an epoch that a shred has just destroyed; and
a re-wrap moves only rows still under the epoch it read them from. Re-wrapping claims batches
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several shredders share the work.
"""

import base64
import secrets
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import bindparam, delete, func, select, update

from storage import epoch_keys
from storage.clock import utcnow
from storage.db import db, lock_key, serialise
from storage.models.keystore import KeyEpoch, SubjectKey

NONCE_BYTES = 12
EPOCH_LOCK = lock_key("lethe", "shred-epochs")
CURRENT, RETIRING, DESTROYED = "current", "retiring", "destroyed"
_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)


class EpochGone(Exception):
    """The key of the epoch a subject key is wrapped under was destroyed."""


def store() -> epoch_keys.EpochKeyStore:
    """The app's epoch key manager (built from configuration once per app)."""
    ext = current_app.extensions
    if "lethe_epoch_keys" not in ext:
        ext["lethe_epoch_keys"] = epoch_keys.from_config(current_app.config)
    return ext["lethe_epoch_keys"]


def length() -> timedelta:
    return timedelta(hours=float(current_app.config["SHRED_EPOCH_HOURS"]))


def next_end(now: datetime) -> datetime:
    """The first epoch boundary after ``now``: boundaries fall every ``length()`` from
    2000-01-01T00:00Z (every UTC midnight for a day)."""
    step = length()
    passed = (now - _ANCHOR) // step
    return _ANCHOR + (passed + 1) * step


def _aad(subject_id: str, epoch_id: str) -> bytes:
    return f"lethe-subject-key\x00{subject_id}\x00{epoch_id}".encode()


def _kek() -> AESGCM:
    raw = current_app.config["KEY_ENCRYPTION_KEY"]
    return AESGCM(base64.urlsafe_b64decode(raw) if isinstance(raw, str) else raw)


def _keystore_connection():
    return db.session.connection(bind_arguments={"mapper": SubjectKey})


def _lock(*, shared: bool) -> None:
    """The epochs' lock, for the rest of the key store's transaction (see module docstring)."""
    serialise(db.session, EPOCH_LOCK, shared=shared, mapper=SubjectKey)


def _new_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _current_row() -> KeyEpoch | None:
    return db.session.execute(
        select(KeyEpoch).where(KeyEpoch.state == CURRENT)
    ).scalar_one_or_none()


def current(*, create: bool = True) -> KeyEpoch | None:
    """The current epoch; the first one is opened on first use, under the exclusive epochs
    lock and after reading again, so two first uses at once open one epoch (flushes)."""
    row = _current_row()
    if row is None and create:
        _lock(shared=False)
        row = _current_row() or _open(utcnow())
    return row




def retiring() -> KeyEpoch | None:
    return db.session.execute(
        select(KeyEpoch).where(KeyEpoch.state == RETIRING)
    ).scalar_one_or_none()


def _open(now: datetime) -> KeyEpoch:
    epoch_id = _new_id(now)
    store().create(epoch_id)
    row = KeyEpoch(
        id=epoch_id,
        state=CURRENT,
        backend=current_app.config["EPOCH_KEY_BACKEND"],
        started_at=now,
        ends_at=next_end(now),
    )
    db.session.add(row)
    db.session.flush()
    return row


# --- subject keys -------------------------------------------------------------------------


def wrap_new(subject_id: str, key: bytes) -> SubjectKey:
    """A new subject key, wrapped under the current epoch's key (flushes). Takes the epochs'
    lock shared, so a shred cannot destroy the epoch between the wrap and the commit."""
    if current(create=False) is None:
        epoch = current()  # the very first key: opens the first epoch (exclusive lock)
    else:
        _lock(shared=True)
        epoch = current()  # read again under the lock: a shred may just have opened one
    wrapped = store().wrap(epoch.id, key, _aad(subject_id, epoch.id))
    row = SubjectKey(subject_id=subject_id, wrapped_key=wrapped, epoch_id=epoch.id)
    db.session.add(row)
    return row


def unwrap_rows(rows) -> dict[str, bytes]:
    """The data keys of ``rows`` (subject keys, or rows with their ``subject_id``,
    ``wrapped_key`` and ``epoch_id``), one key-manager call per epoch. Keys under an epoch whose
    key is destroyed are left out: they are unreadable (see :func:`_after_epoch_gone`)."""
    out: dict[str, bytes] = {}
    by_epoch: dict[str | None, list] = defaultdict(list)
    for row in rows:
        by_epoch[row.epoch_id].append(row)
    for epoch_id, group in by_epoch.items():
        if epoch_id is None:
            kek = _kek()
            for row in group:
                blob = row.wrapped_key
                out[row.subject_id] = kek.decrypt(
                    blob[:NONCE_BYTES], blob[NONCE_BYTES:], row.subject_id.encode()
                )
            continue
        try:
            keys = store().unwrap_many(
                epoch_id, [(r.wrapped_key, _aad(r.subject_id, epoch_id)) for r in group]
            )
        except epoch_keys.EpochKeyGone:
            out.update(_after_epoch_gone(epoch_id, [r.subject_id for r in group]))
            continue
        out.update(zip((r.subject_id for r in group), keys, strict=True))
    return out


def _after_epoch_gone(epoch_id: str, subject_ids: list[str]) -> dict[str, bytes]:
    """An epoch's key was not in the key manager. If the key store says the epoch was
    destroyed, a shred may have moved these keys since they were read: read them again, once.
    Keys still under a destroyed epoch are unreadable (a key store restored from before a
    shred) and are left out. An epoch the key store thinks alive is a misconfiguration (the
    wrong key folder or token): raised, never taken for an erasure."""
    epoch = db.session.get(KeyEpoch, epoch_id)
    if epoch is None or epoch.state != DESTROYED:
        raise EpochGone(epoch_id)
    rows = db.session.execute(
        select(SubjectKey.subject_id, SubjectKey.wrapped_key, SubjectKey.epoch_id).where(
            SubjectKey.subject_id.in_(subject_ids), SubjectKey.epoch_id != epoch_id
        )
    ).all()
    return unwrap_rows(rows) if rows else {}


def unwrap_blob(subject_id: str, epoch_id: str | None, blob: bytes) -> bytes:
    """One wrapped key, as found anywhere (a backup, the WAL): raises EpochGone once its epoch
    key is destroyed, and InvalidTag-style errors if it is not what it claims."""
    if epoch_id is None:
        try:
            return _kek().decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], subject_id.encode())
        except InvalidTag as exc:
            raise epoch_keys.WrapInvalid(str(exc)) from exc
    try:
        return store().unwrap(epoch_id, blob, _aad(subject_id, epoch_id))
    except epoch_keys.EpochKeyGone as exc:
        raise EpochGone(epoch_id) from exc


# --- shredding ----------------------------------------------------------------------------


def due(now: datetime | None = None) -> bool:
    """Is there shredding to do: the current epoch has ended, a shred was left half-way, or
    keys from before epochs are still wrapped under the key-encryption key?"""
    now = now or utcnow()
    epoch = current(create=False)
    if epoch is None or epoch.ends_at <= now or retiring() is not None:
        return True
    legacy = db.session.execute(
        select(SubjectKey.subject_id).where(SubjectKey.epoch_id.is_(None)).limit(1)
    ).first()
    return legacy is not None


def begin(now: datetime | None = None) -> KeyEpoch | None:
    """Step 1, or nothing when a shred is already under way: open the next epoch, the current
    one becomes retiring (flushes; the caller commits). Returns the retiring epoch, if any."""
    now = now or utcnow()
    _lock(shared=False)
    left = retiring()
    if left is not None:
        return left  # finish that first: never a third key
    old = current(create=False)
    if old is None:
        current()  # the first epoch: only keys from before epochs to re-wrap
        return None
    old.state = RETIRING
    old.retiring_at = now
    db.session.flush()
    _open(now)
    return old


def rewrap_batch(from_epoch: str | None, batch: int = 1000) -> int:
    """Step 2, one batch: up to ``batch`` keys of ``from_epoch`` (None: keys from before
    epochs) unwrapped and wrapped again under the current epoch's key (flushes; the caller
    commits). Returns how many moved; raises EpochGone if the key manager has lost the
    epoch's key (see :func:`recover`)."""
    # Shared, like a new key: the epoch it wraps under cannot be destroyed (nor a new one
    # opened) before this batch commits.
    _lock(shared=True)
    to = current()
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
    keys = unwrap_rows(rows)
    readable = [r for r in rows if r.subject_id in keys]
    if len(readable) != len(rows):
        # Never dropped here: a key manager that lost an epoch's key is a misconfiguration
        # until an operator says otherwise (``flask keys recover``).
        raise EpochGone(from_epoch or "before epochs")
    wrapped = store().wrap_many(
        to.id, [(keys[r.subject_id], _aad(r.subject_id, to.id)) for r in readable]
    )
    table = SubjectKey.__table__
    # Only rows still under the epoch they were read from: a row another shredder moved, or
    # an erasure deleted, meanwhile is left as it is.
    still = (
        table.c.epoch_id.is_(None) if from_epoch is None else table.c.epoch_id == from_epoch
    )
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
    _lock(shared=False)
    left = db.session.execute(
        select(func.count()).select_from(SubjectKey).where(SubjectKey.epoch_id == epoch.id)
    ).scalar_one()
    if left:
        return False
    store().destroy(epoch.id)
    epoch.state = DESTROYED
    epoch.destroyed_at = now or utcnow()
    db.session.flush()
    return True


def shred(
    *, batch: int = 1000, deadline: float | None = None, force: bool = False, progress=None
) -> dict:
    """Run a whole shred (or resume one): the steps above, each batch committed. ``force``
    ends the current epoch now (``flask keys shred``); otherwise only a due shred runs.
    ``deadline`` (a ``time.monotonic()`` value) stops between batches — the next call goes on.
    Returns counts: ``rewrapped``, ``destroyed`` (epoch ids), ``done``."""
    counts = {"rewrapped": 0, "destroyed": [], "done": False}
    if not force and not due():
        counts["done"] = True
        return counts
    old = retiring()
    left_over = old is not None
    if old is None and (force or _ended()):
        old = begin()
    else:
        current()  # at least the first epoch, for keys from before epochs
    db.session.commit()
    for source in [None] + ([old.id] if old is not None else []):
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return counts
            moved = rewrap_batch(source, batch)
            db.session.commit()
            counts["rewrapped"] += moved
            if progress is not None and moved:
                progress(moved)
            if moved == 0:
                break
    if old is not None:
        epoch = db.session.get(KeyEpoch, old.id)
        if finish(epoch):
            counts["destroyed"].append(epoch.id)
        db.session.commit()
        counts["done"] = epoch.state == DESTROYED
    else:
        counts["done"] = True
    if force and left_over and counts["done"]:
        # That finished a shred left half-way; "now" means the current epoch too.
        again = shred(batch=batch, deadline=deadline, force=True, progress=progress)
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
    _lock(shared=False)
    now = utcnow()
    held = set(store().list_epochs())
    if not held:
        # Far likelier a wrong key folder or token than a restore: that would delete every key.
        raise EpochGone("the key manager holds no epoch key at all: check its configuration")
    known = {e.id for e in db.session.execute(select(KeyEpoch)).scalars()}
    dead = []
    for epoch in alive():
        if epoch.id not in held:
            epoch.state, epoch.destroyed_at = DESTROYED, epoch.destroyed_at or now
            dead.append(epoch.id)
    # Epoch keys the restored key store never heard of (opened after the backup was taken):
    # copies of keys erased under them must not stay readable, so they go too.
    orphans = sorted(held - known)
    for epoch_id in orphans:
        store().destroy(epoch_id)
    db.session.flush()
    unreadable = 0
    for epoch_id in _dead_with_keys():
        unreadable += db.session.execute(
            delete(SubjectKey).where(SubjectKey.epoch_id == epoch_id)
        ).rowcount
    if retiring() is not None and current(create=False) is None:
        # The retiring epoch survived, the current did not: it becomes current again.
        left = retiring()
        left.state, left.retiring_at = CURRENT, None
    current()
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
    epoch = current(create=False)
    return epoch is not None and epoch.ends_at <= utcnow()


def ever_under_kek(subject_id: str) -> bool:
    """Was this subject's key ever wrapped under the key-encryption key (made before epochs
    existed)? Then copies in backups from that time open with that key, which no shred
    destroys: no promise of unreadability can be made for them."""
    row = db.session.get(SubjectKey, subject_id)
    if row is not None and row.epoch_id is None:
        return True
    first = db.session.execute(select(func.min(KeyEpoch.started_at))).scalar_one_or_none()
    return row is not None and first is not None and row.created_at < first


def unreadable_since(deleted_by: datetime) -> datetime | None:
    """When a key deleted at or before ``deleted_by`` became unreadable everywhere: once every
    epoch alive at that moment has had its key destroyed (a shred may have re-wrapped the key
    into the next epoch before it was deleted). None while one of them is still alive."""
    then = list(
        db.session.execute(
            select(KeyEpoch).where(
                KeyEpoch.started_at < deleted_by,
                (KeyEpoch.destroyed_at.is_(None)) | (KeyEpoch.destroyed_at >= deleted_by),
            )
        ).scalars()
    )
    if not then or any(e.destroyed_at is None for e in then):
        return None
    return max(e.destroyed_at for e in then)




def alive() -> list[KeyEpoch]:
    return list(
        db.session.execute(
            select(KeyEpoch).where(KeyEpoch.state != DESTROYED).order_by(KeyEpoch.started_at)
        ).scalars()
    )
