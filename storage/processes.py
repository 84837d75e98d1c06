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

The words are declared in English, marked for the catalogue (:func:`storage.wording.N_`), and
translated where they are used (``gettext``): a page or an email reads them in its reader's
language, the dashboard and the JSON API in English. Phrases are whole ("our fulfilment sync",
"3 perk awards", "the emails we sent you"), never English grammar applied to a word, so each
language says them its own way.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from babel import dates
from flask import has_app_context
from flask_babel import gettext as _
from flask_babel import ngettext

from storage import wording
from storage.wording import N_


@dataclass(frozen=True)
class Process:
    key: str
    name: str  # "fulfilment sync"
    ours: str  # at the start of a sentence, as the one who did something: "our fulfilment sync"
    description: str


PROCESSES: dict[str, Process] = {
    p.key: p
    for p in (
        Process(
            "signup-web",
            N_("sign-up page"),
            N_("our sign-up page"),
            N_("The page where you joined the platform."),
        ),
        Process(
            "member-app", N_("member app"), N_("our member app"), N_("The app you use as a member.")
        ),
        Process(
            "scoring-service",
            N_("scoring service"),
            N_("our scoring service"),
            N_("Computes influence scores and topics from public social media activity."),
        ),
        Process(
            "award-engine",
            N_("perk award draw"),
            N_("our perk award draw"),
            N_("Draws which members are offered a campaign's perk."),
        ),
        Process(
            "eligibility-check",
            N_("eligibility check"),
            N_("our eligibility check"),
            N_("Checks that a member may receive a perk (for example where it can be shipped)."),
        ),
        Process(
            "fulfilment-sync",
            N_("fulfilment sync"),
            N_("our fulfilment sync"),
            N_("Copies shipping and delivery news from the fulfilment partner into perk awards."),
        ),
        Process(
            "fulfilment",
            N_("fulfilment partner"),
            N_("our fulfilment partner"),
            N_("Packs and ships perks."),
        ),
        Process(
            "carrier-webhook",
            N_("delivery carrier"),
            N_("our delivery carrier"),
            N_("Tells the platform a parcel arrived."),
        ),
        Process(
            "carrier",
            N_("delivery carrier"),
            N_("our delivery carrier"),
            N_("Tells the platform a parcel arrived."),
        ),
        Process(
            "disclosure-generator",
            N_("disclosure-list builder"),
            N_("our disclosure-list builder"),
            N_("Builds the public list of who received which perk (FTC endorsement rules)."),
        ),
        Process(
            "promo-service",
            N_("promotion service"),
            N_("our promotion service"),
            N_("Shows promotions naming members who received a perk."),
        ),
        Process(
            "feedback-form",
            N_("feedback form"),
            N_("our feedback form"),
            N_("Asks members to rate the perks they received."),
        ),
        Process(
            "consent-service",
            N_("consent screens"),
            N_("our consent screens"),
            N_("Where you give or withdraw your consent."),
        ),
        Process(
            "platform-account-page",
            N_("account page"),
            N_("our account page"),
            N_("Your account settings on the platform."),
        ),
        Process(
            "crm",
            N_("customer records system"),
            N_("our customer records system"),
            N_("Where the platform's staff keep members' account details."),
        ),
        Process(
            "crm-sync",
            N_("customer records sync"),
            N_("our customer records sync"),
            N_("Copies account details from the customer records system."),
        ),
        Process(
            "lethe",
            N_("privacy team"),
            N_("our privacy team"),
            N_("The team and service that answer data protection requests."),
        ),
    )
}

