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
re-wrapped into the current epoch by the first shred, the same way. This module holds the
epochs and the wrapping of subject keys; the shred itself is :mod:`storage.shred`.

Concurrency: wrapping a key (a new one, or a re-wrap batch) and a shred's decisive steps
(opening an epoch, destroying one) are serialised by one lock in the key store — shared for the
wrappers until they commit, exclusive for the shred (an advisory lock on PostgreSQL, the write
lock on SQLite) — so no key is ever wrapped under an epoch that a shred has just destroyed; and
a re-wrap moves only rows still under the epoch it read them from. Re-wrapping claims batches
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several shredders share the work.
"""

import base64
import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import func, select

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


def lock(*, shared: bool) -> None:
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
        lock(shared=False)
        row = _current_row() or open_epoch(utcnow())
    return row


def retiring() -> KeyEpoch | None:
    return db.session.execute(
        select(KeyEpoch).where(KeyEpoch.state == RETIRING)
    ).scalar_one_or_none()


def open_epoch(now: datetime) -> KeyEpoch:
    """A new current epoch, its key made in the key manager (flushes; under the exclusive lock)."""
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
        lock(shared=True)
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
