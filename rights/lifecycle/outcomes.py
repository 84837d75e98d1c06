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

Each line is a whole sentence in the language being written (a notice's: its request's), the
record's name a placeholder in it.
"""

import re
from collections import defaultdict
from functools import reduce

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from rights.holdings import restrictions
from rights.holdings.names import Names
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
    ("…for it"); ``state(key, row, what)`` says what became of the record, named ``what``
    ("Your Nova X1 phone award from Nova Mobile was withdrawn.")."""
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
            out.append(state(key, row, cap(noun)))
    return out


def _corrected(key: str, row, what: str) -> str:
    if key in ("perk_awards", "disclosures", "consents"):
        if row.status == "withdrawn":
            return _("%(what)s was withdrawn.", what=what)
        return _("%(what)s now says %(status)s.", what=what, status=_(status_words(row.status)))
    if key == "promotions" and row.withdrawn_at is not None:
        return _("%(what)s was withdrawn.", what=what)
    return _("%(what)s was corrected.", what=what)


# The profile's fields a correction may change, by the name its history rows give them
# ("email"), with their label in the data map ("Email address").
_PROFILE_LABELS = {
    f.column.removesuffix("_enc"): f.label
    for f in BY_KEY["profile"].fields
    if f.kind == "encrypted"
}


def _field_word(label: str) -> str:
    """A profile field as a sentence names it: the label in lower case in English ("email
    address"), as its translation writes it otherwise ("E-Mail-Adresse")."""
    word = _(label)
    return label.lower() if word == label else word


def _and(words: list[str]) -> str:
    return reduce(lambda a, b: _("%(first)s and %(second)s", first=a, second=b), words)


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
        fields += [_PROFILE_LABELS[f] for f in changed or {} if f in _PROFILE_LABELS]
    out = _sentences(names, [(k, row) for k, row in records if k != "profile"], _corrected)
    if fields:
        named = list(dict.fromkeys(fields))
        out.insert(
            0,
            ngettext(
                "Your %(fields)s was corrected.",
                "Your %(fields)s were corrected.",
                len(named),
                fields=_and([_field_word(label) for label in named]),
            ),
        )
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
        *_sentences(names, records, _held),
        _(
            "Held back means we keep these records but do not use them or pass them on; we "
            "will tell you before that ends (Art. 18 GDPR)."
        ),
    ]


def _held(key: str, row, what: str) -> str:
    if key == "influence_topics":  # "the topics we say you influence"
        return _("%(what)s are held back.", what=what)
    return _("%(what)s is held back.", what=what)


def why_kept(exception: str) -> str:
    """Why erasure kept a category, in plain words, then the exception it relies on (as the
    data map words it, translated where the catalogue has it)."""
    plain = {
        "(b)": _("because the law requires us to keep it"),
        "(e)": _("because we may need it to show what happened if there is ever a legal claim"),
        "(d)": _("for archiving in the public interest"),
    }
    point = re.search(r"17\(3\)(\([a-e]\))", exception or "")
    words = plain.get(point.group(1) if point else "") or _("under an exception the law allows")
    return f"{words} ({_(exception)})" if exception else words