# Values of status columns, in words.
STATUS_WORDS = {
    # perk awards
    "offered": N_("offered"),
    "claimed": N_("claimed"),
    "shipped": N_("shipped"),
    "received": N_("received"),
    "not_received": N_("not received"),
    "ineligible": N_("not eligible"),
    "revoked": N_("taken back"),
    # disclosure-list entries
    "required": N_("due to be listed"),
    "disclosed": N_("listed"),
    "contested": N_("contested"),
    # consents
    "granted": N_("given"),
    "withdrawn": N_("withdrawn"),
    # accounts
    "active": N_("active"),
    "closed": N_("closed"),
}
# Where a status reads differently in one category (the data map's key) than in the others.
CATEGORY_STATUS_WORDS = {
    "disclosures": {"withdrawn": N_("taken off the list")},
    "rights_requests": {
        "received": N_("received"),
        "awaiting_verification": N_("waiting for you to confirm it"),
        "open": N_("open"),
        "in_progress": N_("being worked on"),
        "completed": N_("done"),
        "refused": N_("refused"),
        "withdrawn": N_("withdrawn"),
    },
    "notices": {
        "pending": N_("waiting to be sent"),
        "sent": N_("sent"),
        "dead": N_("could not be sent"),
    },
}


def words(code) -> str:
    """Any stored code as words: ``name_and_likeness`` reads "name and likeness"."""
    return str(code).replace("_", " ").replace("-", " ")


def _known(table: dict, code, fallback=None) -> str:
    """The words ``table`` declares for ``code``, translated; else the code as words."""
    said = table.get(code) if isinstance(code, str) else None
    return _(said) if said else (fallback if fallback is not None else words(code))


def status_words(value, category: str | None = None) -> str:
    """A stored status value as words ("not received", never ``not_received``); ``category``
    (a data map key) where a status reads differently there ("taken off the list")."""
    if value is None:
        return _("none")
    text = str(value)
    special = CATEGORY_STATUS_WORDS.get(category or "", {})
    said = special.get(text) or STATUS_WORDS.get(text)
    return _(said) if said else words(text)


# What a consent allowed.
PURPOSES = {
    "name_and_likeness": N_("the use of your name and picture in promotions"),
    "email_marketing": N_("marketing emails"),
    "profiling": N_("profiling for perk campaigns"),
    "sale_and_sharing": N_("selling or sharing your personal information"),
}
# Whom a promotion was shown to.
AUDIENCES = {
    "friends": N_("your friends"),
    "followers": N_("your followers"),
    "public": N_("the public"),
}
# A request by its type, as "your … request".
REQUEST_TYPES = {
    "access": N_("access"),
    "portability": N_("data copy"),
    "rectification": N_("correction"),
    "erasure": N_("erasure"),
    "restriction": N_("restriction"),
    "objection": N_("objection"),
    "consent_withdrawal": N_("consent withdrawal"),
}
# A request named in a sentence, by its type: "your correction request LR-7K2M-Q9PD".
REQUESTS = {
    "access": N_("your access request %(reference)s"),
    "portability": N_("your data copy request %(reference)s"),
    "rectification": N_("your correction request %(reference)s"),
    "erasure": N_("your erasure request %(reference)s"),
    "restriction": N_("your restriction request %(reference)s"),
    "objection": N_("your objection request %(reference)s"),
    "consent_withdrawal": N_("your consent withdrawal request %(reference)s"),
}
# A step of a request's timeline.
STEPS = {
    "received": N_("we received it"),
    "verification_sent": N_("we emailed you a link to confirm it"),
    "verified": N_("you confirmed it"),
    "started": N_("we started on it"),
    "assigned": N_("an officer took it on"),
    "information_requested": N_("we asked you a question"),
    "information_received": N_("you answered our question"),
    "records_held": N_("we held records back"),
    "extended": N_("we extended the deadline"),
    "approved": N_("we agreed to it"),
    "completed": N_("we completed it"),
    "refused": N_("we refused it"),
    "withdrawn": N_("it was withdrawn"),
    "restriction_lifting": N_("we told you we will stop holding records back"),
}
# What an email we sent was about.
TOPICS = {
    "notice.verify": N_("asking you to confirm your request"),
    "notice.received": N_("saying we received your request"),
    "notice.resume": N_("with a link to your request"),
    "notice.completed": N_("saying your request is done"),
    "notice.erased": N_("saying your data was erased"),
    "notice.extended": N_("saying we need more time"),
    "notice.refused": N_("saying we refused your request, and why"),
    "notice.withdrawn": N_("saying your request was withdrawn"),
    "notice.information_requested": N_("asking you a question about your request"),
    "notice.restriction_lifting": N_("saying we will stop holding records back"),
    "notice.incident": N_("about a fault in our records, with our apology"),
}
# How the channel a consent was given through, or a request came by, reads.
CHANNELS = {
    "web": N_("our website"),
    "api": N_("the platform, for you"),
    "officer": N_("our privacy team"),
    "email": N_("email"),
}


