"""The access report in short (Art. 12(1): concise, intelligible and in clear and plain
language).

:func:`build` says, for one subject, what the first screen of their report — and of each of
their request pages — tells before any legal detail: what we hold (by category, with counts),
who we gave it to (the data map's recipients of the categories they have records in), what is
held back (Art. 18 restrictions in force) or being corrected (open rectification requests),
and how each record with a troubled history got that way, one sentence per change ("On 9
September 2026 our fulfilment sync (job 0817) marked your Nova X1 phone as received. No
shipment was recorded."). The report itself names its records and tells their history in the
same words: records are named by :mod:`rights.holdings.names`, histories told by
:mod:`rights.access.stories`.

A record's history is *troubled* when one of its changes is troubling or a correction
(:func:`rights.access.stories.walk`: a process set a status its own history does not bear out,
or our privacy team corrected it). The story of a troubled award includes what is built on it
(its list entry, promotion and request to rate it: the data map's dependants), for that is what
the member saw. Ordinary lives — offered, claimed, shipped, received — are not troubled, however
many processes wrote them.

Reads only, in batches: one query per category (or one for all of them), never one per record.

The sentences are written in the language being written (``gettext``: the reader's on a page,
English in the JSON API); the data beside them (keys, references, the recipients' declared
names) stays as stored.
"""

from collections import defaultdict
from dataclasses import asdict

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, func, literal, or_, select, union_all

from rights.access.stories import history_entry, iso, story, walk
from rights.holdings.names import Names
from storage import vault
from storage.cascades import row_filter
from storage.clock import utcnow
from storage.datamap import BY_KEY, BY_TABLE, CATEGORIES, built_on
from storage.db import db
from storage.models import (
    Brand,
    Perk,
    PerkAward,
    RecordHistory,
    Restriction,
    RightsRequest,
    Subject,
)
from storage.processes import count_words, date_words, join, yours

# The categories whose records have a story worth telling: what a member can contest, what is
# built on it, and their account.
STORY = ("profile", "perk_awards", "disclosures", "promotions", "consents", "feedback")
OPEN = ("open", "in_progress")
# A summary is short: this many records' stories at most, this many records named in a list.
STORIES = 10
NAMED = 8


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


def _counts(subject_id: str) -> dict[str, int]:
    """How many records of each category the subject has (the rows the report lists), in
    one statement: a count per category, joined with UNION ALL."""
    parts = []
    for cat in CATEGORIES:
        table = cat.model.__table__
        query = select(literal(cat.key).label("category"), func.count().label("n")).select_from(
            table
        )
        query = query.where(table.c[cat.subject_column] == subject_id)
        if (only := row_filter(cat)) is not None:
            query = query.where(only)
        parts.append(query)
    out = dict.fromkeys((cat.key for cat in CATEGORIES), 0)
    out.update((key, n) for key, n in db.session.execute(union_all(*parts)))
    return out


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
            part = yours(cat.key, n, cat.title) + (f" ({_(to.only)})" if to.only else "")
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
    rows = names.records(wanted)
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


