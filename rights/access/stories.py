"""A record's history in sentences a person understands, one a change: "On 9 September 2026 our
fulfilment sync (job 0817) marked your Nova X1 phone as received. No shipment was recorded."

Both the access report (each record's "How it got here", :func:`story`) and its summary (the
troubled records, :mod:`rights.access.summary`) tell histories in these words. Records are named
through :mod:`rights.holdings.names`; codes and who wrote a change through
:mod:`storage.processes`.

A change is *troubling* when a process other than the member set a status the record's own
history does not bear out — an award marked received with no shipment recorded, a record moved
out of a state that closes it (an award found not eligible, taken back or corrected to not
received; a list entry taken off the list; a consent withdrawn; a promotion withdrawn) — and a
*correction* when our privacy team set it right (a rectification accepted, an incident's
correction). :func:`walk` says which, rebuilding the state before each change from the changes
before it. It queries nothing: its callers load a batch's history (each row unsealed by
:func:`history_entry`) and what names its records.

Sentences are written in the language being written (``gettext``), each whole: the frame ("On
<date> <who> <did>.", with its own form for "you") and what the change did ("marked <record> as
<status>"), a phrase a language can order its own way.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import gettext as _

from rights.holdings.names import Name, Names
from storage import vault
from storage.datamap import BY_KEY
from storage.processes import (
    audience_words,
    by_whom,
    date_words,
    in_sentence,
    join,
    status_words,
    who,
    words,
)
from storage.wording import N_

# States that close a record: a process moving it out of one has overruled a "no".
CLOSED = {
    "perk_awards": {"ineligible", "revoked", "not_received"},
    "disclosures": {"withdrawn"},
    "consents": {"withdrawn"},
}
NO_SHIPMENT = N_("No shipment was recorded.")
_INCIDENT = re.compile(r"\bincident (INC-[0-9A-Z]+)")


def iso(value):
    """A stored moment as ISO 8601, in UTC (plain rows may come back naive on SQLite)."""
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
        by = who(h["source"], h["actor"])
        process = by == "process" and h["action"] in ("created", "updated")
        troubling, note = False, None
        new, old = state.get("status"), before.get("status")
        if process and "status" in changes:
            if key == "perk_awards" and new == "received" and not shipped:
                troubling, note = True, _(NO_SHIPMENT)
            elif old in CLOSED.get(key, ()) and new != old:
                troubling, note = (
                    True,
                    _("Before that it was %(status)s.", status=status_words(old, key)),
                )
        if process and key == "promotions" and before.get("withdrawn_at"):
            if "withdrawn_at" in changes and not state.get("withdrawn_at"):
                troubling, note = True, _("Before that it was withdrawn.")
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
        kind = who(h["source"], h["actor"])
        verb = _verb(key, name, h, changes, row, names, by=kind, correction=correction)
        if verb is None:
            continue
        by = by_whom(h["source"], h["actor"])
        reference = names.requests.get(h["request_id"], (None, None))[0]
        sentence = _sentence(date_words(h["at"]), by, kind == "you", verb, _why(h, reference))
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


def _sentence(date: str, by: str, you: bool, did: str, why: tuple[str, str] | None) -> str:
    """ "On 9 September 2026 our fulfilment sync (job 0817) marked your Nova X1 phone as
    received." — with "you" its own sentence (a language may conjugate for it), and why."""
    if why is None:
        if you:
            return _("On %(date)s you %(did)s.", date=date, did=did)
        return _("On %(date)s %(who)s %(did)s.", date=date, who=by, did=did)
    kind, ref = why
    if kind == "asked":
        if you:
            return _(
                "On %(date)s you %(did)s, as you asked (%(request)s).",
                date=date,
                did=did,
                request=ref,
            )
        return _(
            "On %(date)s %(who)s %(did)s, as you asked (%(request)s).",
            date=date,
            who=by,
            did=did,
            request=ref,
        )
    if you:
        return _(
            "On %(date)s you %(did)s, after finding the same fault in other records "
            "(%(incident)s).",
            date=date,
            did=did,
            incident=ref,
        )
    return _(
        "On %(date)s %(who)s %(did)s, after finding the same fault in other records "
        "(%(incident)s).",
        date=date,
        who=by,
        did=did,
        incident=ref,
    )


def _why(h: dict, reference: str | None) -> tuple[str, str] | None:
    """Why our privacy team made a change: ("asked", the request's reference) or
    ("incident", its reference); None to say nothing."""
    if h["action"] == "restricted":
        return None
    if h["source"] == "lethe" and reference:
        return ("asked", reference)
    found = _INCIDENT.search(h["reason"] or "") if h["source"] == "lethe" else None
    return ("incident", found.group(1)) if found else None


# What a change of another kind did, by its action ("anonymised"), after "On <date> <who> …".
ACTIONS = {"anonymised": N_("anonymised %(what)s")}


def _verb(key, name, h, changes, row, names, *, by, correction) -> str | None:
    """What the change did, after "On <date> <who> …"; None when it says nothing a person
    needs (a change of internal numbers only). ``by``: who did it ("you", "team" or
    "process", :func:`storage.processes.who`)."""
    action = h["action"]
    if action == "restricted":
        return _held_back(name, h, names)
    if action not in ("created", "updated"):
        if action in ACTIONS:
            return _(ACTIONS[action], what=name.short)
        return _("%(action)s %(what)s", action=words(action), what=name.short)
    special = _VERBS.get(key)
    said = special(name, h, changes, row, by, correction) if special else None
    return said or _changed(key, name, changes, action)


