"""The key store: per-subject data keys, in their own database (bind ``keystore``), and the
shred epochs whose keys wrap them.

Backups of the main database therefore never carry the keys that open it. A subject key is
wrapped under the key of the epoch current when it was made (or last re-wrapped); epoch keys
live outside every database (a PKCS#11 token, or a sealed key file: ``storage.epoch_keys``).
Deleting a subject key's row is not enough on its own — the row lives on in old row versions,
the write-ahead log, archives, replicas and backups — but once its epoch's key is destroyed no
copy anywhere can be unwrapped (``storage.epochs``).
"""

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


class SubjectKey(db.Model):
    __bind_key__ = "keystore"
    __tablename__ = "subject_keys"
    __table_args__ = (Index("ix_subject_keys_epoch_id_subject_id", "epoch_id", "subject_id"),)

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # AES-256 data key wrapped (AES-GCM) under its epoch's key; keys made before epochs
    # existed (``epoch_id`` NULL) are wrapped under the key-encryption key from configuration
    # until the first shred re-wraps them.
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    epoch_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeyEpoch(db.Model):
    """A shred epoch. ``current``: new subject keys are wrapped under its key. ``retiring``:
    its keys are being re-wrapped under the current epoch's, after which its key is destroyed
    (``destroyed``). At most two epochs have a key at any time."""

    __bind_key__ = "keystore"
    __tablename__ = "key_epochs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), index=True)  # current|retiring|destroyed
    backend: Mapped[str] = mapped_column(String(10))  # file | pkcs11
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the epoch is due to end; every key erased in it is unreadable once it has.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retiring_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