def _histories(subject_id: str, only: set[tuple[str, int]] | None = None):
    """(record, its history entries) for the subject's records of the :data:`STORY`
    categories (or only those in ``only``), one record at a time: one query, streamed in
    batches, so a member with 10,000 records is never held in memory at once."""
    h = RecordHistory.__table__.c
    tables = [BY_KEY[k].table for k in STORY]
    if only is not None:
        by_table = defaultdict(set)
        for table, record_id in only:
            by_table[table].add(record_id)
        if not by_table:
            return
        where = or_(
            *(and_(h.record_type == t, h.record_id.in_(ids)) for t, ids in by_table.items())
        )
    else:
        where = h.record_type.in_(tables)
    rows = db.session.execute(
        select(h)
        .where(h.subject_id == subject_id, where)
        .order_by(h.record_type, h.record_id, h.changed_at, h.id)
        .execution_options(yield_per=500)
    )
    current, entries = None, []
    for row in rows:
        key = (row.record_type, row.record_id)
        if key != current:
            if entries:
                yield current, entries
            current, entries = key, []
        entries.append(history_entry(row, subject_id))
    if entries:
        yield current, entries


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
    # Only the troubled records' histories are kept, then those of what is built on them.
    history = {
        key: entries
        for key, entries in _histories(subject_id)
        if any(t or c for _, _, t, _, c in walk(BY_TABLE[key[0]].key, entries))
    }
    troubled = set(history)
    if not troubled:
        return []
    parents = _dependants(troubled, subject_id)
    history.update(_histories(subject_id, {key for key in parents if key not in history}))
    home = {key: key for key in troubled} | {key: parent for key, parent in parents.items()}
    wanted = defaultdict(set)
    for table, record_id in home:
        wanted[table].add(record_id)
    rows = names.records(wanted)
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
            "heading": _("What we hold"),
            "sentences": [
                # English says "records" whatever the number (as it always has).
                ngettext(
                    "We hold %(num)d record about you: %(what)s.",
                    "We hold %(num)d records about you: %(what)s.",
                    s["total"],
                    what=join(held),
                )
                if held
                else _("We hold no records about you.")
            ],
        },
        {
            "heading": _("Who we gave it to"),
            "sentences": _recipient_sentences(s["recipients"])
            or [_("We gave none of it to anyone outside the platform.")],
        },
    ]
    holding = _hold_sentences(s["held_back"], s["being_corrected"])
    if holding:
        parts.append({"heading": _("Held back and being corrected"), "sentences": holding})
    for group in s["troubled"][:STORIES]:
        parts.append(
            {
                "heading": _("What happened to %(what)s", what=group["what"]),
                "sentences": [c["sentence"] for c in group["changes"]],
            }
        )
    more = len(s["troubled"]) - STORIES
    if more > 0:
        parts.append(
            {
                "heading": _("What happened to your other records"),
                "sentences": [
                    ngettext(
                        "%(num)d more of your records was changed in ways its history does "
                        "not bear out, or corrected: your report tells its story.",
                        "%(num)d more of your records were changed in ways their history does "
                        "not bear out, or corrected: your report tells each one's story, record "
                        "by record.",
                        more,
                    )
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
        name = r["name"]  # as declared (English): said in the language being written
        same.setdefault(tuple(r["what"]), []).append(_(name) + brands)
    return [
        _(
            "%(who)s: %(what)s.",
            who=join([who[0]] + [_lower(w) for w in who[1:]]),
            what=join(list(what)),
        )
        for what, who in same.items()
    ]


def _lower(name: str) -> str:
    """A name in mid-sentence ("the platform's ad system"), an acronym left as it is. (Every
    recipient's name starts with an article or "our" in each language, so this holds.)"""
    return name if name[1:2].isupper() else name[:1].lower() + name[1:]


def _hold_sentences(held_back: list[dict], corrections: list[dict]) -> list[str]:
    out = []
    deciding = {c["request"] for c in corrections}
    for c in corrections:
        sentence = _(
            "We are deciding your correction request %(request)s, and will answer by %(date)s.",
            request=c["request"],
            date=date_words(c["due_at"]),
        )
        if c["records"]:
            sentence += " " + _(
                "Until then we hold back %(records)s: we keep them, but do not use, show or "
                "pass them on.",
                records=join(c["records"], NAMED),
            )
        out.append(sentence)
    for group in held_back:
        if group["request"] in deciding:
            continue
        what = join([r["what"] for r in group["records"]], NAMED)
        if group["reason"] == "objection":
            sentence = _(
                "While we weigh your objection %(request)s, we hold back %(records)s: we keep "
                "them, but do not use them.",
                request=group["request"],
                records=what,
            )
        elif group["reason"] == "contested":
            sentence = _(
                "Because you contested them (%(request)s), we hold back %(records)s: we keep "
                "them, but do not use, show or pass them on.",
                request=group["request"],
                records=what,
            )
        else:
            sentence = _(
                "As you asked (%(request)s), we hold back %(records)s: we keep them, but do not "
                "use, show or pass them on.",
                request=group["request"],
                records=what,
            )
        if group["until"]:
            sentence += " " + _(
                "We stop holding them back on %(date)s.", date=date_words(group["until"])
            )
        out.append(sentence)
    return out