def purpose_words(purpose) -> str:
    """What a consent allowed: "marketing emails"."""
    return _known(PURPOSES, purpose)


def audience_words(audience) -> str:
    """Whom a promotion was shown to: "your friends"."""
    return _known(AUDIENCES, audience)


def request_words(type_) -> str:
    """A request's kind, as in "your correction request"."""
    return _known(REQUEST_TYPES, type_)


def request_phrase(type_, reference) -> str:
    """A request named in a sentence: "your correction request LR-7K2M-Q9PD"."""
    reference = reference or ""
    if type_ in REQUESTS:
        said = _(REQUESTS[type_], reference=reference)
    elif type_:
        said = _("your %(kind)s request %(reference)s", kind=words(type_), reference=reference)
    else:
        said = _("your request %(reference)s", reference=reference)
    return said.replace("  ", " ")


def step_words(kind) -> str:
    return _known(STEPS, kind)


def topic_words(topic) -> str:
    said = TOPICS.get(topic) if isinstance(topic, str) else None
    return _(said) if said else words(str(topic).removeprefix("notice."))


def channel_words(channel) -> str:
    """Where a consent was given or a request came from: a process, or a channel."""
    if channel in PROCESSES:
        return _(PROCESSES[channel].ours)
    return _known(CHANNELS, channel)


# How many records of a category, by the data map's key: "3 perk awards" (``count_words``).
COUNTS = {
    "profile": lambda n: ngettext("%(num)d account profile", "%(num)d account profiles", n),
    "influence_scores": lambda n: ngettext(
        "%(num)d influence score", "%(num)d influence scores", n
    ),
    "influence_topics": lambda n: ngettext(
        "%(num)d topic you are said to influence", "%(num)d topics you are said to influence", n
    ),
    "perk_awards": lambda n: ngettext("%(num)d perk award", "%(num)d perk awards", n),
    "disclosures": lambda n: ngettext(
        "%(num)d entry on a disclosure list", "%(num)d entries on disclosure lists", n
    ),
    "promotions": lambda n: ngettext(
        "%(num)d promotion using your name", "%(num)d promotions using your name", n
    ),
    "consents": lambda n: ngettext("%(num)d consent", "%(num)d consents", n),
    "feedback": lambda n: ngettext(
        "%(num)d feedback request or rating", "%(num)d feedback requests and ratings", n
    ),
    "feedback_pictures": lambda n: ngettext(
        "%(num)d feedback picture", "%(num)d feedback pictures", n
    ),
    "rights_requests": lambda n: ngettext("%(num)d request to us", "%(num)d requests to us", n),
    "request_messages": lambda n: ngettext(
        "%(num)d message about your requests", "%(num)d messages about your requests", n
    ),
    "evidence": lambda n: ngettext(
        "%(num)d file you sent with a request", "%(num)d files you sent with requests", n
    ),
    "notices": lambda n: ngettext("%(num)d email we sent you", "%(num)d emails we sent you", n),
    "recipient_ids": lambda n: ngettext(
        "%(num)d identifier a recipient uses for you",
        "%(num)d identifiers recipients use for you",
        n,
    ),
}
# The subject's records of a category, by the data map's key: "your perk awards" (``yours``):
# (one, more than one) — the number is not said, only whether there is one.
YOURS = {
    "profile": (N_("your account profile"), N_("your account profiles")),
    "influence_scores": (N_("your influence score"), N_("your influence scores")),
    "influence_topics": (
        N_("the topic you are said to influence"),
        N_("the topics you are said to influence"),
    ),
    "perk_awards": (N_("your perk award"), N_("your perk awards")),
    "disclosures": (N_("your entry on a disclosure list"), N_("your entries on disclosure lists")),
    "promotions": (N_("the promotion using your name"), N_("the promotions using your name")),
    "consents": (N_("your consent"), N_("your consents")),
    "feedback": (N_("your feedback request or rating"), N_("your feedback requests and ratings")),
    "feedback_pictures": (N_("your feedback picture"), N_("your feedback pictures")),
    "rights_requests": (N_("your request to us"), N_("your requests to us")),
    "request_messages": (
        N_("the message about your requests"),
        N_("the messages about your requests"),
    ),
    "evidence": (N_("the file you sent with a request"), N_("the files you sent with requests")),
    "notices": (N_("the email we sent you"), N_("the emails we sent you")),
    "recipient_ids": (
        N_("the identifier a recipient uses for you"),
        N_("the identifiers recipients use for you"),
    ),
}


