"""The data map: the one declaration of where personal data lives and what is done with it.

Access reports, portability exports, erasure, rectification, incidents, retention sweeps and
the Art. 30 record all read :data:`CATEGORIES`; none of them keeps its own list of tables, nor
its own idea of how the tables hang together: what is built on a record (and is held back or
corrected with it), which rows go before a record's own, which rows of a shared table a
category covers, and where a table's retention clock is read are declared here too. A category
names its retention policy by key; the policy itself (period, trigger, action) is a file in
``retention_policies/`` so that no period is stated twice. The queries these declarations
answer are in :mod:`storage.cascades`.
"""

from dataclasses import dataclass
from typing import Literal

from storage.models import (
    AuditEvent,
    Consent,
    Delivery,
    DeliveryAttempt,
    Disclosure,
    EvidenceAttachment,
    Feedback,
    FeedbackPicture,
    IdempotencyRecord,
    InfluenceScore,
    InfluenceTopic,
    Member,
    OutboxMessage,
    Perk,
    PerkAward,
    Promotion,
    Receipt,
    ReceiptRecord,
    RecipientIdentifier,
    RequestEvent,
    RetentionRun,
    RightsRequest,
    Subject,
    SuppressionTombstone,
    VerificationToken,
)
from storage.recipients import To
from storage.wording import N_

ErasureAction = Literal["delete", "anonymise", "retain"]


@dataclass(frozen=True)
class Field:
    """One column of a category as shown to the subject.

    ``kind``: ``text`` (plain column), ``encrypted`` (``*_enc`` column under the subject key),
    ``encrypted_json``, ``json``, ``datetime``, ``binary`` (encrypted bytes, e.g. a picture)
    or ``perk`` / ``award`` (a reference, shown as brand / campaign / item, or the award's
    number).
    """

    name: str
    column: str
    label: str
    kind: str = "text"
    provided_by_subject: bool = False


@dataclass(frozen=True)
class Erasure:
    action: ErasureAction
    # For "retain": the Art. 17(3) exception relied on, named for the subject.
    exception: str | None = None
    # For "anonymise": columns cleared; the row stays without a link to the person.
    clears: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dependant:
    """A category built on another's rows: its rows are held back while the row they are built
    on is contested, and corrected with it. ``via`` is the dependant's column holding that
    row's id."""

    category: str
    via: str


@dataclass(frozen=True)
class Child:
    """Rows of another table that refer to a category's rows and are deleted just before them
    (they mean nothing without the row: a message's delivery attempts)."""

    model: type
    via: str


@dataclass(frozen=True)
class Link:
    """The row of ``model`` a row belongs to, named by the row's ``via`` column."""

    model: type
    via: str


class _Now:
    """Stands for the moment a correction is made, in :class:`Correction` values."""

    def __repr__(self) -> str:
        return "NOW"


NOW = _Now()


@dataclass(frozen=True)
class Correction:
    """What an accepted correction makes of a record that was wrong, as (column, value) pairs
    set in this order (:data:`NOW`: the moment of correction). The first column tells whether
    the record already stands corrected: it holds the value (for :data:`NOW`, any time)."""

    values: tuple[tuple[str, object], ...]

    @property
    def marker(self) -> str:
        return self.values[0][0]

    def at(self, now) -> dict:
        """The values to set when correcting at ``now``."""
        return {column: now if value is NOW else value for column, value in self.values}

    def made(self, row) -> bool:
        """Whether ``row`` (an object) already stands corrected."""
        column, value = self.values[0]
        current = getattr(row, column)
        return current is not None if value is NOW else current == value

    def pending(self, model):
        """SQL: ``model``'s row does not stand corrected yet."""
        column, value = self.values[0]
        current = getattr(model, column)
        return current.is_(None) if value is NOW else current != value


