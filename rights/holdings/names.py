"""Records in words: what each record is called, and what its values say, for the subject.

A record is named by what it is — "your Nova X1 phone from Nova Mobile", "your entry on the
disclosure list for your Nova X1 phone" — never by an internal id, a table or a raw code (codes
read through :mod:`storage.processes`). One naming, two registers, both here:

- the access report, the summary and the request pages (:meth:`Names.name`): a record on its own,
  in full, with a short form to name it again in a sentence ("your Nova X1 phone") and the
  platform's reference the person names it to us by;
- a notice of what a request changed (:meth:`Names.in_notice`): one sentence a record, each
  award first and what is built on it after it, as "it" ("Your entry on the disclosure list for
  it was withdrawn."), the award as "your Nova X1 phone award from Nova Mobile".

A record's values read in words too (:func:`facts`), each under its label, what its name already
says left out.

Names are whole phrases in the language being written (``gettext``): "your entry on the
disclosure list for %(about)s", with what it is about ("your Nova X1 phone", "it") a phrase
itself, so a language can say each its own way.

Everything a name takes — the perk of each award, the reference of each request, what each
consent allowed, each recipient's name — is loaded by :meth:`Names.load` for a whole batch of
rows at once: one query per kind, never per record. Rows may be ORM objects or plain rows.
"""

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import inspect, select

from storage import processes, wording
from storage.datamap import BY_KEY, BY_TABLE, Category, Field
from storage.db import db
from storage.models import Brand, Consent, Perk, PerkAward, RightsRequest, Subscriber
from storage.processes import (
    audience_words,
    purpose_words,
    request_phrase,
    step_words,
    topic_words,
)
from storage.wording import N_

# The profile's personal fields (what a correction changes), by the names history rows give
# them, as an English sentence says them: "postal address" (English: written at import time).
PROFILE_FIELDS = {
    f.column.removesuffix("_enc"): f.label.lower()
    for f in BY_KEY["profile"].fields
    if f.kind == "encrypted"
}


@dataclass(frozen=True)
class Name:
    what: str  # the record in full: "your Nova X1 phone from Nova Mobile"
    short: str  # named again in a sentence: "your Nova X1 phone"
    about: str  # what a record built on an award is about ("your Nova X1 phone"), or ``short``
    reference: str | None  # the platform's id ("aw-0001-nova"): how the person names it to us