def _title_words(category: str, title: str | None) -> str:
    """A category this file has no phrases for, by its (English, stored) title."""
    return _(title) if title else words(category)


def yours(category: str, n: int, title: str | None = None) -> str:
    """ "your perk awards", "the emails we sent you": the subject's records of a category."""
    if category in YOURS:
        one, many = YOURS[category]
        return _(one) if n == 1 else _(many)
    noun = in_sentence(title) if title else words(category)
    return _("the %(what)s", what=noun) if " you" in noun else _("your %(what)s", what=noun)


def count_words(category: str, n: int, title: str | None = None) -> str:
    """ "3 perk awards", "1 consent": how many records of a category (a data map key)."""
    if category in COUNTS:
        return COUNTS[category](n)
    return f"{n} {_title_words(category, title)}"


def date_words(value) -> str:
    """ "8 September 2026": a moment as a person writes the day it happened, in the language
    being written (:func:`storage.wording.long_date`; English where no app is running)."""
    if not has_app_context():
        return dates.format_date(_moment(value), "long", locale=wording.babel_locale(None))
    return wording.long_date(value)


def moment_words(value) -> str:
    """ "8 September 2026, 14:05 UTC": the day and the time (stored times are UTC)."""
    if not has_app_context():
        when = _moment(value)
        return f"{date_words(when)}, {when:%H:%M} UTC"
    return wording.date_and_time(value)


def _moment(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def cap(text: str) -> str:
    """The text as the start of a sentence or a heading."""
    return text[:1].upper() + text[1:]


def in_sentence(label: str) -> str:
    """A data map label (English, as declared) inside a sentence: English writes it in lower
    case ("postal address"); other languages keep its capitals (German nouns have them)."""
    said = _(label)
    return said.lower() if wording.current_language() == "en" else said


def join(items: list[str], most: int | None = None) -> str:
    """ "a, b and c"; past ``most`` items, "a, b and 12 more records"."""
    items = list(items)
    if most is not None and len(items) > most:
        more = len(items) - most
        items = items[:most] + [ngettext("%(num)d more record", "%(num)d more records", more)]
    if len(items) == 1:
        return items[0]
    return _("%(items)s and %(last)s", items=", ".join(items[:-1]), last=items[-1])


def process_name(source: str | None) -> str:
    """The process that wrote a record, by its human name."""
    if not source:
        return _("an unrecorded process")
    known = PROCESSES.get(source)
    return _(known.name) if known else source.replace("-", " ").replace("_", " ")


_RUN = re.compile(r"^[a-z-]*?(?:job|run|batch)-(?P<n>[0-9a-z]+)$")


def who(source: str | None, actor: str | None) -> str:
    """Who changed a record, as a code: "you" (the member), "team" (our privacy team) or
    "process" (a platform process)."""
    if actor in ("member", "subject"):
        return "you"
    if source == "lethe" or (actor or "").startswith("officer:"):
        return "team"
    return "process"


def by_whom(source: str | None, actor: str | None) -> str:
    """ "our fulfilment sync (job 0817)", "you", "our privacy team": who changed a record."""
    kind = who(source, actor)
    if kind == "you":
        return _("you")
    if kind == "team":
        return _("our privacy team")
    known = PROCESSES.get(source or "")
    if known:
        name = _(known.ours)
    elif source:
        name = _("our %(process)s", process=process_name(source))
    else:
        name = _("an unrecorded process")
    run = _RUN.match(actor or "")
    return _("%(who)s (job %(run)s)", who=name, run=run.group("n")) if run else name
