"""Leases: work that one worker at a time may do across all workers (a scheduled sweep)."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import UTCDateTime, db


class WorkerLease(db.Model):
    """Who holds the named work and until when. A lease lapses at ``expires_at`` — so a worker
    killed while holding one blocks the work only that long — and its holder renews it while
    it works. The holder is a worker process (host, process id, a random tag): no person."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
