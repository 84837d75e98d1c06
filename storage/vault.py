"""The key vault: per-subject data keys, field encryption and blind indexes.

- Each subject has its own random AES-256 key, stored in the key store database wrapped
  (AES-GCM) under the key of the current shred epoch (``storage.epochs``), which lives in a
  key manager outside every database.
- Personal-data fields are AES-256-GCM under that key; the associated data binds each
  ciphertext to its subject and column, so a ciphertext copied elsewhere does not decrypt.
- Look-ups by email use a keyed blind index (HMAC-SHA256 with ``BLIND_INDEX_KEY``) of the
  normalised address; the database never sees the address itself.

Destroying a subject's key (erasure) makes every copy of its fields unreadable.
"""

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, g

from storage import epochs
from storage.db import checkpoint_sqlite, db
from storage.models.keystore import SubjectKey

NONCE_BYTES = 12


class KeyMissing(Exception):
    """The subject's key is gone (crypto-shredded) or was never made."""


def _config_key(name: str) -> bytes:
    raw = current_app.config[name]
    key = base64.urlsafe_b64decode(raw) if isinstance(raw, str) else raw
    if len(key) != 32:
        raise RuntimeError(f"{name} must be 32 bytes, base64url-encoded")
    return key


def normalise_email(email: str) -> str:
    return email.strip().casefold()


def blind_index(email: str) -> str:
    """Keyed, deterministic fingerprint of an email address for equality look-ups."""
    key = _config_key("BLIND_INDEX_KEY")
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def keyed_fingerprint(label: str, value: str) -> str:
    """A keyed fingerprint of any identifier (domain-separated by ``label``)."""
    key = _config_key("BLIND_INDEX_KEY")
    return hmac.new(key, f"{label}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _cache() -> dict[str, bytes]:
    if "_lethe_subject_keys" not in g:
        g._lethe_subject_keys = {}
    return g._lethe_subject_keys


def create_subject_key(subject_id: str) -> bytes:
    """Make and store a new data key for a subject, wrapped under the current shred epoch's
    key (flushes, does not commit)."""
    key = AESGCM.generate_key(bit_length=256)
    epochs.wrap_new(subject_id, key)
    _cache()[subject_id] = key
    return key


def load_keys(subject_ids: list[str]) -> None:
    """Fetch many subjects' keys in one query (avoids one key-store round trip per row) and
    unwrap them with one key-manager call per epoch. A key whose epoch key is gone stays
    missing: its subject is unreadable."""
    cache = _cache()
    missing = [s for s in set(subject_ids) if s not in cache]
    for start in range(0, len(missing), 500):
        rows = db.session.execute(
            db.select(SubjectKey).where(SubjectKey.subject_id.in_(missing[start : start + 500]))
        ).scalars()
        cache.update(epochs.unwrap_rows(list(rows)))


def subject_key(subject_id: str) -> bytes:
    cache = _cache()
    if subject_id not in cache:
        load_keys([subject_id])
    if subject_id not in cache:
        raise KeyMissing(subject_id)
    return cache[subject_id]


def forget_cached_key(subject_id: str) -> None:
    _cache().pop(subject_id, None)


def destroy_subject_key(subject_id: str) -> bool:
    """Crypto-shred: delete the subject's key from the key store (flushes). Every copy of the
    subject's encrypted fields, in this database, its backups or replicas, becomes unreadable.
    Returns False when the key was already gone (erasure reruns are idempotent)."""
    forget_cached_key(subject_id)
    deleted = db.session.execute(
        db.delete(SubjectKey).where(SubjectKey.subject_id == subject_id)
    ).rowcount
    return bool(deleted)


def scrub_destroyed_keys() -> None:
    """After destroyed keys are committed: on an embedded (SQLite) key store, checkpoint and
    empty its write-ahead log, so that no page still holding a destroyed key is left in the
    log or the file. (PostgreSQL keeps old row versions in its heap and WAL until vacuumed and
    archived; shred epochs are the answer there.)"""
    checkpoint_sqlite(db.engines["keystore"])


def seal(label: str, data: bytes) -> bytes:
    """Encrypt with the service key (the key-encryption key), bound to ``label``: for secrets
    that belong to no one subject (signing keys) or must outlive a subject's key (the last
    notice to an erased person, a record key not yet shown)."""
    nonce = os.urandom(NONCE_BYTES)
    aad = f"sealed|{label}".encode()
    return nonce + AESGCM(_config_key("KEY_ENCRYPTION_KEY")).encrypt(nonce, data, aad)


def unseal(label: str, blob: bytes) -> bytes:
    aad = f"sealed|{label}".encode()
    kek = AESGCM(_config_key("KEY_ENCRYPTION_KEY"))
    return kek.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def encrypt(subject_id: str, context: str, value: str | bytes | None) -> bytes | None:
    """Encrypt a field value for a subject; ``context`` names the column (e.g. members.email)."""
    if value is None:
        return None
    data = value.encode() if isinstance(value, str) else value
    nonce = os.urandom(NONCE_BYTES)
    aad = f"{context}|{subject_id}".encode()
    return nonce + AESGCM(subject_key(subject_id)).encrypt(nonce, data, aad)


def decrypt_bytes(subject_id: str, context: str, blob: bytes | None) -> bytes | None:
    if blob is None:
        return None
    aad = f"{context}|{subject_id}".encode()
    return AESGCM(subject_key(subject_id)).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def decrypt(subject_id: str, context: str, blob: bytes | None) -> str | None:
    data = decrypt_bytes(subject_id, context, blob)
    return None if data is None else data.decode()


def encrypt_json(subject_id: str, context: str, value: Any) -> bytes | None:
    if value is None:
        return None
    return encrypt(subject_id, context, json.dumps(value, separators=(",", ":"), default=str))


def decrypt_json(subject_id: str, context: str, blob: bytes | None) -> Any:
    text = decrypt(subject_id, context, blob)
    return None if text is None else json.loads(text)