class Names:
    """Names records by what they are, from what :meth:`load` (or :meth:`records`) loaded for
    a batch of them."""

    def __init__(self):
        # award id -> (item, brand); a signed statement's award may lack its brand (None)
        self.perks: dict[int, tuple[str, str | None]] = {}
        self.requests: dict[str, tuple[str, str]] = {}  # request id -> (reference, type)
        self.consents: dict[int, str] = {}  # consent id -> purpose
        self.subscribers: dict[int, str] = {}  # subscriber id -> name

    # --- Loading, a batch at a time ---------------------------------------------------------

    def load(self, key: str, rows, history=(), *, values: bool = True) -> None:
        """Everything needed to name ``rows`` of category ``key`` and tell ``history``; with
        ``values``, to say their values too (:func:`facts`: the consent a promotion relies on)."""
        awards = {r.id for r in rows} if key == "perk_awards" else set()
        awards |= {getattr(r, "award_id", None) for r in rows}
        requests = {getattr(r, "request_id", None) for r in rows}
        self._fetch(self.perks, awards, self._perks)
        self.load_requests(requests | {h["request_id"] for h in history})
        if key == "promotions" and values:
            self._fetch(self.consents, {r.consent_id for r in rows}, self._consents)
        if key == "recipient_ids":
            self._fetch(self.subscribers, {r.subscriber_id for r in rows}, self._subscribers)

    def load_requests(self, ids: set) -> None:
        """The reference and type of each request in ``ids`` (one query for those not known)."""
        self._fetch(self.requests, ids, self._requests)

    def records(self, wanted: dict[str, set]) -> dict[tuple[str, int], object]:
        """The rows ``wanted`` ({table: ids}) of the data map's categories, one query per
        table, with what names them loaded: {(table, id): row}. Plain rows, read as the
        session has them (it flushes first): a notice written in the transaction that made
        the change names the records as changed."""
        out = {}
        for table, ids in wanted.items():
            cat = BY_TABLE.get(table)
            if cat is None or not ids:
                continue
            model = cat.model
            columns = [getattr(model, a.key) for a in inspect(model).column_attrs]
            rows = list(db.session.execute(select(*columns).where(model.id.in_(ids))))
            self.load(cat.key, rows, values=False)
            out.update({(table, row.id): row for row in rows})
        return out

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

    # --- Awards, and what is built on them --------------------------------------------------

    def award_of(self, key: str, row) -> int | None:
        """The award (its id) a record is, or is built on, when it is known."""
        award_id = row.id if key == "perk_awards" else getattr(row, "award_id", None)
        return award_id if award_id in self.perks else None

    def award(self, award_id) -> str | None:
        """ "your Nova X1 phone": what an award is, in a sentence."""
        perk = self.perks.get(award_id)
        return _("your %(item)s", item=perk[0]) if perk else None

    def request(self, request_id) -> str:
        """ "your correction request LR-7K2M-Q9PD"."""
        reference, type_ = self.requests.get(request_id) or ("", "")
        return request_phrase(type_, reference)

    # --- The two registers ------------------------------------------------------------------

    def name(self, key: str, row) -> Name:
        """The record as the report, the summary and the request pages name it."""
        ref = getattr(row, "external_id", None)
        if key == "perk_awards":
            perk = self.perks.get(row.id)
            if perk is None:
                what, short = _("your perk from a brand"), _("your perk")
            elif perk[1] is None:
                what, short = _("your %(item)s from a brand", item=perk[0]), self.award(row.id)
            else:
                what = _("your %(item)s from %(brand)s", item=perk[0], brand=perk[1])
                short = self.award(row.id)
            return Name(what, short, short, ref)
        award = self.award(getattr(row, "award_id", None))
        what = _NAMES.get(key, _other)(self, row, award)
        short = _SHORT.get(key, lambda r: what)(row)
        return Name(what, short, award or short, ref)

    def in_notice(self, key: str, row, *, same: bool = False) -> str:
        """The record as a notice of what a request changed names it; ``same``: its award was
        the last one named, so "it" is enough ("your entry on the disclosure list for it")."""
        award = self.award_of(key, row)
        if same:
            it = _("it")  # the award named just before: "your entry on the disclosure list for it"
        elif award is not None:
            it = self.the_perk(award)
        else:
            it = _("a perk")
        if key in _IN_NOTICE:
            return _IN_NOTICE[key](self, row, it, award)
        if key in ("disclosures", "feedback", "consents"):  # as the report says, about ``it``
            return _NAMES[key](self, row, it)
        return _("a record of yours (%(kind)s)", kind=processes.in_sentence(BY_KEY[key].title))

    def the_perk(self, award_id) -> str:
        """ "the Nova X1 phone from Nova Mobile": an award named in a notice, the first time."""
        item, brand = self.perks[award_id]
        return _("the %(item)s from %(brand)s", item=item, brand=brand)

    def award_in_notice(self, award_id) -> str:
        """ "your Nova X1 phone award from Nova Mobile": the award itself, as a notice names it."""
        perk = self.perks.get(award_id)
        if perk is None:
            return _("your perk award")
        return _("your %(item)s award from %(brand)s", item=perk[0], brand=perk[1])


# How the report names a record of each category: (names, row, what it is about — its award
# as "your Nova X1 phone", None for none; a notice passes "it" or "the Nova X1 phone from …").
def _feedback(names, row, about):
    empty = row.rating is None and row.text_enc is None
    if about is None:
        return _("the request for your feedback") if empty else _("your feedback")
    if empty:
        return _("the request to rate %(about)s", about=about)
    return _("your feedback on %(about)s", about=about)


def _promotion(names, row, about):
    audience = audience_words(row.audience)
    if about:
        return _(
            "the promotion shown to %(audience)s about %(about)s", audience=audience, about=about
        )
    return _("the promotion shown to %(audience)s", audience=audience)


def _other(names, row, about):
    return _("a record of yours")


def _disclosure(names, row, about):
    if about:
        return _("your entry on the disclosure list for %(about)s", about=about)
    return _("your entry on a disclosure list")


def _recipient_id(names, row, about):
    recipient = names.subscribers.get(row.subscriber_id)
    if recipient is None:
        return _("what a recipient calls you")
    return _("what %(recipient)s calls you", recipient=recipient)


def _score(score) -> str:
    """A score as the language writes numbers ("72.5"; German "72,5")."""
    return f"{score:g}" if wording.current_language() == "en" else wording.number(score)


_NAMES = {
    "profile": lambda n, r, a: _("your account profile"),
    "influence_scores": lambda n, r, a: _(
        "your influence score of %(score)s", score=_score(r.score)
    ),
    "influence_topics": lambda n, r, a: _(
        "the topic “%(topic)s” you are said to influence", topic=r.topic
    ),
    "disclosures": _disclosure,
    "promotions": _promotion,
    "consents": lambda n, r, a: _("your consent to %(purpose)s", purpose=purpose_words(r.purpose)),
    "feedback": _feedback,
    "feedback_pictures": lambda n, r, a: _("a picture you added to your feedback"),
    "rights_requests": lambda n, r, a: request_phrase(r.type, r.reference),
    "request_messages": lambda n, r, a: _(
        "%(request)s: %(step)s", request=n.request(r.request_id), step=step_words(r.kind)
    ),
    "evidence": lambda n, r, a: _(
        "a file you sent with %(request)s", request=n.request(r.request_id)
    ),
    "notices": lambda n, r, a: _("an email %(topic)s", topic=topic_words(r.topic)),
    "recipient_ids": _recipient_id,
}
# The record named again, later in the same sentence, where that is shorter.
_SHORT = {
    "influence_scores": lambda r: _("your influence score"),
    "influence_topics": lambda r: _("the topic “%(topic)s”", topic=r.topic),
}


