"""Incidents: "how many others did this happen to?"

An officer describes a fault as a filter over perk awards — this perk, written by this source
process, in this date range, marked received with no shipment — and sees every member it
touched and what became of each: still to correct, corrected by the incident, or decided on a
request of their own (a request that holds the award back under Art. 18, or had corrected it
already: the incident counts and tells them, and never overrides that request). The list and
its counts stay after the correction.

One audited step then corrects them all, in batches of ``BATCH`` awards in award order, each
batch one transaction that records what it did: a run stopped halfway resumes where it
stopped, and a second run finds nothing left to do. Each correction writes a history row naming the
incident, so every member's access report shows the incident that touched their record. An
apology written once as a template is then queued once to each member touched (not per
award; never to an erased person), in the same resumable way. The dashboard shows the officer
what each step will do, with an apology filled in for one member, before it is done.

The filter is in :mod:`rights.contest.incident_filter`, everyone it touched (the list, its
counts, the preview before an incident is opened) in :mod:`rights.contest.incident_touched`,
the batches that correct and tell in :mod:`rights.contest.incident_batches`; the names the
dashboard and the scripts use are this module's too, where they find them.
"""

import secrets
import string

from sqlalchemy import select

from rights.contest import rectification
from rights.contest.incident_batches import (
    BATCH,
    PLACEHOLDERS,
    apology_preview,
    correct_batch,
    notify_batch,
    set_apology,
)
from rights.contest.incident_filter import Filter, validate
from rights.contest.incident_touched import (
    CORRECTED,
    DECIDED,
    LIST_LIMIT,
    TO_CORRECT,
    Touched,
    matches,
    preview,
    touched,
)
from rights.errors import Invalid, NotFound
from rights.ledger import audit
from storage.db import db
from storage.models import AuditEvent, Incident, Perk, PerkAward, RecordHistory

__all__ = [
    "BATCH",
    "CORRECTED",
    "DECIDED",
    "LIST_LIMIT",
    "PLACEHOLDERS",
    "TO_CORRECT",
    "Filter",
    "Touched",
    "all_incidents",
    "apology_preview",
    "correct_batch",
    "get",
    "matches",
    "notify_batch",
    "open_incident",
    "preview",
    "set_apology",
    "suggest_filter",
    "timeline",
    "touched",
    "update_root_cause",
]


def _new_reference() -> str:
    alphabet = string.digits + "ABCDEFGHJKMNPQRSTVWXYZ"
    return "INC-" + "".join(secrets.choice(alphabet) for _ in range(6))


def open_incident(
    *, title: str, root_cause: str, record_filter: dict, actor: str, request_id: str | None
) -> Incident:
    title, root_cause = (title or "").strip(), (root_cause or "").strip()
    errors = {}
    if not title:
        errors["title"] = ["required"]
    if errors:
        raise Invalid("The incident needs a title.", errors)
    f = validate(record_filter)
    incident = Incident(
        reference=_new_reference(),
        title=title[:200],
        root_cause=root_cause or None,
        record_filter=f.dump(),
        opened_from_request_id=request_id,
        opened_by=actor,
    )
    db.session.add(incident)
    db.session.flush()
    audit.record(
        actor,
        "incident.opened",
        target=f"incident:{incident.id}",
        details={"filter": f.dump(), "matches": matches(f)},
    )
    return incident


def get(incident_id) -> Incident:
    try:
        incident = db.session.get(Incident, int(incident_id))
    except (TypeError, ValueError):
        incident = None
    if incident is None:
        raise NotFound("No such incident.")
    return incident


def all_incidents() -> list[Incident]:
    return list(db.session.execute(select(Incident).order_by(Incident.id.desc())).scalars())


def update_root_cause(incident: Incident, root_cause: str, *, actor: str) -> None:
    incident.root_cause = (root_cause or "").strip() or None
    audit.record(actor, "incident.root_cause", target=f"incident:{incident.id}")


def suggest_filter(request) -> dict:
    """A starting filter from a request: the perk of the first award it contests, and the
    process that last wrote that award (the subject's story usually points at the fault)."""
    for record in rectification.contested(request):
        if isinstance(record, PerkAward):
            perk = db.session.get(Perk, record.perk_id)
            source = db.session.execute(
                select(RecordHistory.source)
                .where(
                    RecordHistory.record_type == "perk_awards",
                    RecordHistory.record_id == record.id,
                    RecordHistory.source != "lethe",
                )
                .order_by(RecordHistory.changed_at.desc(), RecordHistory.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return {"perk": perk.external_id, "source": source, "status": "received"}
    return {}


def timeline(incident: Incident) -> list:
    """The incident's audit entries, oldest first."""
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.target == f"incident:{incident.id}")
            .order_by(AuditEvent.id)
        ).scalars()
    )
