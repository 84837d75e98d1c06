"""Rights requests: the request, its timeline, the emailed links that verify it, the evidence
sent with it, and the answers replayed when a service retries a POST.

Nothing here holds personal data in clear. What a subject or an officer wrote on a request (its
details, the address its notices go to, reasons, notes, pictures) is encrypted under the
subject's key like any platform record.
"""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage import wording
from storage.clock import utcnow
from storage.db import UTCDateTime, db, subject_index
from storage.models.platform import RetainedMixin, new_uuid


class RequestType(enum.StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    CONSENT_WITHDRAWAL = "consent_withdrawal"


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    AWAITING_VERIFICATION = "awaiting_verification"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class RightsRequest(RetainedMixin, db.Model):
    __tablename__ = "rights_requests"
    __table_args__ = (
        subject_index("rights_requests"),
        Index("ix_rights_requests_status_due", "status", "due_at"),
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_rights_requests_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    # What the subject quotes: short, human-typable, not guessable enough to be a credential
    # (status pages also need a verified session), so it may appear in URLs.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    type: Mapped[str] = mapped_column(String(24), index=True)
    status: Mapped[str] = mapped_column(String(24))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    channel: Mapped[str] = mapped_column(String(10), index=True)  # web | api | officer | drp
    # The language the request was filed in ("en", "de": storage.wording.LANGUAGES): every
    # email about it is written in it. Set from the page's language when filed (the API and the
    # dashboard file in English); None on requests filed before languages, read as English.
    locale: Mapped[str | None] = mapped_column(String(8), default=wording.current_language)
    # The law it is answered under, where it is not the GDPR: "ccpa" (45 days, one 45-day
    # extension) for requests an authorized agent files under it; None is the GDPR.
    regime: Mapped[str | None] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    original_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_method: Mapped[str | None] = mapped_column(String(40))
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_months: Mapped[int | None] = mapped_column(Integer)
    # Officers' reasons may speak about the person: under the subject's key like the rest.
    extension_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    decision: Mapped[str | None] = mapped_column(String(20))
    decision_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    # Set on every answer (granted or refused): the dashboard's "closed in the last 90 days".
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it reached a final state (completed, refused or withdrawn): retention's clock.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    downloads_expire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where notices go (the member's address, or the one typed on the form): subject's key.
    contact_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Type-specific fields the subject gave (may be personal data): under the subject's key.
    details_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # The officer handling it: set when someone takes it or first acts on it.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    # The same person's earlier open request of the same type about the same records: the two
    # are answered together (rights/lifecycle/links.py). Set when this one is verified.
    linked_to_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"))
    linked_to: Mapped["RightsRequest | None"] = relationship(
        remote_side=[id], foreign_keys=[linked_to_id], lazy="select"
    )


class RequestEvent(RetainedMixin, db.Model):
    """One step in a request's timeline. What people wrote on it (an officer's question or
    reason, the subject's answer) is personal data: the data map lists it."""

    __tablename__ = "request_events"
    __table_args__ = (subject_index("request_events"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    # What people wrote (an officer's reason or question, the subject's answer): it may speak
    # about the person, so it is under the subject's key, like the request's other free text.
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class VerificationToken(db.Model):
    """A single-use emailed link. Only the SHA-256 of the token is stored."""

    __tablename__ = "verification_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # verify | resume
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EvidenceAttachment(db.Model):
    __tablename__ = "evidence_attachments"
    __table_args__ = (subject_index("evidence_attachments"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    media_type: Mapped[str] = mapped_column(String(40))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyRecord(db.Model):
    """The answer given to a POST with an ``Idempotency-Key``, replayed on retry."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_idempotency_records_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
