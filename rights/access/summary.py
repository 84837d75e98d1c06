"""The access report in short, and its records in words (Art. 12(1): concise, intelligible and
in clear and plain language).

:func:`build` says, for one subject, what the first screen of their report — and of each of
their request pages — tells before any legal detail: what we hold (by category, with counts),
who we gave it to (the data map's recipients of the categories they have records in), what is
held back (Art. 18 restrictions in force) or being corrected (open rectification requests),
and how each record with a troubled history got that way, one sentence per change ("On 9
September 2026 our fulfilment sync (job 0817) marked your Nova X1 phone as received. No
shipment was recorded."). The report itself names its records and tells their history in the
same words (:class:`Names`, :func:`story`).

A record's history is *troubled* when a process other than the member set a status its own
history does not bear out — an award marked received with no shipment recorded, a record moved
out of a state that closes it (an award found not eligible, taken back or corrected to not
received; a list entry taken off the list; a consent withdrawn; a promotion withdrawn) — or
when our privacy team corrected it (a rectification accepted, an incident's correction). The
story of a troubled award includes what is built on it (its list entry, promotion and request
to rate it: the data map's dependants), for that is what the member saw. Ordinary lives —
offered, claimed, shipped, received — are not troubled, however many processes wrote them.

Reads only, in batches: one query per category (or one for all of them), never one per record.
"""

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from storage import vault
from storage.clock import utcnow
from storage.datamap import BY_KEY, BY_TABLE, CATEGORIES, built_on
from storage.db import db
from storage.models import (
    Brand,
    Consent,
    Perk,
    PerkAward,
    RecordHistory,
    Restriction,
    RightsRequest,
    Subject,
    Subscriber,
)
from storage.processes import (
    audience_words,
    by_whom,
    count_words,
    date_words,
    purpose_words,
    request_words,
    status_words,
    step_words,
    topic_words,
    words,
    yours,
)

# The categories whose records have a story worth telling: what a member can contest, what is
# built on it, and their account.
STORY = ("profile", "perk_awards", "disclosures", "promotions", "consents", "feedback")
# States that close a record: a process moving it out of one has overruled a "no".
CLOSED = {
    "perk_awards": {"ineligible", "revoked", "not_received"},
    "disclosures": {"withdrawn"},
    "consents": {"withdrawn"},
}
# Requests the subject made whose changes our privacy team carried out for them.
ASKED = ("rectification", "consent_withdrawal", "objection", "restriction")
OPEN = ("open", "in_progress")
NO_SHIPMENT = "No shipment was recorded."
_INCIDENT = re.compile(r"\bincident (INC-[0-9A-Z]+)")


