"""What an erasure leaves behind: where a run has got to, the signed deletion receipt and its
record key; and in the key store (bind ``keystore``) what must survive a restored backup of the
main database: a copy of each receipt and the suppression tombstones.

No personal data: pseudonymous refs, hashes and keyed fingerprints only.
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db
from storage.models.platform import new_uuid


class ErasureRun(db.Model):
    """Where an erasure has got to, so a killed run resumes and finishes exactly once."""

    __tablename__ = "erasure_runs"

    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    step: Mapped[str] = mapped_column(String(20))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    # [kind, keyed fingerprint] of the identifiers, taken while they could still be read:
    # every run (re)writes the tombstones from these, whatever a crash left in the key store.
    fingerprints: Mapped[list] = mapped_column(JSON, default=list)


class Receipt(db.Model):
    """A signed deletion receipt, one per erasure request, and its record key.

    The record key is stored only as a SHA-256 (``record_key_hash``). Until the former member
    has been shown it once, the key itself is also kept sealed with the service key
    (``record_key_sealed``); showing it wipes that copy.
    """

    __tablename__ = "receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), unique=True)
    subject_ref: Mapped[str] = mapped_column(String(40), index=True)
    kid: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    record_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    record_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    record_key_shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReceiptRecord(db.Model):
    """A copy of each deletion receipt in the key store (no personal data): restoring an old
    backup of the main database must not stop a record key from opening its statement."""

    __bind_key__ = "keystore"
    __tablename__ = "receipt_records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    subject_ref: Mapped[str] = mapped_column(String(40))
    jws: Mapped[str] = mapped_column(Text)
    record_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SuppressionTombstone(db.Model):
    """What remains after an erasure: keyed fingerprints of the identifiers, no personal data.

    Kept in the key store, not the main database: restoring an old backup of the main database
    does not bring erased people back, and ``flask erasure replay`` reads this log to remove
    them again. ``lifted_at`` is set when the person signs up again.
    """

    __bind_key__ = "keystore"
    __tablename__ = "suppression_tombstones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # email | member_id
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_ref: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(36))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
