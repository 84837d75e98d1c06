"""Right of access (Art. 15): the data itself plus everything Art. 15(1) and (2) require.

The report is built from the data map alone and streamed: records are read in batches
(``BATCH`` at a time) with their provenance and history loaded per batch, so a member with tens
of thousands of records never sits in memory whole and no query runs per record.

It opens with a summary in plain words (:mod:`rights.access.summary`: what we hold, who we gave
it to, what is held back or being corrected, how each troubled record got that way), in the
JSON as ``summary``. On the page (:func:`iter_sections`) each record also reads in words: named
by what it is and its values as a person says them (:mod:`rights.holdings.names`), its history
a sentence a change (:mod:`rights.access.stories`), together its :class:`Record`; the JSON
keeps every stored value as it is.

What is declared once (the data map's words, the rights below) is English here, as the JSON
says it, and shown translated on the page (the templates' ``translated`` filter); what is
written for the person (the summary, each record's name, values and story) is written in the
language being written.
"""

import base64
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from retention_policies import policies
from rights.access import summary
from rights.access.stories import Change, history_entry, story
from rights.access.stories import iso as _iso  # rights/erasure/statements.py reads it here
from rights.holdings.names import LABELS, Names, facts
from rights.lifecycle.notices import remedies_text
from storage import processes, recipients, vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES, Category, Field
from storage.db import db
from storage.models import (
    Agent,
    Brand,
    Campaign,
    DrpRequest,
    Perk,
    PerkAward,
    RecordHistory,
    RightsRequest,
    Subject,
)
from storage.wording import N_

BATCH = 500

RIGHTS = {
    "rectification": N_(
        "You can have inaccurate data about you corrected and incomplete data completed (Art. 16)."
    ),
    "erasure": N_(
        "You can have your data erased where there is no longer a reason to keep it, and close "
        "your account (Art. 17)."
    ),
    "restriction": N_(
        "You can have the use of your data restricted while its accuracy or our reasons are "
        "checked (Art. 18)."
    ),
    "objection": N_(
        "You can object to uses based on our legitimate interests, including the profiling "
        "behind your influence score, and to direct marketing and the use of your name and "
        "likeness at any time (Art. 21)."
    ),
    "portability": N_("You can receive the data you gave us in a machine-readable form (Art. 20)."),
    "withdraw_consent": N_(
        "Where we rely on your consent you can withdraw it at any time, as easily as you gave "
        "it (Art. 7(3))."
    ),
    "human_review": N_(
        "You can ask a person to review a decision made by automated means, give your view and "
        "contest it (Art. 22(3))."
    ),
}


def retention_of(cat: Category) -> dict:
    policy = policies()[cat.retention_policy]
    return {
        "period": str(policy.period),
        "starts": policy.starts,
        "then": policy.action,
        "description": policy.description,
        "after_erasure": (
            str(policy.retain_after_erasure) if cat.erasure.action == "retain" else None
        ),
    }


def category_info(cat: Category) -> dict:
    """What Art. 15(1)(a)-(d), (g) and (h) require to be said about one category."""
    info = {
        "key": cat.key,
        "title": cat.title,
        "description": cat.description,
        "purposes": list(cat.purposes),
        "legal_basis": cat.legal_basis,
        "recipients": recipients.labels(cat.recipients),
        "retention": retention_of(cat),
        "source": cat.source,
        "on_erasure": {"action": cat.erasure.action, "exception": cat.erasure.exception},
    }
    if cat.profiling:
        info["automated_decision_making"] = cat.profiling
    return info


def _perk_lookup(perk_ids: set[int]) -> dict[int, dict]:
    if not perk_ids:
        return {}
    rows = db.session.execute(
        select(Perk, Brand, Campaign)
        .join(Brand, Perk.brand_id == Brand.id)
        .outerjoin(Campaign, Perk.campaign_id == Campaign.id)
        .where(Perk.id.in_(perk_ids))
    )
    return {
        perk.id: {
            "perk_id": perk.external_id,
            "item": perk.item,
            "brand": brand.name,
            "campaign": campaign.name if campaign else None,
            "value": f"{perk.value_cents / 100:.2f} {perk.currency}",
        }
        for perk, brand, campaign in rows
    }


def _award_lookup(award_ids: set[int]) -> dict[int, str]:
    ids = {i for i in award_ids if i is not None}
    if not ids:
        return {}
    rows = db.session.execute(
        select(PerkAward.id, PerkAward.external_id).where(PerkAward.id.in_(ids))
    )
    return dict(rows.all())


RESOLVERS = {"perk": _perk_lookup, "award": _award_lookup}


