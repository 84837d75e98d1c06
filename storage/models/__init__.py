"""All models, importable from one place. Split by area: platform records (``platform``); the
rights ledger — requests (``requests``), side effects and their delivery (``delivery``),
officers and API keys (``accounts``), authorized agents (``agents``), the audit trail
(``audit``), what erasure leaves (``erasure``), retention (``retention``), restrictions and
incidents (``contest``), the leases on work one worker at a time may do (``leases``), the
transparency log (``transparency``); and the key store (``keystore``, a separate database,
where some of the others' tables live too)."""

from storage.models.accounts import ApiKey, Officer
from storage.models.agents import Agent, AgentMessageSeen, DrpRequest
from storage.models.audit import AuditCheckpoint, AuditEvent, SigningKey
from storage.models.contest import Incident, IncidentRecord, Restriction
from storage.models.delivery import (
    Delivery,
    DeliveryAttempt,
    OutboxMessage,
    RecipientIdentifier,
    RecipientNotice,
    Subscriber,
)
from storage.models.erasure import ErasureRun, Receipt, ReceiptRecord, SuppressionTombstone
from storage.models.keystore import KeyEpoch, SubjectKey
from storage.models.leases import WorkerLease
from storage.models.platform import (
    Brand,
    Campaign,
    Consent,
    Disclosure,
    Feedback,
    FeedbackPicture,
    InfluenceScore,
    InfluenceTopic,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RecordHistory,
    Subject,
)
from storage.models.requests import (
    EvidenceAttachment,
    IdempotencyRecord,
    RequestEvent,
    RequestStatus,
    RequestType,
    RightsRequest,
    VerificationToken,
)
from storage.models.retention import LegalHold, RetentionRun
from storage.models.transparency import LogCheckpoint, LogLeaf, LogNode, LogPending

__all__ = [
    "Agent",
    "AgentMessageSeen",
    "ApiKey",
    "AuditCheckpoint",
    "AuditEvent",
    "Brand",
    "Campaign",
    "Consent",
    "Delivery",
    "DeliveryAttempt",
    "Disclosure",
    "DrpRequest",
    "ErasureRun",
    "EvidenceAttachment",
    "Feedback",
    "FeedbackPicture",
    "IdempotencyRecord",
    "Incident",
    "IncidentRecord",
    "LegalHold",
    "LogCheckpoint",
    "LogLeaf",
    "LogNode",
    "LogPending",
    "InfluenceScore",
    "InfluenceTopic",
    "Member",
    "Officer",
    "OutboxMessage",
    "Perk",
    "PerkAward",
    "Promotion",
    "Receipt",
    "ReceiptRecord",
    "RecordHistory",
    "Restriction",
    "RequestEvent",
    "RequestStatus",
    "RequestType",
    "RetentionRun",
    "RightsRequest",
    "SigningKey",
    "Subject",
    "SubjectKey",
    "KeyEpoch",
    "RecipientIdentifier",
    "RecipientNotice",
    "Subscriber",
    "SuppressionTombstone",
    "VerificationToken",
    "WorkerLease",
]