def _held_back(name: Name, h: dict, names: Names) -> str:
    request = names.request(h["request_id"]) if h["request_id"] else None
    if not request:
        return _("held %(what)s back", what=name.short)
    if h["reason"] == "contested":
        return _("held %(what)s back while we decide %(request)s", what=name.short, request=request)
    if h["reason"] == "objection":
        return _("held %(what)s back while we weigh %(request)s", what=name.short, request=request)
    return _("held %(what)s back, as you asked in %(request)s", what=name.short, request=request)


def _labels(key: str, changes: dict, leave_out=()) -> list[str]:
    """The fields a change changed, as a sentence names them ("shipped"); not the award or
    perk it points to, nor internal numbers, nor the columns ``leave_out``."""
    fields = {f.column.removesuffix("_enc"): f for f in BY_KEY[key].fields}
    return [
        in_sentence(fields[k].label) if k in fields else words(k)
        for k in changes
        if not (k in fields and fields[k].kind in ("perk", "award"))
        and not k.endswith("_id")
        and k not in leave_out
    ]


def _changed(key, name, changes, action) -> str | None:
    if action == "created":
        return _("recorded %(what)s", what=name.what)
    labels = _labels(key, changes)
    if not labels:
        return None
    return _("changed the %(fields)s of %(what)s", fields=join(labels), what=name.what)


def _new(changes: dict, column: str):
    return changes[column][1] if column in changes else None


def _award_verb(name, h, changes, row, by, correction):
    if "status" not in changes:
        return None
    new = _new(changes, "status")
    if correction:
        return _(
            "corrected %(what)s to %(status)s",
            what=name.short,
            status=status_words(new, "perk_awards"),
        )
    if by == "you" and new == "claimed":
        return _("claimed %(what)s", what=name.short)
    return _(
        "marked %(what)s as %(status)s", what=name.short, status=status_words(new, "perk_awards")
    )


def _disclosure_verb(name, h, changes, row, by, correction):
    if "status" not in changes:
        return None
    new = _new(changes, "status")
    if new == "disclosed":
        return _("put %(what)s on the disclosure list", what=name.about)
    if new == "withdrawn":
        return _("took %(what)s off the disclosure list", what=name.about)
    return _(
        "marked %(what)s as %(status)s", what=name.what, status=status_words(new, "disclosures")
    )


def _promotion_verb(name, h, changes, row, by, correction):
    if h["action"] == "created":
        audience = audience_words(row.audience)
        if name.about != name.what:
            if row.uses_likeness:
                return _(
                    "showed %(audience)s a promotion with your name and picture about %(about)s",
                    audience=audience,
                    about=name.about,
                )
            return _(
                "showed %(audience)s a promotion with your name about %(about)s",
                audience=audience,
                about=name.about,
            )
        if row.uses_likeness:
            return _(
                "showed %(audience)s a promotion with your name and picture", audience=audience
            )
        return _("showed %(audience)s a promotion with your name", audience=audience)
    if "withdrawn_at" in changes:
        if _new(changes, "withdrawn_at"):
            return _("withdrew %(what)s", what=name.what)
        return _("showed %(what)s again", what=name.what)
    return None


def _feedback_verb(name, h, changes, row, by, correction):
    if h["action"] == "created" and "rating" not in changes:
        if by == "you":
            return _("left feedback on %(what)s", what=name.about)
        return _("asked you to rate %(what)s", what=name.about)
    if "rating" in changes:
        rating = _new(changes, "rating")
        if rating is None:
            return _("cleared your rating of %(what)s", what=name.about)
        return _(
            "recorded your rating of %(what)s: %(rating)s out of 5", what=name.about, rating=rating
        )
    return None


def _consent_verb(name, h, changes, row, by, correction):
    new = _new(changes, "status")
    if new == "granted":
        if by == "you":
            return _("gave %(what)s", what=name.what)
        return _("recorded %(what)s as given", what=name.what)
    if new == "withdrawn":
        return _("withdrew %(what)s", what=name.what)
    return None


def _profile_verb(name, h, changes, row, by, correction):
    if h["action"] == "created":
        if by == "you":
            return _("joined the platform")
        return _("created %(what)s", what=name.what)
    if _new(changes, "status") == "closed":
        return _("closed your account")
    labels = _labels("profile", changes, leave_out=("status",))
    if not labels:
        return None
    if correction:
        return _("corrected your %(fields)s", fields=join(labels))
    return _("changed your %(fields)s", fields=join(labels))


_VERBS = {
    "perk_awards": _award_verb,
    "disclosures": _disclosure_verb,
    "promotions": _promotion_verb,
    "feedback": _feedback_verb,
    "consents": _consent_verb,
    "profile": _profile_verb,
    "influence_scores": lambda n, h, c, r, by, corr: (
        _("computed %(what)s", what=n.what) if h["action"] == "created" else None
    ),
    "influence_topics": lambda n, h, c, r, by, corr: (
        _("said you influence “%(topic)s”", topic=r.topic) if h["action"] == "created" else None
    ),
}