@dataclass(frozen=True)
class Clock:
    """Where a table reads the moment its retention trigger happened, when that is not the
    trigger's usual column on the row itself.

    ``parent``: what happens to the row the rows belong to — the person's account closing, the
    request they came with closing — is read on that row, so their clocks start together.
    ``columns``: (trigger, column) pairs, for a trigger the table reads from a column of its
    own under another name.
    """

    parent: Link | None = None
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    description: str
    model: type
    fields: tuple[Field, ...]
    purposes: tuple[str, ...]
    legal_basis: str
    # Who receives it (:mod:`storage.recipients`); empty: nobody outside the platform.
    recipients: tuple[To, ...]
    source: str
    retention_policy: str
    erasure: Erasure
    subject_column: str = "subject_id"
    # Art. 22 / 15(1)(h): set when the category is produced by profiling.
    profiling: str | None = None
    # Whether the subject can see each record's provenance columns (source, actor, recorded_at).
    has_provenance: bool = True
    # Art. 30(1)(c): whose data this is.
    data_subjects: tuple[str, ...] = ("Members and former members of the platform",)
    # The rows of the table that belong to the category, when not all do: (column, values).
    where: tuple[str, tuple[str, ...]] | None = None
    # What is built on each row (held back and corrected with it), and what goes before it.
    dependants: tuple[Dependant, ...] = ()
    children: tuple[Child, ...] = ()
    # Art. 16: whether a subject can name a record as wrong by its external id (``aw-…``),
    # and what accepting that (or correcting the record it is built on) makes of it.
    contestable: bool = False
    correction: Correction | None = None
    clock: Clock = Clock()
    # The perk a row is about, whose campaign it belongs to (legal holds on a campaign); the
    # rows built on it belong to the same campaign.
    campaign: Link | None = None

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @property
    def portable_fields(self) -> tuple[Field, ...]:
        """Art. 20 covers data the subject provided (incl. observed), not what was inferred."""
        return tuple(f for f in self.fields if f.provided_by_subject)


INFLUENCE_EXPLANATION = N_(
    "Your influence score is computed automatically from public signals about your social "
    "media activity: follower counts, how often people engage with what you post, and how "
    "consistent that is over time (see 'factors' on each score for the weights used); topics "
    "are inferred from what you post about. "
    "You can ask for a person to review the score, give your view, and contest it (Art. 22(3)), "
    "and you can object to this profiling (Art. 21)."
)

