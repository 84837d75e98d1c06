"""What a request changed, in words a person reads: the lines of a completion notice.

Each record is named by what it is — "your Nova X1 phone award from Nova Mobile", "your entry
on the disclosure list for it", "the promotion that told your friends you had won it" — never
by an internal id, a table or a raw status value (statuses read through
:func:`storage.processes.status_words`). What a record built on an award is, is said after the
award, as "it". A right's handler picks the lines for its notice
(:meth:`~rights.lifecycle.handlers.RightHandler.outcome`): most say what the request's history
rows changed (:func:`corrections`) and what it holds back now (:func:`holds`); an erasure says
what was kept, until when and why (:func:`why_kept`).
"""

import re

from sqlalchemy import select

from rights.holdings import restrictions
from storage import vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import (
    Brand,
    Consent,
    Disclosure,
    Feedback,
    InfluenceScore,
    InfluenceTopic,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RecordHistory,
    RightsRequest,
)
from storage.processes import status_words

_MODELS = {c.table: c.model for c in CATEGORIES}
# Consents by what they allowed; the others read as their purpose in words.
PURPOSES = {
    "name_and_likeness": "the use of your name and picture in promotions",
    "email_marketing": "marketing emails",
}
PROFILE_FIELDS = {
    "name": "name",
    "handle": "social media handle",
    "address": "postal address",
    "email": "email address",
}
# A promotion's audience, as the sentence "the promotion that told … you had won it" needs it.
AUDIENCES = {"friends": "your friends", "followers": "your followers", "public": "the public"}


def purpose_words(purpose: str) -> str:
    """What a consent allowed, in words: "marketing emails"."""
    return PURPOSES.get(purpose, status_words(purpose))


def _perk(award: PerkAward) -> tuple[str, str]:
    """(the item, the brand) an award is for."""
    perk = db.session.get(Perk, award.perk_id)
    return perk.item, db.session.get(Brand, perk.brand_id).name


def perk_of(award: PerkAward) -> str:
    """ "Nova X1 phone from Nova Mobile": what an award is for, by its perk and brand."""
    item, brand = _perk(award)
    return f"{item} from {brand}"


def award_name(award: PerkAward) -> str:
    """ "Nova X1 phone award from Nova Mobile"."""
    item, brand = _perk(award)
    return f"{item} award from {brand}"


def _award_of(row) -> PerkAward | None:
    if isinstance(row, PerkAward):
        return row
    award_id = getattr(row, "award_id", None)
    return db.session.get(PerkAward, award_id) if award_id is not None else None


def _noun(row, award: PerkAward | None, same: bool) -> str:
    """What ``row`` is, for a sentence about it; ``same``: its award was the last one named,
    so "it" is enough."""
    it = "it" if same else (f"the {perk_of(award)}" if award is not None else "a perk")
    if isinstance(row, PerkAward):
        return f"your {award_name(row)}"
    if isinstance(row, Disclosure):
        return f"your entry on the disclosure list for {it}"
    if isinstance(row, Promotion):
        who = AUDIENCES.get(row.audience, f"people ({row.audience})")
        if award is None:
            return f"the promotion that showed your name to {who}"
        return f"the promotion that told {who} you had won {it}"
    if isinstance(row, Feedback):
        empty = row.rating is None and row.text_enc is None
        return f"the request to rate {it}" if empty else f"your feedback on {it}"
    if isinstance(row, Consent):
        return f"your consent to {purpose_words(row.purpose)}"
    if isinstance(row, Member):
        return "your profile"
    if isinstance(row, InfluenceScore):
        return "your influence score"
    if isinstance(row, InfluenceTopic):
        return "the topics we say you influence"
    category = next((c for c in CATEGORIES if isinstance(row, c.model)), None)
    return f"a record of yours ({category.title.lower() if category else 'other'})"


def _sentences(rows: list, state) -> list[str]:
    """One sentence per record, each record's award first and what stands on it after it
    ("…for it"); ``state(row)`` says what became of the record ("was withdrawn")."""
    groups: dict = {}
    for row in rows:
        award = _award_of(row)
        groups.setdefault(award.id if award is not None else None, []).append((row, award))
    out, seen = [], set()
    last = None
    for key in [k for k in groups if k is not None] + [None]:
        for row, award in sorted(groups.get(key, []), key=lambda p: p[0] is not p[1]):
            noun = _noun(row, award, same=award is not None and award.id == last)
            last = award.id if award is not None else None
            if noun in seen:  # several topics read as one: "the topics we say you influence"
                continue
            seen.add(noun)
            out.append(f"{noun[0].upper()}{noun[1:]} {state(row)}.")
    return out


def _corrected(row) -> str:
    if isinstance(row, (PerkAward, Disclosure, Consent)):
        if row.status == "withdrawn":
            return "was withdrawn"
        return f"now says {status_words(row.status)}"
    if isinstance(row, Promotion) and row.withdrawn_at is not None:
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
    rows, fields = [], []
    for change in _history(request):
        model = _MODELS.get(change.record_type)
        row = db.session.get(model, change.record_id) if model else None
        if isinstance(row, Member):
            changed = vault.decrypt_json(
                change.subject_id, "record_history.changes_enc", change.changes_enc
            )
            fields += [PROFILE_FIELDS[f] for f in changed or {} if f in PROFILE_FIELDS]
        elif row is not None and row not in rows:
            rows.append(row)
    out = _sentences(rows, _corrected)
    if fields:
        named = " and ".join(dict.fromkeys(fields))
        out.insert(0, f"Your {named} {'was' if len(set(fields)) == 1 else 'were'} corrected.")
    return out


def holds(request: RightsRequest) -> list[str]:
    """What this request holds back now, a sentence each, then what holding back means."""
    now, rows = utcnow(), []
    for held in restrictions.of_request(request):
        if held.ends_at is not None and held.ends_at <= now:
            continue
        model = _MODELS.get(held.record_type)
        row = db.session.get(model, held.record_id) if model else None
        if row is not None and row not in rows:
            rows.append(row)
    if not rows:
        return []
    return [
        *_sentences(
            rows, lambda row: "are held back" if isinstance(row, InfluenceTopic) else "is held back"
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