def lookups(fields, rows) -> dict[str, dict]:
    """For one batch: what reference fields point at (perks, awards), one query per kind."""
    return {
        kind: resolve({getattr(r, f.column) for r in rows for f in fields if f.kind == kind})
        for kind, resolve in RESOLVERS.items()
        if any(f.kind == kind for f in fields)
    }


def field_value(cat: Category, f: Field, row, refs: dict | None = None, *, binary="base64"):
    raw = getattr(row, f.column)
    context = f"{cat.table}.{f.column}"
    if f.kind == "encrypted":
        return vault.decrypt(row.subject_id, context, raw)
    if f.kind == "encrypted_json":
        return vault.decrypt_json(row.subject_id, context, raw)
    if f.kind == "binary":
        data = vault.decrypt_bytes(row.subject_id, context, raw)
        if data is None:
            return None
        return base64.b64encode(data).decode() if binary == "base64" else data
    if f.kind in RESOLVERS:
        return (refs or {}).get(f.kind, {}).get(raw)
    return _iso(raw)


def iter_rows(cat: Category, subject_id: str) -> Iterator[list]:
    """The subject's rows of one category, a batch (list) at a time, in primary-key order.

    Plain rows (Core), not ORM objects: nothing accumulates in the session's identity map
    however many records a subject has, and keyset pagination keeps each query cheap.
    """
    table = cat.model.__table__
    column = table.c[cat.subject_column]
    pk = list(table.primary_key.columns)[0]
    last = None
    # Only the category's rows of a shared table (the outbox's emails, not its jobs).
    where = [table.c[cat.where[0]].in_(cat.where[1])] if cat.where else []
    while True:
        query = select(table).where(column == subject_id, *where).order_by(pk).limit(BATCH)
        if last is not None:
            query = query.where(pk > last)
        rows = db.session.execute(query).all()
        if not rows:
            return
        yield rows
        last = getattr(rows[-1], pk.name)


def _history(cat: Category, subject_id: str, ids: list) -> dict[int, list]:
    out = defaultdict(list)
    if not cat.has_provenance:
        return out
    h = RecordHistory.__table__.c
    rows = db.session.execute(
        select(
            h.record_id,
            h.action,
            h.changed_at,
            h.source,
            h.actor,
            h.reason,
            h.request_id,
            h.changes_enc,
        )
        .where(h.record_type == cat.table, h.record_id.in_(ids))
        .order_by(h.changed_at, h.id)
    )
    for row in rows:
        out[row.record_id].append(history_entry(row, subject_id))
    return out


def iter_batches(
    cat: Category, subject_id: str, *, fields=None, with_provenance=True, binary="base64"
) -> Iterator[list[tuple]]:
    """The records of a category a batch at a time, each as (row, record dict: fields, then
    provenance and history)."""
    fields = fields if fields is not None else cat.fields
    for rows in iter_rows(cat, subject_id):
        refs = lookups(fields, rows)
        ids = [r.id for r in rows]
        history = _history(cat, subject_id, ids) if with_provenance else {}
        batch = []
        for row in rows:
            record = {f.name: field_value(cat, f, row, refs, binary=binary) for f in fields}
            if with_provenance and cat.has_provenance:
                record["provenance"] = {
                    "source": row.source,
                    "actor": row.actor,
                    "recorded_at": _iso(row.recorded_at),
                }
                record["history"] = history.get(row.id, [])
            batch.append((row, record))
        yield batch


def iter_records(
    cat: Category, subject_id: str, *, fields=None, with_provenance=True, binary="base64"
) -> Iterator[dict]:
    """Each record of a category as a dict: fields, then provenance and history."""
    for batch in iter_batches(
        cat, subject_id, fields=fields, with_provenance=with_provenance, binary=binary
    ):
        for _, record in batch:
            yield record


@dataclass(frozen=True)
class RecordView:
    """A record as a person reads it."""

    name: str  # "Your Nova X1 phone from Nova Mobile"
    status: str | None  # "not received"
    facts: list[tuple[str, str]]  # (label, value in words), empty values left out
    long: list[tuple[str, str]]  # long texts (an email's body), shown folded
    story: list[Change]  # its history, a sentence a change
    reference: str | None  # the platform's id, to name it to us ("aw-0001-nova")


class Record(dict):
    """A record: the dict the JSON report and the officers' records page show, whose
    ``view`` is the same record in words, for the subject's page."""

    view: RecordView