CATEGORIES: tuple[Category, ...] = (
    Category(
        key="profile",
        title=N_("Account profile"),
        description=N_("Your membership account: contact details and the name shown to others."),
        model=Member,
        fields=(
            Field("member_id", "external_id", N_("Member number")),
            Field("email", "email_enc", N_("Email address"), "encrypted", True),
            Field("name", "name_enc", N_("Name"), "encrypted", True),
            Field("handle", "handle_enc", N_("Social media handle"), "encrypted", True),
            Field("address", "address_enc", N_("Postal address"), "encrypted", True),
            Field("status", "status", N_("Account status")),
            Field("joined_at", "joined_at", N_("Joined"), "datetime", True),
            Field("closed_at", "closed_at", N_("Closed"), "datetime"),
        ),
        purposes=(N_("Running your membership account"), N_("Shipping perks you accept")),
        legal_basis=N_("Art. 6(1)(b) GDPR: performance of the membership contract"),
        recipients=(To("email_provider"), To("brand", N_("your address, to ship a perk"))),
        source=N_("You, when you signed up or edited your profile"),
        retention_policy="profile",
        erasure=Erasure("delete"),
    ),
    Category(
        key="influence_scores",
        title=N_("Influence scores"),
        description=N_("Scores the platform computed about how influential you are online."),
        model=InfluenceScore,
        fields=(
            Field("score", "score", N_("Score")),
            Field("model_version", "model_version", N_("Scoring model")),
            Field("computed_at", "computed_at", N_("Computed"), "datetime"),
            Field("factors", "factors", N_("Factors and weights"), "json"),
        ),
        purposes=(N_("Matching members to perk campaigns"),),
        legal_basis=N_("Art. 6(1)(f) GDPR: legitimate interests in matching perks to members"),
        recipients=(To("campaign_brands", N_("your score band only")),),
        source=N_("Computed by the platform's scoring service from public social media activity"),
        retention_policy="influence_scores",
        erasure=Erasure("delete"),
        profiling=INFLUENCE_EXPLANATION,
    ),
    Category(
        key="influence_topics",
        title=N_("Topics you are said to influence"),
        description=N_("Topics the scoring service inferred you influence, with a weight each."),
        model=InfluenceTopic,
        fields=(
            Field("topic", "topic", N_("Topic")),
            Field("weight", "weight", N_("Weight")),
        ),
        purposes=(N_("Matching members to perk campaigns"),),
        legal_basis=N_("Art. 6(1)(f) GDPR: legitimate interests in matching perks to members"),
        recipients=(To("campaign_brands"),),
        source=N_("Inferred by the platform's scoring service from public social media activity"),
        retention_policy="influence_topics",
        erasure=Erasure("delete"),
        profiling=INFLUENCE_EXPLANATION,
    ),
    Category(
        key="perk_awards",
        title=N_("Perk awards"),
        description=N_("Perks you were offered, claimed, shipped or received, and their state."),
        model=PerkAward,
        fields=(
            Field("award_id", "external_id", N_("Award number")),
            Field("perk", "perk_id", N_("Perk"), "perk"),
            Field("status", "status", N_("Status")),
            Field("status_at", "status_at", N_("Status since"), "datetime"),
            Field("shipped_at", "shipped_at", N_("Shipped"), "datetime"),
            Field("received_at", "received_at", N_("Received"), "datetime"),
        ),
        purposes=(
            N_("Delivering perks"),
            N_("Keeping the records the FTC Endorsement Guides require"),
        ),
        legal_basis=N_(
            "Art. 6(1)(b) GDPR (delivering the perk); Art. 6(1)(c) (FTC record-keeping)"
        ),
        recipients=(To("brand"), To("fulfilment")),
        source=N_("The platform's perk award process"),
        retention_policy="perk_awards",
        erasure=Erasure(
            "retain",
            exception=N_(
                "Art. 17(3)(b) GDPR: compliance with a legal obligation (FTC Endorsement "
                "Guides, 16 CFR 255.5: records of material connections)"
            ),
        ),
        # A list entry saying the perk was received, a promotion saying it was won, and a
        # request to rate it (a solicitation: no "rate the phone you never got") all stand on
        # the award: while it is contested they are held back, and corrected with it.
        dependants=(
            Dependant("disclosures", via="award_id"),
            Dependant("promotions", via="award_id"),
            Dependant("feedback", via="award_id"),
        ),
        contestable=True,
        # Wrong about an award means it never arrived: "not received" from now.
        correction=Correction(
            (("status", "not_received"), ("status_at", NOW), ("received_at", None))
        ),
        campaign=Link(Perk, via="perk_id"),
    ),
    Category(
        key="disclosures",
        title=N_("Disclosure-list entries"),
        description=N_(
            "Entries on the FTC disclosure lists saying you received a free product, handed to "
            "the brand and, on request, to regulators."
        ),
        model=Disclosure,
        fields=(
            Field("disclosure_id", "external_id", N_("Entry number")),
            Field("award_id", "award_id", N_("Award number"), "award"),
            Field("status", "status", N_("Status")),
            Field("listed_at", "listed_at", N_("Listed"), "datetime"),
        ),
        purposes=(N_("Disclosing material connections under the FTC Endorsement Guides"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (16 CFR 255.5)"),
        recipients=(To("brand"), To("list_consumers"), To("regulators")),
        source=N_("Generated by the platform from perk awards"),
        retention_policy="disclosures",
        erasure=Erasure(
            "retain",
            exception=N_("Art. 17(3)(b) GDPR: compliance with a legal obligation (16 CFR 255.5)"),
        ),
        contestable=True,
        correction=Correction((("status", "withdrawn"),)),
    ),
    Category(
        key="promotions",
        title=N_("Promotions using your name or likeness"),
        description=N_("Each time your name or picture was shown in a promotion, and to whom."),
        model=Promotion,
        fields=(
            Field("promotion_id", "external_id", N_("Promotion number")),
            Field("award_id", "award_id", N_("Award number"), "award"),
            Field("audience", "audience", N_("Shown to")),
            Field("shown_at", "shown_at", N_("Shown"), "datetime"),
            Field("message", "message_enc", N_("Text shown"), "encrypted"),
            Field("uses_likeness", "uses_likeness", N_("Used your picture")),
            Field("consent_id", "consent_id", N_("Consent relied on (internal number)")),
            Field("withdrawn_at", "withdrawn_at", N_("Withdrawn"), "datetime"),
        ),
        purposes=(N_("Promoting campaigns with members' names and likeness"),),
        legal_basis=N_("Art. 6(1)(a) GDPR: your consent to the use of your name and likeness"),
        recipients=(To("ad_system"), To("audience")),
        source=N_("The platform's promotion service"),
        retention_policy="promotions",
        erasure=Erasure("delete"),
        contestable=True,
        correction=Correction((("withdrawn_at", NOW),)),
    ),
    Category(
        key="consents",
        title=N_("Consents"),
        description=N_("What you agreed to, under which notice, and when you withdrew it."),
        model=Consent,
        fields=(
            Field("consent_id", "external_id", N_("Consent number")),
            Field("purpose", "purpose", N_("Purpose"), provided_by_subject=True),
            Field("status", "status", N_("Status"), provided_by_subject=True),
            Field(
                "notice_version", "notice_version", N_("Notice version"), provided_by_subject=True
            ),
            Field("channel", "channel", N_("Given through"), provided_by_subject=True),
            Field("granted_at", "granted_at", N_("Granted"), "datetime", True),
            Field("withdrawn_at", "withdrawn_at", N_("Withdrawn"), "datetime", True),
        ),
        purposes=(N_("Proving consent was given (Art. 7(1))"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: obligation to demonstrate consent (Art. 7(1))"),
        recipients=(),
        source=N_("You, through the platform's consent screens"),
        retention_policy="consents",
        erasure=Erasure(
            "retain",
            exception=N_(
                "Art. 17(3)(e) GDPR: establishment, exercise or defence of legal claims "
                "(proof of what was consented to, and when)"
            ),
        ),
        contestable=True,
        # A consent ends when it is withdrawn or, failing that, when the account closes.
        clock=Clock(parent=Link(Subject, via="subject_id")),
    ),
    Category(
        key="feedback",
        title=N_("Feedback"),
        description=N_("Ratings and comments you left about perks."),
        model=Feedback,
        fields=(
            Field("award_id", "award_id", N_("Award number"), "award"),
            Field("rating", "rating", N_("Rating (1-5, may be empty)"), provided_by_subject=True),
            Field("text", "text_enc", N_("Comment"), "encrypted", True),
        ),
        purposes=(N_("Improving perk campaigns"),),
        legal_basis=N_("Art. 6(1)(f) GDPR: legitimate interests in improving campaigns"),
        recipients=(To("brand", N_("without your name")),),
        source=N_("You, through the feedback form"),
        retention_policy="feedback",
        erasure=Erasure("delete"),
        dependants=(Dependant("feedback_pictures", via="feedback_id"),),
    ),
    Category(
        key="feedback_pictures",
        title=N_("Feedback pictures"),
        description=N_("Pictures you attached to feedback."),
        model=FeedbackPicture,
        fields=(
            Field("feedback_id", "feedback_id", N_("Feedback (internal number)")),
            Field("media_type", "media_type", N_("Format"), provided_by_subject=True),
            Field("content", "content_enc", N_("Picture"), "binary", True),
        ),
        purposes=(N_("Improving perk campaigns"),),
        legal_basis=N_("Art. 6(1)(f) GDPR: legitimate interests in improving campaigns"),
        recipients=(To("brand"),),
        source=N_("You, through the feedback form"),
        retention_policy="feedback_pictures",
        erasure=Erasure("delete"),
    ),
    Category(
        key="rights_requests",
        title=N_("Your requests to us"),
        description=N_("The data protection requests you made, and how we answered them."),
        model=RightsRequest,
        fields=(
            Field("reference", "reference", N_("Reference")),
            Field("type", "type", N_("Right exercised"), provided_by_subject=True),
            Field("status", "status", N_("Status")),
            Field("received_at", "received_at", N_("Received"), "datetime", True),
            Field("due_at", "due_at", N_("Answer due"), "datetime"),
            Field("completed_at", "completed_at", N_("Completed"), "datetime"),
            Field("details", "details_enc", N_("What you told us"), "encrypted_json", True),
            Field("contact", "contact_enc", N_("Address we write to"), "encrypted", True),
        ),
        purposes=(N_("Answering data protection requests and proving we did"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (Arts. 12 to 22)"),
        recipients=(),
        source=N_("You, through the request form or the platform acting for you"),
        retention_policy="rights_requests",
        data_subjects=("Anyone who makes a data protection request, member or not",),
        erasure=Erasure(
            "retain",
            exception=N_(
                "Art. 17(3)(e) GDPR: defence of legal claims (proof the request was answered)"
            ),
        ),
        has_provenance=False,
    ),
    Category(
        key="request_messages",
        title=N_("Messages about your requests"),
        description=N_(
            "Questions our officers asked you about a request, your answers, and the "
            "reasons they recorded for their decisions."
        ),
        model=RequestEvent,
        fields=(
            Field("at", "at", N_("When"), "datetime"),
            Field("step", "kind", N_("Step")),
            Field("text", "note_enc", N_("What was written"), "encrypted", True),
        ),
        purposes=(N_("Answering data protection requests and proving we did"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (Arts. 12 to 22)"),
        recipients=(),
        source=N_("You, and the officers handling your requests"),
        retention_policy="request_messages",
        clock=Clock(parent=Link(RightsRequest, via="request_id")),
        data_subjects=("Anyone who makes a data protection request, member or not",),
        erasure=Erasure(
            "retain",
            exception=N_(
                "Art. 17(3)(e) GDPR: defence of legal claims (proof the request was "
                "answered); what people wrote becomes unreadable with your key"
            ),
        ),
        has_provenance=False,
    ),
    Category(
        key="evidence",
        title=N_("Evidence you sent with a request"),
        description=N_(
            "Pictures and documents you attached to a request, e.g. to show a record is wrong."
        ),
        model=EvidenceAttachment,
        fields=(
            Field("request", "request_id", N_("Request (internal number)")),
            Field("media_type", "media_type", N_("Format"), provided_by_subject=True),
            Field("content", "content_enc", N_("File"), "binary", True),
            Field("received_at", "created_at", N_("Received"), "datetime"),
        ),
        purposes=(N_("Deciding the request the evidence was sent with"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (Arts. 12 to 22)"),
        recipients=(),
        source=N_("You, through the request form"),
        retention_policy="evidence",
        clock=Clock(parent=Link(RightsRequest, via="request_id")),
        data_subjects=("Anyone who makes a data protection request, member or not",),
        erasure=Erasure("delete"),
        has_provenance=False,
    ),
    Category(
        key="notices",
        title=N_("Messages we sent you"),
        description=N_("The emails Lethe wrote to you about your requests, and when they went."),
        model=OutboxMessage,
        fields=(
            Field("topic", "topic", N_("Kind of message")),
            Field("written_at", "created_at", N_("Written"), "datetime"),
            Field("sent_at", "sent_at", N_("Sent"), "datetime"),
            Field("status", "status", N_("Delivery")),
            Field(
                "message", "payload_enc", N_("Message (address, subject, text)"), "encrypted_json"
            ),
        ),
        purposes=(N_("Telling you about your requests, as Art. 12 requires"),),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (Art. 12)"),
        recipients=(To("email_provider"),),
        source=N_("Lethe"),
        retention_policy="notices",
        data_subjects=("Anyone who makes a data protection request, member or not",),
        erasure=Erasure("delete"),
        has_provenance=False,
        # The outbox also carries webhook events and jobs: only emails are notices to a person.
        where=("kind", ("email",)),
        children=(Child(DeliveryAttempt, via="outbox_id"),),
    ),
    Category(
        key="recipient_ids",
        title=N_("What our recipients call you"),
        description=N_(
            "The identifier a recipient of your data (a brand, the ad system) uses for "
            "you, so that when you correct, restrict or erase data we can tell them which person "
            "it is about."
        ),
        model=RecipientIdentifier,
        fields=(
            Field("recipient", "subscriber_id", N_("Recipient (number)")),
            Field("identifier", "identifier_enc", N_("Their identifier for you"), "encrypted"),
            Field("recorded_at", "created_at", N_("Recorded"), "datetime"),
        ),
        purposes=(
            N_("Telling recipients of your data about your corrections and erasure (Art. 19)"),
        ),
        legal_basis=N_("Art. 6(1)(c) GDPR: legal obligation (Art. 19)"),
        recipients=(),
        source=N_("The platform, from what each recipient uses"),
        retention_policy="recipient_ids",
        erasure=Erasure("delete"),
        has_provenance=False,
        # Kept while the account is open: the clock is the account's, on the subject (the
        # member row itself goes 30 days after closing).
        clock=Clock(parent=Link(Subject, via="subject_id")),
    ),
)

BY_KEY: dict[str, Category] = {c.key: c for c in CATEGORIES}
BY_TABLE: dict[str, Category] = {c.table: c for c in CATEGORIES}


def category_of(record_or_model) -> Category | None:
    """The category a row (or a model) belongs to; None for a table the map does not list."""
    return BY_TABLE.get(record_or_model.__tablename__)


def contestable() -> tuple[Category, ...]:
    """The categories a subject can name a record of as wrong, by its external id."""
    return tuple(c for c in CATEGORIES if c.contestable)


def built_on(cat: Category) -> tuple[Category, str] | None:
    """The category whose rows ``cat``'s rows are built on, with the column naming the row."""
    for parent in CATEGORIES:
        for dependant in parent.dependants:
            if dependant.category == cat.key:
                return parent, dependant.via
    return None


def depth(cat: Category) -> int:
    """How many categories ``cat`` stands on, one on another (0: none). A correction reaches
    a record before what stands on it."""
    below = built_on(cat)
    return 0 if below is None else 1 + depth(below[0])


@dataclass(frozen=True)
class LedgerRecord:
    """A kind of record Lethe keeps about its own work (no personal data in clear, or only
    pseudonymous references): retained by a policy like any category, listed in the Art. 30
    record, but not part of a subject's access report. ``where`` narrows the table to the
    rows the policy governs (a column and the values it may take)."""

    key: str
    title: str
    description: str
    model: type
    retention_policy: str
    subject_column: str | None = None
    where: tuple[str, tuple[str, ...]] | None = None
    clock: Clock = Clock()
    # "rows": swept row by row; "chain": the audit trail, pruned only up to a signed
    # checkpoint so that what is left still verifies (rights/ledger/audit_checkpoints.py).
    swept_as: str = "rows"


LEDGER_RECORDS: tuple[LedgerRecord, ...] = (
    LedgerRecord(
        key="receipts",
        title="Deletion receipts",
        description="Signed receipts of erasures (a pseudonymous reference, counts, dates), "
        "and the fingerprint of each record key.",
        model=Receipt,
        retention_policy="receipts",
    ),
    LedgerRecord(
        key="receipt_copies",
        title="Deletion receipts (key store copy)",
        description="The key store's copy of each receipt, so that a restored backup of the "
        "main database cannot stop a record key from opening its statement.",
        model=ReceiptRecord,
        retention_policy="receipts",
    ),
    LedgerRecord(
        key="tombstones",
        title="Suppression tombstones",
        description="Keyed fingerprints of erased people's identifiers, in the key store: "
        "they stop re-ingestion and let a restored backup replay every erasure.",
        model=SuppressionTombstone,
        retention_policy="tombstones",
        subject_column="subject_id",
    ),
    LedgerRecord(
        key="webhook_deliveries",
        title="Webhook deliveries",
        description="Which recipient was told what, when, and whether it confirmed.",
        model=Delivery,
        retention_policy="webhook_deliveries",
        where=("status", ("delivered", "confirmed", "dead")),
    ),
    LedgerRecord(
        key="webhook_events",
        title="Webhook events",
        description="The events recipients were told (pseudonymous reference, record ids); "
        "each goes once none of its deliveries is kept.",
        model=OutboxMessage,
        retention_policy="webhook_deliveries",
        where=("kind", ("event",)),
        # An event is settled once written: its deliveries are kept, and go, before it.
        clock=Clock(columns=(("delivery_settled", "created_at"),)),
    ),
    LedgerRecord(
        key="audit_events",
        title="Audit trail",
        description="Who did what and when (actors, actions, pseudonymous references), chained "
        "by a keyed hash with signed checkpoints.",
        model=AuditEvent,
        retention_policy="audit_events",
        swept_as="chain",
    ),
    LedgerRecord(
        key="verification_tokens",
        title="Emailed links",
        description="A fingerprint (SHA-256) of each single-use link emailed to confirm a "
        "request, with when it expires and was used.",
        model=VerificationToken,
        retention_policy="verification_tokens",
    ),
    LedgerRecord(
        key="idempotency_records",
        title="Answers to retried API calls",
        description="The answer given to each API call made with an Idempotency-Key, replayed "
        "if the caller retries (it may name members by their platform id).",
        model=IdempotencyRecord,
        retention_policy="idempotency_records",
    ),
    LedgerRecord(
        key="retention_runs",
        title="Retention runs",
        description="What each sweep found and did, in counts.",
        model=RetentionRun,
        retention_policy="retention_runs",
    ),
)