def join(items: list[str], most: int | None = None) -> str:
    """ "a, b and c"; past ``most`` items, "a, b and 12 more records"."""
    items = list(items)
    if most is not None and len(items) > most:
        items = items[:most] + [f"{len(items) - most} more records"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def iso(value):
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def history_entry(row, subject_id: str) -> dict:
    """One :class:`RecordHistory` row (Core) as the report has it, its changes unsealed."""
    return {
        "action": row.action,
        "at": iso(row.changed_at),
        "source": row.source,
        "actor": row.actor,
        "reason": row.reason,
        "request_id": row.request_id,
        "changes": vault.decrypt_json(subject_id, "record_history.changes_enc", row.changes_enc),
    }


# --- Naming records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    what: str  # the record in full: "your Nova X1 phone from Nova Mobile"
    short: str  # named again in a sentence: "your Nova X1 phone"
    about: str  # what a record built on an award is about ("your Nova X1 phone"), or ``short``
    reference: str | None  # the platform's id ("aw-0001-nova"): how the person names it to us


class Names:
    """Names records by what they are. What that takes — the perk of each award, the
    reference of each request, what each consent allowed, each recipient's name — is loaded
    by :meth:`load` for a whole batch of rows at once: one query per kind, never per record."""

    def __init__(self):
        self.perks: dict[int, tuple[str, str]] = {}  # award id -> (item, brand)
        self.requests: dict[str, tuple[str, str]] = {}  # request id -> (reference, type)
        self.consents: dict[int, str] = {}  # consent id -> purpose
        self.subscribers: dict[int, str] = {}  # subscriber id -> name

    def load(self, key: str, rows, history=()) -> None:
        """Everything needed to name ``rows`` of category ``key`` and tell ``history``."""
        awards = {r.id for r in rows} if key == "perk_awards" else set()
        awards |= {getattr(r, "award_id", None) for r in rows}
        requests = {getattr(r, "request_id", None) for r in rows}
        self._fetch(self.perks, awards, self._perks)
        self.load_requests(requests | {h["request_id"] for h in history})
        if key == "promotions":
            self._fetch(self.consents, {r.consent_id for r in rows}, self._consents)
        if key == "recipient_ids":
            self._fetch(self.subscribers, {r.subscriber_id for r in rows}, self._subscribers)

    def load_requests(self, ids: set) -> None:
        """The reference and type of each request in ``ids`` (one query for those not known)."""
        self._fetch(self.requests, ids, self._requests)

    @staticmethod
    def _fetch(into: dict, ids: set, query) -> None:
        missing = {i for i in ids if i is not None and i not in into}
        if missing:
            into.update(query(missing))

    @staticmethod
    def _perks(ids):
        rows = db.session.execute(
            select(PerkAward.id, Perk.item, Brand.name)
            .join(Perk, Perk.id == PerkAward.perk_id)
            .join(Brand, Brand.id == Perk.brand_id)
            .where(PerkAward.id.in_(ids))
        )
        return {award: (item, brand) for award, item, brand in rows}

    @staticmethod
    def _requests(ids):
        rows = db.session.execute(
            select(RightsRequest.id, RightsRequest.reference, RightsRequest.type).where(
                RightsRequest.id.in_(ids)
            )
        )
        return {rid: (reference, type_) for rid, reference, type_ in rows}

    @staticmethod
    def _consents(ids):
        return dict(
            db.session.execute(select(Consent.id, Consent.purpose).where(Consent.id.in_(ids))).all()
        )

    @staticmethod
    def _subscribers(ids):
        rows = select(Subscriber.id, Subscriber.name).where(Subscriber.id.in_(ids))
        return dict(db.session.execute(rows).all())

    def award(self, award_id) -> str | None:
        """ "your Nova X1 phone": what an award is, in a sentence."""
        perk = self.perks.get(award_id)
        return f"your {perk[0]}" if perk else None

    def request(self, request_id) -> str:
        """ "your correction request LR-7K2M-Q9PD"."""
        reference, type_ = self.requests.get(request_id) or ("", "")
        return f"your {request_words(type_)} request {reference}".replace("  ", " ")

    def name(self, key: str, row) -> Name:
        ref = getattr(row, "external_id", None)
        if key == "perk_awards":
            item, brand = self.perks.get(row.id) or ("perk", "a brand")
            return Name(f"your {item} from {brand}", f"your {item}", f"your {item}", ref)
        award = self.award(getattr(row, "award_id", None))
        what = _NAMES.get(key, _other)(self, row, award)
        short = _SHORT.get(key, lambda r: what)(row)
        return Name(what, short, award or short, ref)


def _feedback(names, row, award):
    empty = row.rating is None and row.text_enc is None
    if award is None:
        return "the request for your feedback" if empty else "your feedback"
    return f"the request to rate {award}" if empty else f"your feedback on {award}"


def _promotion(names, row, award):
    shown = f"the promotion shown to {audience_words(row.audience)}"
    return f"{shown} about {award}" if award else shown


def _other(names, row, award):
    return "a record of yours"


_NAMES = {
    "profile": lambda n, r, a: "your account profile",
    "influence_scores": lambda n, r, a: f"your influence score of {r.score:g}",
    "influence_topics": lambda n, r, a: f"the topic “{r.topic}” you are said to influence",
    "disclosures": lambda n, r, a: (
        f"your entry on the disclosure list for {a}" if a else "your entry on a disclosure list"
    ),
    "promotions": _promotion,
    "consents": lambda n, r, a: f"your consent to {purpose_words(r.purpose)}",
    "feedback": _feedback,
    "feedback_pictures": lambda n, r, a: "a picture you added to your feedback",
    "rights_requests": lambda n, r, a: f"your {request_words(r.type)} request {r.reference}",
    "request_messages": lambda n, r, a: f"{n.request(r.request_id)}: {step_words(r.kind)}",
    "evidence": lambda n, r, a: f"a file you sent with {n.request(r.request_id)}",
    "notices": lambda n, r, a: f"an email {topic_words(r.topic)}",
    "recipient_ids": lambda n, r, a: (
        f"what {n.subscribers.get(r.subscriber_id, 'a recipient')} calls you"
    ),
}
_SHORT = {
    "influence_scores": lambda r: "your influence score",
    "influence_topics": lambda r: f"the topic “{r.topic}”",
}


# --- Telling a record's history ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change to a record, as a sentence; ``troubling``: a process overruled the record's
    own history; ``correction``: our privacy team set it right."""

    at: str
    category: str
    reference: str | None
    by: str
    source: str
    actor: str
    sentence: str
    troubling: bool = False
    correction: bool = False
    request: str | None = None


def walk(key: str, history: list[dict]):
    """Each history entry of a ``key`` record with what it says about the record's history:
    (entry, changes, troubling, note, correction). The state the record was in before each
    change is rebuilt from the changes before it."""
    state: dict = {}
    shipped = False
    for h in history:
        changes = h.get("changes") or {}
        before = dict(state)
        state.update({k: v[1] for k, v in changes.items() if isinstance(v, list) and len(v) == 2})
        shipped = shipped or state.get("status") == "shipped" or bool(state.get("shipped_at"))
        by = by_whom(h["source"], h["actor"])
        process = by not in ("you", "our privacy team") and h["action"] in ("created", "updated")
        troubling, note = False, None
        new, old = state.get("status"), before.get("status")
        if process and "status" in changes:
            if key == "perk_awards" and new == "received" and not shipped:
                troubling, note = True, NO_SHIPMENT
            elif old in CLOSED.get(key, ()) and new != old:
                troubling, note = True, f"Before that it was {status_words(old, key)}."
        if process and key == "promotions" and before.get("withdrawn_at"):
            if "withdrawn_at" in changes and not state.get("withdrawn_at"):
                troubling, note = True, "Before that it was withdrawn."
        correction = (
            h["source"] == "lethe" and h["action"] == "updated" and bool(changes)
        ) and not troubling
        yield h, changes, troubling, note, correction


def story(
    key: str, name: Name, history: list[dict], row, names: Names, *, holds: bool = True
) -> list[Change]:
    """The record's history, one sentence per change a person understands; ``holds``: with
    the moments it was held back (the summary says those on their own)."""
    out = []
    for h, changes, troubling, note, correction in walk(key, history):
        if h["action"] == "restricted" and not holds:
            continue
        by = by_whom(h["source"], h["actor"])
        verb = _verb(key, name, h, changes, row, names, by=by, correction=correction)
        if verb is None:
            continue
        reference = names.requests.get(h["request_id"], (None, None))[0]
        sentence = f"On {date_words(h['at'])} {by} {verb}{_why(h, reference, names)}."
        out.append(
            Change(
                at=h["at"],
                category=key,
                reference=name.reference,
                by=by,
                source=h["source"],
                actor=h["actor"],
                sentence=f"{sentence} {note}" if note else sentence,
                troubling=troubling,
                correction=correction and _asked_or_incident(h, names),
                request=reference,
            )
        )
    return out


def _asked_or_incident(h: dict, names: Names) -> bool:
    """A correction our privacy team made because the record was wrong: on a correction
    request, or an incident's (not, say, a consent withdrawn as asked)."""
    type_ = names.requests.get(h["request_id"], (None, None))[1]
    return type_ == "rectification" or (type_ is None and bool(_INCIDENT.search(h["reason"] or "")))


def _why(h: dict, reference: str | None, names: Names) -> str:
    if h["action"] == "restricted":
        return ""
    if h["source"] == "lethe" and reference:
        return f", as you asked ({reference})"
    found = _INCIDENT.search(h["reason"] or "") if h["source"] == "lethe" else None
    return f", after finding the same fault in other records ({found.group(1)})" if found else ""


def _verb(key, name, h, changes, row, names, *, by, correction) -> str | None:
    """What the change did, after "On <date> <who> …"; None when it says nothing a person
    needs (a change of internal numbers only)."""
    action = h["action"]
    if action == "restricted":
        return f"held {name.short} back{_hold_reason(h, names)}"
    if action not in ("created", "updated"):
        return f"{words(action)} {name.short}"
    special = _VERBS.get(key)
    said = special(name, h, changes, row, by, correction) if special else None
    return said or _changed(key, name, changes, action)


def _hold_reason(h: dict, names: Names) -> str:
    request = names.request(h["request_id"]) if h["request_id"] else None
    if not request:
        return ""
    if h["reason"] == "contested":
        return f" while we decide {request}"
    if h["reason"] == "objection":
        return f" while we weigh {request}"
    return f", as you asked in {request}"


def _labels(key: str, changes: dict) -> list[str]:
    fields = {f.column.removesuffix("_enc"): f for f in BY_KEY[key].fields}
    return [
        fields[k].label.lower() if k in fields else words(k)
        for k in changes
        if not (k in fields and fields[k].kind in ("perk", "award")) and not k.endswith("_id")
    ]


def _changed(key, name, changes, action) -> str | None:
    if action == "created":
        return f"recorded {name.what}"
    labels = _labels(key, changes)
    return f"changed the {join(labels)} of {name.what}" if labels else None


def _new(changes: dict, column: str):
    return changes[column][1] if column in changes else None


def _award_verb(name, h, changes, row, by, correction):
    if "status" not in changes:
        return None
    new = _new(changes, "status")
    if correction:
        return f"corrected {name.short} to {status_words(new, 'perk_awards')}"
    if by == "you" and new == "claimed":
        return f"claimed {name.short}"
    return f"marked {name.short} as {status_words(new, 'perk_awards')}"


def _disclosure_verb(name, h, changes, row, by, correction):
    if "status" not in changes:
        return None
    new = _new(changes, "status")
    if new == "disclosed":
        return f"put {name.about} on the disclosure list"
    if new == "withdrawn":
        return f"took {name.about} off the disclosure list"
    return f"marked {name.what} as {status_words(new, 'disclosures')}"


def _promotion_verb(name, h, changes, row, by, correction):
    if h["action"] == "created":
        picture = " and picture" if row.uses_likeness else ""
        about = f" about {name.about}" if name.about != name.what else ""
        return f"showed {audience_words(row.audience)} a promotion with your name{picture}{about}"
    if "withdrawn_at" in changes:
        return (
            f"withdrew {name.what}"
            if _new(changes, "withdrawn_at")
            else f"showed {name.what} again"
        )
    return None


def _feedback_verb(name, h, changes, row, by, correction):
    if h["action"] == "created" and "rating" not in changes:
        return (
            f"left feedback on {name.about}" if by == "you" else f"asked you to rate {name.about}"
        )
    if "rating" in changes:
        rating = _new(changes, "rating")
        if rating is None:
            return f"cleared your rating of {name.about}"
        return f"recorded your rating of {name.about}: {rating} out of 5"
    return None


def _consent_verb(name, h, changes, row, by, correction):
    new = _new(changes, "status")
    if new == "granted":
        return f"gave {name.what}" if by == "you" else f"recorded {name.what} as given"
    if new == "withdrawn":
        return f"withdrew {name.what}"
    return None


def _profile_verb(name, h, changes, row, by, correction):
    if h["action"] == "created":
        return "joined the platform" if by == "you" else f"created {name.what}"
    if _new(changes, "status") == "closed":
        return "closed your account"
    labels = [label for label in _labels("profile", changes) if label != "account status"]
    if not labels:
        return None
    return f"{'corrected' if correction else 'changed'} your {join(labels)}"


_VERBS = {
    "perk_awards": _award_verb,
    "disclosures": _disclosure_verb,
    "promotions": _promotion_verb,
    "feedback": _feedback_verb,
    "consents": _consent_verb,
    "profile": _profile_verb,
    "influence_scores": lambda n, h, c, r, by, corr: (
        f"computed {n.what}" if h["action"] == "created" else None
    ),
    "influence_topics": lambda n, h, c, r, by, corr: (
        f"said you influence “{r.topic}”" if h["action"] == "created" else None
    ),
}


# --- The summary ------------------------------------------------------------------------------


def build(subject_id: str) -> dict:
    """What the subject's report says first: counts, recipients, holds and corrections, and
    the troubled records' stories — as data, and as headed sentences (``in_words``)."""
    vault.load_keys([subject_id])
    counts = _counts(subject_id)
    names = Names()
    held_back, being_corrected = _holds(subject_id, names)
    out = {
        "as_of": date_words(utcnow()),
        "total": sum(counts.values()),
        "held": [
            {"category": c.key, "title": c.title, "count": counts[c.key]}
            | {"words": count_words(c.key, counts[c.key], c.title)}
            for c in CATEGORIES
            if counts[c.key]
        ],
        "recipients": _recipients(subject_id, counts),
        "held_back": held_back,
        "being_corrected": being_corrected,
        "troubled": _troubled(subject_id, names),
    }
    out["in_words"] = _in_words(out)
    return out


def for_request_page(request: RightsRequest) -> dict | None:
    """The summary for a request's own page: once the request stands (its link confirmed),
    while there is data to speak of (not after the subject's erasure)."""
    if request.status in ("received", "awaiting_verification"):
        return None
    subject = db.session.get(Subject, request.subject_id)
    if subject is None or subject.erased_at is not None:
        return None
    try:
        return build(request.subject_id)
    except vault.KeyMissing:  # erased a moment ago: nothing left to read
        return None


def _rows_of(cat, subject_id: str):
    """A query's WHERE for the subject's rows of ``cat`` (the rows the report lists)."""
    table = cat.model.__table__
    conditions = [table.c[cat.subject_column] == subject_id]
    if cat.where:
        column, values = cat.where
        conditions.append(table.c[column].in_(values))
    return conditions


def _counts(subject_id: str) -> dict[str, int]:
    return {
        cat.key: db.session.execute(
            select(func.count()).select_from(cat.model.__table__).where(*_rows_of(cat, subject_id))
        ).scalar_one()
        for cat in CATEGORIES
    }


def _recipients(subject_id: str, counts: dict) -> list[dict]:
    """Who received data of the categories the subject has records in, and which."""
    out: dict[str, dict] = {}
    for cat in CATEGORIES:
        n = counts[cat.key]
        for to in cat.recipients if n else ():
            entry = out.setdefault(
                to.key,
                {
                    "key": to.key,
                    "name": to.recipient.name,
                    "description": to.recipient.description,
                    "categories": [],
                    "what": [],
                },
            )
            part = yours(cat.key, n, cat.title.lower()) + (f" ({to.only})" if to.only else "")
            entry["categories"].append(cat.key)
            entry["what"].append(part)
    if "brand" in out:
        out["brand"]["brands"] = list(
            db.session.scalars(
                select(Brand.name)
                .join(Perk, Perk.brand_id == Brand.id)
                .join(PerkAward, PerkAward.perk_id == Perk.id)
                .where(PerkAward.subject_id == subject_id)
                .distinct()
                .order_by(Brand.name)
            )
        )
    return list(out.values())


def _load_rows(wanted: dict[str, set], names: Names) -> dict[tuple[str, int], object]:
    """The rows ``wanted`` ({table: ids}), one query per table, with what names them loaded."""
    out = {}
    for table, ids in wanted.items():
        cat = BY_TABLE.get(table)
        if cat is None or not ids:
            continue
        model = cat.model
        rows = list(db.session.execute(select(model.__table__).where(model.id.in_(ids))))
        names.load(cat.key, rows)
        out.update({(table, row.id): row for row in rows})
    return out


def _holds(subject_id: str, names: Names) -> tuple[list[dict], list[dict]]:
    """Restrictions in force on the subject's records, by the request that placed them; and
    their open correction requests, each with the records it holds back."""
    now = utcnow()
    r = Restriction
    holds = db.session.execute(
        select(r.record_type, r.record_id, r.reason, r.started_at, r.ends_at, RightsRequest.id)
        .join(RightsRequest, r.request_id == RightsRequest.id)
        .where(
            RightsRequest.subject_id == subject_id,
            r.started_at <= now,
            or_(r.ends_at.is_(None), r.ends_at > now),
        )
        .order_by(r.started_at, r.id)
    ).all()
    wanted = defaultdict(set)
    for h in holds:
        wanted[h.record_type].add(h.record_id)
    rows = _load_rows(wanted, names)
    names.load_requests({h.id for h in holds})
    open_requests = db.session.execute(
        select(RightsRequest)
        .where(
            RightsRequest.subject_id == subject_id,
            RightsRequest.type == "rectification",
            RightsRequest.status.in_(OPEN),
        )
        .order_by(RightsRequest.received_at)
    ).scalars()
    groups: dict[str, dict] = {}
    for h in holds:
        row = rows.get((h.record_type, h.record_id))
        if row is None:
            continue
        key = BY_TABLE[h.record_type].key
        name = names.name(key, row)
        group = groups.setdefault(
            h.id,
            {
                "request": names.requests[h.id][0],
                "type": names.requests[h.id][1],
                "reason": h.reason,
                "since": iso(h.started_at),
                "until": iso(h.ends_at),
                "records": [],
            },
        )
        group["records"].append({"category": key, "reference": name.reference, "what": name.what})
    corrections = [
        {
            "request": req.reference,
            "received_at": iso(req.received_at),
            "due_at": iso(req.due_at),
            "records": [rec["what"] for rec in groups.get(req.id, {}).get("records", [])],
        }
        for req in open_requests
    ]
    return list(groups.values()), corrections


def _history(subject_id: str) -> dict[tuple[str, int], list[dict]]:
    """The history of the subject's records of the :data:`STORY` categories, in one query."""
    h = RecordHistory.__table__.c
    rows = db.session.execute(
        select(h)
        .where(
            h.subject_id == subject_id,
            h.record_type.in_([BY_KEY[k].table for k in STORY]),
        )
        .order_by(h.record_type, h.record_id, h.changed_at, h.id)
    )
    out = defaultdict(list)
    for row in rows:
        out[(row.record_type, row.record_id)].append(history_entry(row, subject_id))
    return out


def _dependants(troubled: set[tuple[str, int]], subject_id: str) -> dict[tuple, tuple]:
    """What is built on the troubled records (data map dependants in :data:`STORY`):
    {(table, id): (parent table, parent id)}, one query per dependant category."""
    out = {}
    for cat in (BY_KEY[k] for k in STORY):
        parent = built_on(cat)
        if parent is None:
            continue
        parent_cat, via = parent
        ids = [i for t, i in troubled if t == parent_cat.table]
        if not ids:
            continue
        model = cat.model
        column = getattr(model, via)
        found = db.session.execute(
            select(model.id, column).where(column.in_(ids), model.subject_id == subject_id)
        )
        out.update({(cat.table, i): (parent_cat.table, p) for i, p in found})
    return out


def _troubled(subject_id: str, names: Names) -> list[dict]:
    """Each troubled record with its story, and the stories of what is built on it, told as
    one (a list entry's and a promotion's changes are part of their award's story)."""
    history = _history(subject_id)
    troubled = {
        key
        for key, entries in history.items()
        if any(t or c for _, _, t, _, c in walk(BY_TABLE[key[0]].key, entries))
    }
    if not troubled:
        return []
    parents = _dependants(troubled, subject_id)
    home = {key: key for key in troubled} | {key: parent for key, parent in parents.items()}
    wanted = defaultdict(set)
    for table, record_id in home:
        wanted[table].add(record_id)
    rows = _load_rows(wanted, names)
    names.load_requests({e["request_id"] for key in home for e in history.get(key, [])})
    groups: dict[tuple, dict] = {}
    for key in (k for k in home if home[k] == k and k in rows):
        name = names.name(BY_TABLE[key[0]].key, rows[key])
        groups[key] = {
            "category": BY_TABLE[key[0]].key,
            "reference": name.reference,
            "what": name.what,
            "changes": [],
        }
    for key, group_key in home.items():
        if key not in rows or group_key not in groups:
            continue
        cat = BY_TABLE[key[0]]
        name = names.name(cat.key, rows[key])
        told = story(cat.key, name, history.get(key, []), rows[key], names, holds=False)
        groups[group_key]["changes"] += [asdict(c) for c in told]
    for group in groups.values():
        group["changes"].sort(key=lambda c: c["at"])
    return sorted((g for g in groups.values() if g["changes"]), key=lambda g: g["changes"][0]["at"])


def _in_words(s: dict) -> list[dict]:
    held = [h["words"] for h in s["held"]]
    parts = [
        {
            "heading": "What we hold",
            "sentences": [
                f"We hold {s['total']} records about you: {join(held)}."
                if held
                else "We hold no records about you."
            ],
        },
        {
            "heading": "Who we gave it to",
            "sentences": _recipient_sentences(s["recipients"])
            or ["We gave none of it to anyone outside the platform."],
        },
    ]
    holding = _hold_sentences(s["held_back"], s["being_corrected"])
    if holding:
        parts.append({"heading": "Held back and being corrected", "sentences": holding})
    for group in s["troubled"][:STORIES]:
        parts.append(
            {
                "heading": f"What happened to {group['what']}",
                "sentences": [c["sentence"] for c in group["changes"]],
            }
        )
    more = len(s["troubled"]) - STORIES
    if more > 0:
        parts.append(
            {
                "heading": "What happened to your other records",
                "sentences": [
                    f"{more} more of your records were changed in ways their history does not "
                    "bear out, or corrected: your report tells each one's story, record by record."
                ],
            }
        )
    return parts


def _recipient_sentences(recipients: list[dict]) -> list[str]:
    """One sentence for each set of recipients that got the same: "The platform's ad system
    and the audience shown (e.g. your friends): the promotion using your name."."""
    same: dict[tuple, list[str]] = {}
    for r in recipients:
        brands = f" ({join(r['brands'])})" if r.get("brands") else ""
        same.setdefault(tuple(r["what"]), []).append(r["name"] + brands)
    return [
        f"{join([who[0]] + [_lower(w) for w in who[1:]])}: {join(list(what))}."
        for what, who in same.items()
    ]


def _lower(name: str) -> str:
    """A name in mid-sentence ("the platform's ad system"), an acronym left as it is."""
    return name if name[1:2].isupper() else name[:1].lower() + name[1:]


HOLD = "we keep them, but do not use, show or pass them on"
# A summary is short: this many records' stories at most, this many records named in a list.
STORIES = 10
NAMED = 8


def _hold_sentences(held_back: list[dict], corrections: list[dict]) -> list[str]:
    out = []
    deciding = {c["request"] for c in corrections}
    for c in corrections:
        sentence = (
            f"We are deciding your correction request {c['request']}, and will answer by "
            f"{date_words(c['due_at'])}."
        )
        if c["records"]:
            sentence += f" Until then we hold back {join(c['records'], NAMED)}: {HOLD}."
        out.append(sentence)
    for group in held_back:
        if group["request"] in deciding:
            continue
        what = join([r["what"] for r in group["records"]], NAMED)
        if group["reason"] == "objection":
            sentence = (
                f"While we weigh your objection {group['request']}, we hold back {what}: "
                "we keep them, but do not use them."
            )
        elif group["reason"] == "contested":
            sentence = (
                f"Because you contested them ({group['request']}), we hold back {what}: {HOLD}."
            )
        else:
            sentence = f"As you asked ({group['request']}), we hold back {what}: {HOLD}."
        if group["until"]:
            sentence += f" We stop holding them back on {date_words(group['until'])}."
        out.append(sentence)
    return out
