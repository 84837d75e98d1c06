"""Side effects and whom they reach: the outbox, written in the same transaction as its cause;
the downstream recipients told of changes (Art. 19); each event's delivery to each of them, and
every attempt.

Personal data is only ever sealed here: a message under the subject's key, and what a recipient
calls the subject under the subject's key (or, on a delivery that must outlive that key, the
service key).
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db, subject_index
from storage.models.platform import new_uuid


class OutboxMessage(db.Model):
    """A side effect (email now, webhooks later) written in the same transaction as its cause
    and sent by the worker after commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        subject_index("outbox"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_kind_created", "kind", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(20))  # email | webhook
    topic: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    # The message (recipient address included) under the subject's key.
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sent|dead
    # "subject": payload under the subject's key. "service": under the service key, for the
    # last message to an erased person (their key is gone); wiped once sent.
    sealed_with: Mapped[str] = mapped_column(String(10), default="subject")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    # The id of the HTTP request whose work queued this (its X-Request-ID), or of the message
    # whose job did, so the worker's log lines follow it (storage/trace.py). Never personal
    # data; null on messages queued before it was kept.
    trace_id: Mapped[str | None] = mapped_column(String(64))


class DeliveryAttempt(db.Model):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox.id"), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))


class Subscriber(db.Model):
    """A downstream recipient (brand, ad system, list consumer) told of changes (Art. 19)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list] = mapped_column(JSON, default=list)
    # Which recipient of the data map it speaks for (storage/recipients.py): "who we told"
    # on a request names the recipient category, told through this subscriber's deliveries.
    recipient: Mapped[str | None] = mapped_column(String(40), index=True)
    # The whsec_ signing secret, sealed with the service key; after a rotation the previous
    # one keeps signing alongside until previous_secret_until.
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The key it confirms deliveries with (scope deliveries:confirm).
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(db.Model):
    """One event for one subscriber. Its id is the ``webhook-id``: the same on every retry."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        # The dashboard's lists: by subscriber, by request and by state, newest first.
        Index("ix_deliveries_subscriber_created", "subscriber_id", "created_at"),
        Index("ix_deliveries_request_created", "request_id", "created_at"),
        Index("ix_deliveries_status_created", "status", "created_at"),
        UniqueConstraint("outbox_id", "subscriber_id", name="uq_deliveries_event_subscriber"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox.id"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    request_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"))
    # pending | delivered | confirmed | dead | disabled
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The subscriber's own identifier for the subject, when it gave one (RecipientIdentifier),
    # sealed with the service key: it must outlive the subject's key to tell of an erasure.
    recipient_ref_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class RecipientIdentifier(db.Model):
    """What a subscriber calls the subject (its own customer id), so its events can say so.
    Given by the platform's services; kept under the subject's key, erased with them."""

    __tablename__ = "recipient_identifiers"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "subject_id", name="uq_recipient_identifiers_pair"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    identifier_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecipientNotice(db.Model):
    """Art. 19 done by hand: an officer records that a recipient the data map names, with no
    webhook subscriber speaking for it, was told of a request's changes — when, how, by whom."""

    __tablename__ = "recipient_notices"
    __table_args__ = (
        UniqueConstraint("request_id", "recipient", name="uq_recipient_notices_request"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"))
    recipient: Mapped[str] = mapped_column(String(40))  # a key of storage.recipients.RECIPIENTS
    how: Mapped[str] = mapped_column(String(300))  # e.g. "by email to their privacy contact"
    told_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
