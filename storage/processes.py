"""What wrote a record, and what its values mean, in words a member understands — declared once
beside the data map (:mod:`storage.datamap`), read by the access report, the request pages and
the notices.

Every record and every history row carries its provenance: the *source* (the platform process
that wrote it, e.g. ``fulfilment-sync``) and the *actor* (which run or person, e.g.
``sync-job-0817``). A member reads "our fulfilment sync (job 0817)", never the raw names.

The other stored codes a member meets — status values, what a consent allowed, whom a
promotion was shown to, the kind of a request, a step of its timeline, the topic of an email,
how many records of a kind — read in words here too: "not received", never ``not_received``.
A code this file does not know still reads as words (its underscores and hyphens as spaces).
So do lists ("a, b and c": :func:`join`). Only words: nothing here reads the database; what
names a record from what it points to is :mod:`rights.holdings.names`.
"""

import re
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Process:
    key: str
    name: str  # reads after "our" / at the start of a sentence: "our fulfilment sync"
    description: str


PROCESSES: dict[str, Process] = {
    p.key: p
    for p in (
        Process("signup-web", "sign-up page", "The page where you joined the platform."),
        Process("member-app", "member app", "The app you use as a member."),
        Process(
            "scoring-service",
            "scoring service",
            "Computes influence scores and topics from public social media activity.",
        ),
        Process(
            "award-engine", "perk award draw", "Draws which members are offered a campaign's perk."
        ),
        Process(
            "eligibility-check",
            "eligibility check",
            "Checks that a member may receive a perk (for example where it can be shipped).",
        ),
        Process(
            "fulfilment-sync",
            "fulfilment sync",
            "Copies shipping and delivery news from the fulfilment partner into perk awards.",
        ),
        Process("fulfilment", "fulfilment partner", "Packs and ships perks."),
        Process("carrier-webhook", "delivery carrier", "Tells the platform a parcel arrived."),
        Process("carrier", "delivery carrier", "Tells the platform a parcel arrived."),
        Process(
            "disclosure-generator",
            "disclosure-list builder",
            "Builds the public list of who received which perk (FTC endorsement rules).",
        ),
        Process(
            "promo-service",
            "promotion service",
            "Shows promotions naming members who received a perk.",
        ),
        Process("feedback-form", "feedback form", "Asks members to rate the perks they received."),
        Process("consent-service", "consent screens", "Where you give or withdraw your consent."),
        Process(
            "platform-account-page",
            "account page",
            "Your account settings on the platform.",
        ),
        Process(
            "crm",
            "customer records system",
            "Where the platform's staff keep members' account details.",
        ),
        Process(
            "crm-sync",
            "customer records sync",
            "Copies account details from the customer records system.",
        ),
        Process(
            "lethe",
            "privacy team",
            "The team and service that answer data protection requests.",
        ),
    )
}

# Values of status columns, in words.
STATUS_WORDS = {
    # perk awards
    "offered": "offered",
    "claimed": "claimed",
    "shipped": "shipped",
    "received": "received",
    "not_received": "not received",
    "ineligible": "not eligible",
    "revoked": "taken back",
    # disclosure-list entries
    "required": "due to be listed",
    "disclosed": "listed",
    "contested": "contested",
    # consents
    "granted": "given",
    "withdrawn": "withdrawn",
    # accounts
    "active": "active",
    "closed": "closed",
}
# Where a status reads differently in one category (the data map's key) than in the others.
CATEGORY_STATUS_WORDS = {
    "disclosures": {"withdrawn": "taken off the list"},
    "rights_requests": {
        "received": "received",
        "awaiting_verification": "waiting for you to confirm it",
        "open": "open",
        "in_progress": "being worked on",
        "completed": "done",
        "refused": "refused",
        "withdrawn": "withdrawn",
    },
    "notices": {"pending": "waiting to be sent", "sent": "sent", "dead": "could not be sent"},
}


def words(code) -> str:
    """Any stored code as words: ``name_and_likeness`` reads "name and likeness"."""
    return str(code).replace("_", " ").replace("-", " ")


def status_words(value, category: str | None = None) -> str:
    """A stored status value as words ("not received", never ``not_received``); ``category``
    (a data map key) where a status reads differently there ("taken off the list")."""
    if value is None:
        return "none"
    text = str(value)
    special = CATEGORY_STATUS_WORDS.get(category or "", {})
    return special.get(text) or STATUS_WORDS.get(text) or words(text)


