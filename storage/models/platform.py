"""Platform records: what the perk platform holds about people, each with provenance.

Every record names the ``source`` system that sent it, the ``actor`` (process or person) that
wrote it and when it was recorded; :class:`RecordHistory` keeps what changed afterwards, why, and
on which request. Personal-data columns end in ``_enc``: AES-256-GCM ciphertext under the
subject's own key (see :mod:`storage.vault`). Which column holds which category is declared once,
in :mod:`storage.datamap`.
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import utcnow
from storage.db import UTCDateTime, db, subject_index


def new_uuid() -> str:
    return str(uuid.uuid4())


class Subject(db.Model):
    """A data subject known to Lethe: a member, former member or someone who filed a request.

    Holds no personal data in clear: ``ref`` is a pseudonymous reference safe for logs, audit
    and webhooks; ``email_index`` is a keyed blind index (HMAC) used for look-ups by email.
    """

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    # Emptied on erasure: the address may come back as a new, unrelated subject.
    email_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the member's account was closed (kept here: retention clocks outlive the member row).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ProvenanceMixin:
    """Where a record came from: the source system, who or what wrote it, and when."""

    source: Mapped[str] = mapped_column(String(80))
    actor: Mapped[str] = mapped_column(String(120))
    # Indexed: retention's clock for several categories.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RetainedMixin:
    """Records erasure may keep under an Art. 17(3) exception: kept, restricted (stored, not
    used), until ``retain_until``."""

    restricted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retained_under: Mapped[str | None] = mapped_column(String(300))
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class Member(ProvenanceMixin, db.Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), unique=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    handle_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="active")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class InfluenceScore(ProvenanceMixin, db.Model):
    """Profiling (Art. 4(4)): a score the platform computes from a member's social activity."""

    __tablename__ = "influence_scores"
    __table_args__ = (subject_index("influence_scores"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    score: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(40))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Which inputs weighed how much, so the score can be explained (Art. 15(1)(h)).
    factors: Mapped[dict] = mapped_column(JSON, default=dict)


class InfluenceTopic(ProvenanceMixin, db.Model):
    """A topic a member is said to influence (inferred: profiling)."""

    __tablename__ = "influence_topics"
    __table_args__ = (subject_index("influence_topics"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    topic: Mapped[str] = mapped_column(String(80))
    weight: Mapped[float] = mapped_column(Float)


class Brand(db.Model):
    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))


class Perk(db.Model):
    __tablename__ = "perks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    item: Mapped[str] = mapped_column(String(200))
    value_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")


AWARD_STATUSES = (
    "offered",
    "claimed",
    "shipped",
    "received",
    "not_received",  # corrected: the platform said received, nothing arrived
    "ineligible",
    "revoked",
)
DISCLOSURE_STATUSES = ("required", "disclosed", "contested", "withdrawn")
CONSENT_STATUSES = ("granted", "withdrawn")


class PerkAward(RetainedMixin, ProvenanceMixin, db.Model):
    __tablename__ = "perk_awards"
    __table_args__ = (
        subject_index("perk_awards"),
        Index("ix_perk_awards_perk_status", "perk_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    perk_id: Mapped[int] = mapped_column(ForeignKey("perks.id"))
    status: Mapped[str] = mapped_column(String(20))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Disclosure(RetainedMixin, ProvenanceMixin, db.Model):
    """An FTC disclosure-list entry (16 CFR 255.5) for an award: a material connection."""

    __tablename__ = "disclosures"
    __table_args__ = (subject_index("disclosures"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    award_id: Mapped[int] = mapped_column(ForeignKey("perk_awards.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Promotion(ProvenanceMixin, db.Model):
    """A use of a member's name or likeness in a promotion."""

    __tablename__ = "promotions"
    __table_args__ = (subject_index("promotions"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    award_id: Mapped[int | None] = mapped_column(ForeignKey("perk_awards.id"), index=True)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"), index=True)
    audience: Mapped[str] = mapped_column(String(40))
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The text shown (carries the member's name): personal data.
    message_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    uses_likeness: Mapped[bool] = mapped_column(default=False)
    # Set when the promotion must not be shown any more (the award behind it was corrected,
    # the member objected, the consent was withdrawn).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(RetainedMixin, ProvenanceMixin, db.Model):
    __tablename__ = "consents"
    __table_args__ = (subject_index("consents"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    purpose: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))
    notice_version: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class Feedback(ProvenanceMixin, db.Model):
    __tablename__ = "feedback"
    __table_args__ = (subject_index("feedback"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    award_id: Mapped[int | None] = mapped_column(ForeignKey("perk_awards.id"), index=True)
    # Optional: a member may leave no rating at all, and may clear one they gave.
    rating: Mapped[int | None] = mapped_column(Integer)
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class FeedbackPicture(ProvenanceMixin, db.Model):
    __tablename__ = "feedback_pictures"
    __table_args__ = (subject_index("feedback_pictures"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id"), index=True)
    media_type: Mapped[str] = mapped_column(String(40))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)


class RecordHistory(db.Model):
    """One change to a platform record: what changed, why, by whom, on which request.

    ``changes_enc`` holds the before/after values (they may be personal data) under the
    subject's key; the other columns are safe to read without it.
    """

    __tablename__ = "record_history"
    __table_args__ = (
        subject_index("record_history"),
        Index("ix_record_history_record", "record_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # created | updated | anonymised
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(80))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    changes_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
