"""What a request changed, in words a person reads: the lines of a completion notice.

Each record is named by what it is — "your Nova X1 phone award from Nova Mobile", "your entry
on the disclosure list for it", "the promotion that told your friends you had won it" — never
by an internal id, a table or a raw status value, in a notice's words
(:meth:`rights.holdings.names.Names.in_notice`; statuses read through
:func:`storage.processes.status_words`). What a record built on an award is, is said after the
award, as "it". A right's handler picks the lines for its notice
(:meth:`~rights.lifecycle.handlers.RightHandler.outcome`): most say what the request's history
rows changed (:func:`corrections`) and what it holds back now (:func:`holds`); an erasure says
what was kept, until when and why (:func:`why_kept`).

Reads in batches: the request's history (or holds) in one query, then one query per kind of
record it names and one for their perks, never one per record.
"""

import re
from collections import defaultdict

from sqlalchemy import select

from rights.holdings import restrictions
from rights.holdings.names import PROFILE_FIELDS, Names
from storage import vault
from storage.clock import utcnow
from storage.datamap import BY_KEY, BY_TABLE
from storage.db import db
from storage.models import RecordHistory, RightsRequest
from storage.processes import cap, status_words


def _load(names: Names, keys: list[tuple[str, int]]) -> list[tuple[str, object]]:
    """The records ``keys`` name ((table, id), in order, once each) as (category, row), with
    what names them; those no longer held are left out."""
    wanted = defaultdict(set)
    for table, record_id in keys:
        wanted[table].add(record_id)
    rows = names.records(wanted)
    return [(BY_TABLE[k[0]].key, rows[k]) for k in dict.fromkeys(keys) if k in rows]


def _sentences(names: Names, records: list[tuple[str, object]], state) -> list[str]:
    """One sentence per record, each record's award first and what stands on it after it
    ("…for it"); ``state(key, row)`` says what became of the record ("was withdrawn")."""
    groups: dict = {}
    for key, row in records:
        groups.setdefault(names.award_of(key, row), []).append((key, row))
    out, seen = [], set()
    last = None
    for award in [k for k in groups if k is not None] + [None]:
        for key, row in sorted(groups.get(award, []), key=lambda r: r[0] != "perk_awards"):
            noun = names.in_notice(key, row, same=award is not None and award == last)
            last = award
            if noun in seen:  # several topics read as one: "the topics we say you influence"
                continue
            seen.add(noun)
            out.append(f"{cap(noun)} {state(key, row)}.")
    return out


def _corrected(key: str, row) -> str:
    if key in ("perk_awards", "disclosures", "consents"):
        if row.status == "withdrawn":
            return "was withdrawn"
        return f"now says {status_words(row.status)}"
    if key == "promotions" and row.withdrawn_at is not None:
        return "was withdrawn"
    return "was corrected"


def _history(request: RightsRequest):
    return db.session.execute(
        select(RecordHistory)
        .where(RecordHistory.request_id == request.id, RecordHistory.action == "updated")
        .order_by(RecordHistory.id)
    ).scalars()


def corrections(request: RightsRequest) -> list[str]:
    """What this request changed in the subject's records, a sentence each: "Your Nova X1
    phone award from Nova Mobile now says not received." Read from the history rows that
    name the request, so it says what was done, not what was meant to be."""
    history = [h for h in _history(request) if h.record_type in BY_TABLE]
    names = Names()
    records = _load(names, [(h.record_type, h.record_id) for h in history])
    found = {(BY_KEY[key].table, row.id) for key, row in records}
    fields = []
    for change in history:
        key = (change.record_type, change.record_id)
        if BY_TABLE[change.record_type].key != "profile" or key not in found:
            continue
        changed = vault.decrypt_json(
            change.subject_id, "record_history.changes_enc", change.changes_enc
        )
        fields += [PROFILE_FIELDS[f] for f in changed or {} if f in PROFILE_FIELDS]
    out = _sentences(names, [(k, row) for k, row in records if k != "profile"], _corrected)
    if fields:
        named = " and ".join(dict.fromkeys(fields))
        out.insert(0, f"Your {named} {'was' if len(set(fields)) == 1 else 'were'} corrected.")
    return out


def holds(request: RightsRequest) -> list[str]:
    """What this request holds back now, a sentence each, then what holding back means."""
    now = utcnow()
    held = [
        (r.record_type, r.record_id)
        for r in restrictions.of_request(request)
        if r.record_type in BY_TABLE and (r.ends_at is None or r.ends_at > now)
    ]
    names = Names()
    records = _load(names, held)
    if not records:
        return []
    return [
        *_sentences(
            names,
            records,
            lambda key, row: "are held back" if key == "influence_topics" else "is held back",
        ),
        "Held back means we keep these records but do not use them or pass them on; we will "
        "tell you before that ends (Art. 18 GDPR).",
    ]


def why_kept(exception: str) -> str:
    """Why erasure kept a category, in plain words, then the exception it relies on."""
    plain = {
        "(b)": "because the law requires us to keep it",
        "(e)": "because we may need it to show what happened if there is ever a legal claim",
        "(d)": "for archiving in the public interest",
    }
    point = re.search(r"17\(3\)(\([a-e]\))", exception or "")
    words = plain.get(point.group(1) if point else "", "under an exception the law allows")
    return f"{words} ({exception})" if exception else words
