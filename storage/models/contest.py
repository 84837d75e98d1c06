"""Records held back or corrected because something about them was contested: restrictions
(Art. 18), and incidents — faults that touched many members' records — with what each corrected.
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db


class Restriction(db.Model):
    """A platform record kept but not used (Art. 18): while its accuracy is contested, while
    an objection is weighed, or because the subject asked. In force from ``started_at`` until
    ``ends_at`` — set when it is lifted, far enough ahead that the subject is told first
    (Art. 18(3)). Exports, promotions and solicitations leave restricted records out."""

    __tablename__ = "restrictions"
    __table_args__ = (Index("ix_restrictions_record", "record_type", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))  # contested | objection | requested
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(120))


class Incident(db.Model):
    """A fault that touched many members' records ("how many others?"): the filter that finds
    them, the root cause, the bulk correction and the apology, each resumable."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    opened_from_request_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"))
    opened_by: Mapped[str] = mapped_column(String(120), default="lethe")
    record_filter: Mapped[dict] = mapped_column(JSON, default=dict)
    root_cause: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|correcting|corrected
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The bulk correction, in award-id order: the last award it corrected, and how many (what
    # is done is in its records, which is what a stopped run resumes from).
    corrected_through: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    corrected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The apology: written once, sent once to each member touched (each member's records say
    # whether they were told), and how many were.
    apology_subject: Mapped[str | None] = mapped_column(String(200))
    apology_body: Mapped[str | None] = mapped_column(Text)
    notified: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentRecord(db.Model):
    """A record an incident touched: corrected by it (``corrected_at``), or left as a request
    of the member's own decided it (``decided_by_request_id``: the request held it back or had
    corrected it already). ``notified_at``: when the member was sent the apology, set on all
    their records at once, so that each member is told once. The member is reached through
    the record (its ``subject_id``), never stored here."""

    __tablename__ = "incident_records"
    __table_args__ = (
        UniqueConstraint("incident_id", "record_type", "record_id", name="uq_incident_records"),
        Index("ix_incident_records_incident_notified", "incident_id", "notified_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(Integer)
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("rights_requests.id"), index=True
    )
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
