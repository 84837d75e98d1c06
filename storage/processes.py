"""What wrote a record, and what its values mean, in words a member understands — declared once
beside the data map (:mod:`storage.datamap`), read by the access report, the request pages and
the notices.

Every record and every history row carries its provenance: the *source* (the platform process
that wrote it, e.g. ``fulfilment-sync``) and the *actor* (which run or person, e.g.
``sync-job-0817``). A member reads "our fulfilment sync (job 0817)", never the raw names.
"""

import re
from dataclasses import dataclass


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
            "lethe",
            "privacy team",
            "The team and service that answer data protection requests.",
        ),
    )
}

# Values of status columns, in words.
STATUS_WORDS = {
    "not_received": "not received",
    "received": "received",
    "ineligible": "not eligible",
    "offered": "offered",
    "claimed": "claimed",
    "shipped": "shipped",
    "disclosed": "listed",
    "withdrawn": "withdrawn",
    "granted": "given",
    "active": "active",
    "closed": "closed",
}


def status_words(value) -> str:
    """A stored status value as words ("not received", never ``not_received``)."""
    if value is None:
        return "none"
    text = str(value)
    return STATUS_WORDS.get(text, text.replace("_", " "))


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
