"""The key store: per-subject data keys, in their own database (bind ``keystore``).

Backups of the main database therefore never carry the keys that open it; destroying a row here
crypto-shreds every copy of that subject's encrypted fields, wherever they were copied.
"""

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


class SubjectKey(db.Model):
    __bind_key__ = "keystore"
    __tablename__ = "subject_keys"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # AES-256 data key wrapped (AES-GCM) with the key-encryption key from configuration.
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