def iter_named(cat: Category, subject_id: str) -> Iterator[Record]:
    """Each record of a category with its :class:`RecordView`; what names the records of a
    batch (their perks, requests, consents) is loaded once for the batch."""
    for batch in iter_batches(cat, subject_id):
        names = Names()
        history = [h for _, record in batch for h in record.get("history", ())]
        names.load(cat.key, [row for row, _ in batch], history)
        for row, record in batch:
            named = Record(record)
            name = names.name(cat.key, row)
            status = record.get("status")
            said = facts(cat, record, names)
            named.view = RecordView(
                name=processes.cap(name.what),
                status=processes.status_words(status, cat.key) if status else None,
                facts=[f for f in said if not folded(f)],
                long=[f for f in said if folded(f)],
                story=story(cat.key, name, record.get("history", []), row, names),
                reference=name.reference,
            )
            yield named


# A value longer than this many characters, or an email's text, is folded away under the
# record's other values.
LONG = 240


def folded(fact: tuple[str, str]) -> bool:
    label, value = fact
    body = LABELS["body"]
    return label == gettext(body) or len(value) > LONG


def profiling_summary() -> dict:
    explained = [c for c in CATEGORIES if c.profiling]
    return {
        "exists": bool(explained),
        "categories": [c.key for c in explained],
        "logic": explained[0].profiling if explained else None,
        # English, as the JSON says it; the page shows it translated.
        "significance_and_consequences": N_(
            "The score and topics decide which perk campaigns you are offered: a higher score "
            "in a topic makes an offer from brands in that topic more likely, so you may not be "
            "offered perks you would otherwise get. They decide nothing else about you and have "
            "no legal effect."
        ),
    }


def report_meta(request: RightsRequest) -> dict:
    """Everything in the report except the records themselves."""
    cfg = current_app.config
    subject = db.session.get(Subject, request.subject_id)
    return {
        "report": "access",
        "generated_at": utcnow().isoformat(),
        "controller": {"name": cfg["CONTROLLER_NAME"], "contact": cfg["CONTROLLER_CONTACT"]},
        "request": {
            "reference": request.reference,
            "received_at": _iso(request.received_at),
            "completed_at": _iso(request.completed_at),
            # The authorized agent that filed it for the person, if one did (DRP).
            "filed_for_you_by": _agent_name(request),
        },
        "subject": {"ref": subject.ref},
        "purposes": sorted({p for c in CATEGORIES for p in c.purposes}),
        "recipients": sorted(
            {label for c in CATEGORIES for label in recipients.labels(c.recipients)}
        ),
        "retention": {c.key: retention_of(c) for c in CATEGORIES},
        "sources": {c.key: c.source for c in CATEGORIES},
        "your_rights": RIGHTS,
        "complaint": remedies_text(),
        "automated_decision_making": profiling_summary(),
        "transfers": recipients.all_transfers(),
        # What it all comes to, in plain words, before any of it (rights/access/summary.py).
        "summary": summary.build(request.subject_id),
    }


def _agent_name(request: RightsRequest) -> str | None:
    if request.channel != "drp":
        return None
    return db.session.execute(
        select(Agent.name)
        .join(DrpRequest, DrpRequest.agent_id == Agent.id)
        .where(DrpRequest.rights_request_id == request.id)
    ).scalar_one_or_none()


def held_categories(meta: dict) -> set[str]:
    """The categories the report's summary counted records in: the others are not queried
    again for rows (their counts and their rows are read with the same filter, storage's
    ``row_filter``). Most members have records in a few of the data map's sixteen."""
    return {held["category"] for held in meta["summary"]["held"]}


def iter_sections(
    request: RightsRequest, meta: dict | None = None
) -> Iterator[tuple[dict, Iterator[Record]]]:
    """(category info, its records, each with its view in words) for every category of the
    data map, in order: the report as pages show it. With the report's ``meta``, categories
    it counted nothing in are not queried."""
    held = held_categories(meta) if meta is not None else None
    for cat in CATEGORIES:
        if held is not None and cat.key not in held:
            yield category_info(cat), iter(())
        else:
            yield category_info(cat), iter_named(cat, request.subject_id)


def stream_json(request: RightsRequest) -> Iterator[str]:
    """The whole report as JSON text, produced piece by piece."""
    vault.load_keys([request.subject_id])
    meta = report_meta(request)
    head = json.dumps(meta, indent=None)[:-1]
    yield head + ', "categories": ['
    held = held_categories(meta)
    sections = (
        (category_info(c), iter_records(c, request.subject_id) if c.key in held else ())
        for c in CATEGORIES
    )
    for i, (info, records) in enumerate(sections):
        yield ("," if i else "") + json.dumps(info)[:-1] + ', "records": ['
        for j, record in enumerate(records):
            yield ("," if j else "") + json.dumps(record)
        yield "]}"
    yield "]}"
