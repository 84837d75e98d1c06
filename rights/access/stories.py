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
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rights.holdings.names import Name, Names
from storage import vault
from storage.datamap import BY_KEY
from storage.processes import (
    audience_words,
    by_whom,
    date_words,
    join,
    status_words,
    words,
)

# States that close a record: a process moving it out of one has overruled a "no".
CLOSED = {
    "perk_awards": {"ineligible", "revoked", "not_received"},
    "disclosures": {"withdrawn"},
    "consents": {"withdrawn"},
}
NO_SHIPMENT = "No shipment was recorded."
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
