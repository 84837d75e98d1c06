"""The rights ledger: requests and their events, verification, outbox, keys, audit.

Nothing here holds personal data in clear. Where a ledger row must carry some (the address a
notice goes to, the details a subject typed into a request), it is encrypted under the subject's
key like any platform record.
"""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

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
    channel: Mapped[str] = mapped_column(String(10), index=True)  # web | api | officer
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


class SigningKey(db.Model):
    __bind_key__ = "keystore"
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="EdDSA")
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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


class AuditCheckpoint(db.Model):
    """A signed statement that the audit chain held ``entries`` entries ending at ``last_id``
    with ``last_hash``. Kept in the key store: cutting the chain's tail in the main database
    (truncation leaves a valid chain) no longer matches the last checkpoint."""

    __bind_key__ = "keystore"
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    jws: Mapped[str] = mapped_column(Text)
    # Set when retention pruned the chain up to this checkpoint: the chain now starts after it.
    anchor: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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


class EvidenceAttachment(db.Model):
    __tablename__ = "evidence_attachments"
    __table_args__ = (subject_index("evidence_attachments"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    media_type: Mapped[str] = mapped_column(String(40))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetentionRun(db.Model):
    """One policy applied by one sweep: what it found and did, counts only."""

    __tablename__ = "retention_runs"
    __table_args__ = (Index("ix_retention_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(String(60))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dry_run: Mapped[bool] = mapped_column(default=False)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


class LegalHold(db.Model):
    """Records that must outlive their retention period (litigation, an investigation): a
    subject's, a campaign's or a whole category's. Sweeps skip them until the hold ends or is
    released. The reason is for officers and says nothing about the person."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(12))  # subject | campaign | category
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[str] = mapped_column(String(120))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(120))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    # The bulk correction, in award-id order: how far it got (resumable), and how many.
    corrected_through: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    corrected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The apology: written once, sent to each member touched, in the same order.
    apology_subject: Mapped[str | None] = mapped_column(String(200))
    apology_body: Mapped[str | None] = mapped_column(Text)
    notified_through: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notified: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentRecord(db.Model):
    """A record an incident corrected (the member is reached through it, not stored here)."""

    __tablename__ = "incident_records"
    __table_args__ = (
        UniqueConstraint("incident_id", "record_type", "record_id", name="uq_incident_records"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(Integer)
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(db.Model):
    """Who did what, when, to whose (pseudonymous) records. Each row chains the previous
    row's hash, so an edited, inserted, deleted or reordered row is detectable."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject_ref: Mapped[str | None] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


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
