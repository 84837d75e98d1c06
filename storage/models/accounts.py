"""Who may act on Lethe besides the subjects: privacy officers (the dashboard's accounts) and
the platform services' API keys. Their secrets are kept only as hashes, or sealed.
"""

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


class ApiKey(db.Model):
    """A bearer key for the platform's services. Only a SHA-256 of the secret part is stored;
    ``prefix`` finds the row, the hash is compared in constant time."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Officer(db.Model):
    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_index: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last TOTP time step accepted: a code is good for one login only (RFC 6238 §5.2).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # Bumped on sign-out and deactivation: every session signed with an older one ends.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed sign-ins in a row (a success resets it); at LOGIN_LOCKOUT_FAILURES the account is
    # locked until ``locked_until``, whatever address the attempts came from.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