def _promotion_in_notice(names, row, it, award):
    audience = audience_words(row.audience)
    if award is None:
        return _("the promotion that showed your name to %(audience)s", audience=audience)
    return _(
        "the promotion that told %(audience)s you had won %(perk)s", audience=audience, perk=it
    )


# Where a notice names a record otherwise than the report: (names, row, it, award id).
_IN_NOTICE = {
    "perk_awards": lambda n, r, it, a: n.award_in_notice(r.id),
    "promotions": _promotion_in_notice,
    "profile": lambda n, r, it, a: _("your profile"),
    "influence_scores": lambda n, r, it, a: _("your influence score"),
    # Several topics read as one.
    "influence_topics": lambda n, r, it, a: _("the topics we say you influence"),
}


# --- A record's values in words -------------------------------------------------------------

# Columns a record's view says in its name or heading (its reference, status, what it is), or
# that hold a number only the platform needs (the feedback a picture belongs to).
SAID_ELSEWHERE = ("external_id", "status", "feedback_id")
SAID_IN_NAME = {
    "influence_scores": ("score",),
    "influence_topics": ("topic",),
    "promotions": ("audience",),
    "consents": ("purpose",),
    "rights_requests": ("reference", "type"),
    "request_messages": ("kind",),
    "notices": ("topic",),
}
# Labels that name an internal number in the data map, as the page names what it points to,
# and the parts of values that hold several (a request's details, an email).
LABELS = {
    "consent_id": N_("Consent relied on"),
    "request_id": N_("Sent with"),
    "subscriber_id": N_("Recipient"),
    "records": N_("Records you named"),
    "correction": N_("What is wrong, and what is right"),
    "body": N_("Text"),
}
# Columns whose values are codes, and how each reads.
CODES = {
    "purpose": processes.purpose_words,
    "channel": processes.channel_words,
    "audience": processes.audience_words,
    "kind": processes.step_words,
    "topic": processes.topic_words,
}


def facts(cat: Category, record: dict, names: Names) -> list[tuple[str, str]]:
    """The record's values in words, each with its label (in the language being written); what
    has no value is left out, and so is what the record's name and heading already say (its
    perk or award, its status)."""
    out = []
    hidden = SAID_ELSEWHERE + SAID_IN_NAME.get(cat.key, ())
    for f in cat.fields:
        value = record.get(f.name)
        if value in (None, "", [], {}) or f.kind == "award" or f.column in hidden:
            continue
        if f.kind == "perk":
            out += [(_("Campaign"), stored(value["campaign"])), (_("Worth"), value["value"])]
        elif f.kind == "encrypted_json" and isinstance(value, dict):
            out += [
                (_(LABELS[k]) if k in LABELS else processes.cap(processes.words(k)), stored(v))
                for k, v in value.items()
                if v not in (None, "", [])
            ]
        else:
            said = value_words(f, value, names)
            if said:
                out.append((_(LABELS.get(f.column, f.label)), said))
    return [(label, value) for label, value in out if value]


def value_words(f: Field, value, names: Names) -> str | None:
    if f.kind == "binary":
        return _(
            "a file of %(size)s kB, in the JSON download", size=len(value) * 3 // 4 // 1000 or 1
        )
    if f.kind == "datetime":
        return processes.moment_words(value)
    if f.column in CODES:
        return CODES[f.column](value)
    if f.column == "consent_id":
        purpose = names.consents.get(value)
        if not purpose:
            return None
        return _("your consent to %(purpose)s", purpose=processes.purpose_words(purpose))
    if f.column == "request_id":
        return names.request(value)
    if f.column == "subscriber_id":
        return names.subscribers.get(value)
    return stored(value)


class AsStored(str):
    """A value shown as it was stored — a member's own words, the subject line of an email as
    it was sent, a campaign's code — never translated: a page marks it ``translate="no"`` (the
    templates' ``as_stored`` test), for readers and for translation tools alike."""


def stored(value) -> str:
    """:func:`plain`, marked :class:`AsStored` when the stored value is text."""
    return AsStored(plain(value)) if isinstance(value, str) else plain(value)


def plain(value) -> str:
    """A stored value as text: yes or no, lists with commas, what a dict holds by key."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        return "; ".join(
            f"{processes.words(k)}: {plain(v)}" for k, v in value.items() if v not in (None, "")
        )
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value)
    return str(value)