# What a consent allowed.
PURPOSES = {
    "name_and_likeness": "the use of your name and picture in promotions",
    "email_marketing": "marketing emails",
    "profiling": "profiling for perk campaigns",
}
# Whom a promotion was shown to.
AUDIENCES = {"friends": "your friends", "followers": "your followers", "public": "the public"}
# A request by its type, as "your … request".
REQUEST_TYPES = {
    "access": "access",
    "portability": "data copy",
    "rectification": "correction",
    "erasure": "erasure",
    "restriction": "restriction",
    "objection": "objection",
    "consent_withdrawal": "consent withdrawal",
}
# A step of a request's timeline.
STEPS = {
    "received": "we received it",
    "verification_sent": "we emailed you a link to confirm it",
    "verified": "you confirmed it",
    "started": "we started on it",
    "assigned": "an officer took it on",
    "information_requested": "we asked you a question",
    "information_received": "you answered our question",
    "records_held": "we held records back",
    "extended": "we extended the deadline",
    "approved": "we agreed to it",
    "completed": "we completed it",
    "refused": "we refused it",
    "withdrawn": "it was withdrawn",
    "restriction_lifting": "we told you we will stop holding records back",
}
# What an email we sent was about.
TOPICS = {
    "notice.verify": "asking you to confirm your request",
    "notice.received": "saying we received your request",
    "notice.resume": "with a link to your request",
    "notice.completed": "saying your request is done",
    "notice.erased": "saying your data was erased",
    "notice.extended": "saying we need more time",
    "notice.refused": "saying we refused your request, and why",
    "notice.withdrawn": "saying your request was withdrawn",
    "notice.information_requested": "asking you a question about your request",
    "notice.restriction_lifting": "saying we will stop holding records back",
    "notice.incident": "about a fault in our records, with our apology",
}
# How the channel a consent was given through, or a request came by, reads.
CHANNELS = {
    "web": "our website",
    "api": "the platform, for you",
    "officer": "our privacy team",
    "email": "email",
}


def purpose_words(purpose) -> str:
    """What a consent allowed: "marketing emails"."""
    return PURPOSES.get(purpose) or words(purpose)


def audience_words(audience) -> str:
    """Whom a promotion was shown to: "your friends"."""
    return AUDIENCES.get(audience) or words(audience)


def request_words(type_) -> str:
    """A request's kind, as in "your correction request"."""
    return REQUEST_TYPES.get(type_) or words(type_)


def step_words(kind) -> str:
    return STEPS.get(kind) or words(kind)


def topic_words(topic) -> str:
    return TOPICS.get(topic) or words(str(topic).removeprefix("notice."))


def channel_words(channel) -> str:
    """Where a consent was given or a request came from: a process, or a channel."""
    if channel in PROCESSES:
        return f"our {PROCESSES[channel].name}"
    return CHANNELS.get(channel) or words(channel)


# How many records of a category: (one, many), by the data map's key.
NOUNS = {
    "profile": ("account profile", "account profiles"),
    "influence_scores": ("influence score", "influence scores"),
    "influence_topics": ("topic you are said to influence", "topics you are said to influence"),
    "perk_awards": ("perk award", "perk awards"),
    "disclosures": ("entry on a disclosure list", "entries on disclosure lists"),
    "promotions": ("promotion using your name", "promotions using your name"),
    "consents": ("consent", "consents"),
    "feedback": ("feedback request or rating", "feedback requests and ratings"),
    "feedback_pictures": ("feedback picture", "feedback pictures"),
    "rights_requests": ("request to us", "requests to us"),
    "request_messages": ("message about your requests", "messages about your requests"),
    "evidence": ("file you sent with a request", "files you sent with requests"),
    "notices": ("email we sent you", "emails we sent you"),
    "recipient_ids": ("identifier a recipient uses for you", "identifiers recipients use for you"),
}


def noun_words(category: str, n: int, title: str | None = None) -> str:
    """ "perk award" or "perk awards": a record of a category (a data map key), or many."""
    one, many = NOUNS.get(category) or (title or words(category), title or words(category))
    return one if n == 1 else many


def yours(category: str, n: int, title: str | None = None) -> str:
    """ "your perk awards", "the emails we sent you": the subject's records of a category."""
    noun = noun_words(category, n, title)
    return f"{'the' if ' you' in noun else 'your'} {noun}"


def count_words(category: str, n: int, title: str | None = None) -> str:
    """ "3 perk awards", "1 consent": how many records of a category (a data map key)."""
    return f"{n} {noun_words(category, n, title)}"


def date_words(value) -> str:
    """ "8 September 2026": a moment as a person writes the day it happened."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%B %Y}"


def moment_words(value) -> str:
    """ "8 September 2026, 14:05 UTC": the day and the time (stored times are UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{date_words(value)}, {value:%H:%M} UTC"


def cap(text: str) -> str:
    """The text as the start of a sentence or a heading."""
    return text[:1].upper() + text[1:]


def join(items: list[str], most: int | None = None) -> str:
    """ "a, b and c"; past ``most`` items, "a, b and 12 more records"."""
    items = list(items)
    if most is not None and len(items) > most:
        items = items[:most] + [f"{len(items) - most} more records"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def process_name(source: str | None) -> str:
    """The process that wrote a record, by its human name."""
    if not source:
        return "an unrecorded process"
    known = PROCESSES.get(source)
    return known.name if known else source.replace("-", " ").replace("_", " ")


_RUN = re.compile(r"^[a-z-]*?(?:job|run|batch)-(?P<n>[0-9a-z]+)$")


def by_whom(source: str | None, actor: str | None) -> str:
    """ "our fulfilment sync (job 0817)", "you", "our privacy team": who changed a record."""
    if actor in ("member", "subject"):
        return "you"
    if source == "lethe" or (actor or "").startswith("officer:"):
        return "our privacy team"
    name = f"our {process_name(source)}"
    run = _RUN.match(actor or "")
    return f"{name} (job {run.group('n')})" if run else name
