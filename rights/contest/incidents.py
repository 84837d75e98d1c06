"""Incidents: "how many others did this happen to?"

An officer describes a fault as a filter over perk awards — this perk, written by this source
process, in this date range, marked received with no shipment — and sees how many members it
matches and who. One audited step then corrects them all, in keyset batches of ``BATCH``
awards, each batch one transaction that moves a cursor on: a run stopped halfway resumes where
it stopped, and a second run finds nothing left to do (corrected awards no longer match). Each
correction writes a history row naming the incident, so every member's access report shows
the incident that touched their record. An apology written once as a template is then queued
to each member touched, in the same resumable way.
"""

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, insert, select, update

from rights.contest import rectification
from rights.delivery import outbox
from rights.errors import Invalid, NotFound
from rights.holdings import restrictions
from rights.ledger import audit
from rights.recipients import downstream
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    AuditEvent,
    Disclosure,
    Incident,
    IncidentRecord,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RecordHistory,
    Subject,
)

BATCH = 500
PLACEHOLDERS = ("{name}", "{perk}", "{incident}")


@dataclass
class Filter:
    perk: str
    source: str | None = None
    status: str = "received"
    since: datetime | None = None
    until: datetime | None = None
    no_shipment: bool = True

    @classmethod
    def load(cls, data: dict) -> "Filter":
        return cls(
            perk=data["perk"],
            source=data.get("source") or None,
            status=data.get("status") or "received",
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
            no_shipment=bool(data.get("no_shipment", True)),
        )

    def dump(self) -> dict:
        return {
            "perk": self.perk,
            "source": self.source,
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "no_shipment": self.no_shipment,
        }

    def describe(self) -> str:
        parts = [f"awards of perk {self.perk} marked {self.status}"]
        if self.source:
            parts.append(f"written by {self.source}")
        if self.since or self.until:
            parts.append(
                f"between {self.since.date() if self.since else 'the start'} and "
                f"{self.until.date() if self.until else 'now'}"
            )
        if self.no_shipment:
            parts.append("with no shipment recorded")
        return ", ".join(parts)


def _query(f: Filter):
    """Awards matching the filter (ids and subjects), in id order. Records kept only under a
    legal exception after an erasure are never touched."""
    query = (
        select(PerkAward.id, PerkAward.subject_id, PerkAward.external_id)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .where(
            Perk.external_id == f.perk,
            PerkAward.status == f.status,
            PerkAward.restricted_at.is_(None),
            # A record a request holds back (Art. 18) is decided on that request, not here.
            ~restrictions.in_force(PerkAward),
        )
        .order_by(PerkAward.id)
    )
    if f.no_shipment:
        query = query.where(PerkAward.shipped_at.is_(None))
    if f.since:
        query = query.where(PerkAward.status_at >= f.since)
    if f.until:
        query = query.where(PerkAward.status_at < f.until)
    if f.source:
        query = query.where(
            exists().where(
                RecordHistory.record_type == PerkAward.__tablename__,
                RecordHistory.record_id == PerkAward.id,
                RecordHistory.source == f.source,
            )
        )
    return query


def _validate(data: dict) -> Filter:
    errors = {}
    perk = (data.get("perk") or "").strip()
    if not perk:
        errors["perk"] = ["required"]
    elif not db.session.execute(select(Perk.id).where(Perk.external_id == perk)).first():
        errors["perk"] = ["no perk with this id"]
    try:
        f = Filter.load({**data, "perk": perk})
    except (ValueError, TypeError):
        errors["since"] = ["dates as YYYY-MM-DD"]
        f = None
    if f and f.since and f.until and f.since >= f.until:
        errors["until"] = ["after the start"]
    if errors:
        raise Invalid("The filter cannot be used.", errors)
    return f


def matches(f: Filter) -> int:
    return db.session.execute(select(func.count()).select_from(_query(f).subquery())).scalar_one()


def preview(f: Filter, *, limit: int = 50) -> list[dict]:
    """The first matching members (for the officer to see who), with their award."""
    rows = db.session.execute(
        _query(f)
        .add_columns(PerkAward.status_at, Member.external_id, Subject.ref)
        .join(Member, Member.subject_id == PerkAward.subject_id)
        .join(Subject, Subject.id == PerkAward.subject_id)
        .limit(limit)
    ).all()
    return [{"award": r[2], "status_at": r[3], "member": r[4], "subject_ref": r[5]} for r in rows]


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
    f = _validate(record_filter)
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


def _history_rows(rows, record_type: str, changes: dict, *, actor: str, reason: str, now):
    return [
        {
            "subject_id": subject_id,
            "record_type": record_type,
            "record_id": record_id,
            "action": "updated",
            "changed_at": now,
            "source": "lethe",
            "actor": actor,
            "reason": reason,
            "request_id": None,
            "changes_enc": vault.encrypt_json(subject_id, "record_history.changes_enc", changes),
        }
        for record_id, subject_id in rows
    ]


def correct_batch(incident: Incident, *, actor: str) -> int:
    """Correct the next batch of matching awards (and their list entries and promotions) in
    this transaction; returns how many awards (0 when done). The caller commits."""
    f = Filter.load(incident.record_filter)
    batch = db.session.execute(
        _query(f).where(PerkAward.id > incident.corrected_through).limit(BATCH)
    ).all()
    if not batch:
        if incident.status != "corrected":
            incident.status, incident.corrected_at = "corrected", utcnow()
            audit.record(
                actor,
                "incident.corrected",
                target=f"incident:{incident.id}",
                details={"awards": incident.corrected},
            )
        return 0
    now = utcnow()
    reason = f"incident {incident.reference}: {incident.title}"
    vault.load_keys([s for _, s, _ in batch])
    award_ids = [a for a, _, _ in batch]
    db.session.execute(
        update(PerkAward)
        .where(PerkAward.id.in_(award_ids))
        .values(
            status="not_received",
            status_at=now,
            received_at=None,
            source="lethe",
            actor=actor,
            recorded_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    history = _history_rows(
        [(a, s) for a, s, _ in batch],
        "perk_awards",
        {"status": [f.status, "not_received"]},
        actor=actor,
        reason=reason,
        now=now,
    )
    disclosures = db.session.execute(
        select(Disclosure.id, Disclosure.subject_id).where(
            Disclosure.award_id.in_(award_ids), Disclosure.status != "withdrawn"
        )
    ).all()
    if disclosures:
        db.session.execute(
            update(Disclosure)
            .where(Disclosure.id.in_([d for d, _ in disclosures]))
            .values(status="withdrawn", source="lethe", actor=actor, recorded_at=now)
            .execution_options(synchronize_session=False)
        )
        history += _history_rows(
            disclosures,
            "disclosures",
            {"status": ["disclosed", "withdrawn"]},
            actor=actor,
            reason=reason,
            now=now,
        )
    promotions = db.session.execute(
        select(Promotion.id, Promotion.subject_id).where(
            Promotion.award_id.in_(award_ids), Promotion.withdrawn_at.is_(None)
        )
    ).all()
    if promotions:
        db.session.execute(
            update(Promotion)
            .where(Promotion.id.in_([p for p, _ in promotions]))
            .values(withdrawn_at=now, source="lethe", actor=actor, recorded_at=now)
            .execution_options(synchronize_session=False)
        )
        history += _history_rows(
            promotions,
            "promotions",
            {"withdrawn_at": [None, now.isoformat()]},
            actor=actor,
            reason=reason,
            now=now,
        )
    db.session.execute(insert(RecordHistory), history)
    db.session.execute(
        insert(IncidentRecord),
        [
            {
                "incident_id": incident.id,
                "record_type": "perk_awards",
                "record_id": a,
                "corrected_at": now,
            }
            for a in award_ids
        ],
    )
    incident.corrected_through = award_ids[-1]
    incident.corrected += len(award_ids)
    incident.status = "correcting"
    audit.record(
        actor,
        "incident.batch_corrected",
        target=f"incident:{incident.id}",
        details={
            "awards": len(award_ids),
            "disclosures": len(disclosures),
            "promotions": len(promotions),
            "through": award_ids[-1],
        },
    )
    downstream.announce(
        "subject.rectified",
        {
            "type": "subject.rectified",
            "incident": incident.reference,
            "records": [{"type": "perk_awards", "id": e} for _, _, e in batch],
            "action": "correct: the award was not received",
        },
    )
    return len(award_ids)


def set_apology(incident: Incident, *, subject: str, body: str, actor: str) -> None:
    subject, body = (subject or "").strip(), (body or "").strip()
    if incident.notified:
        raise Invalid(
            "The apology has been sent to members: it stays as they received it.",
            {"apology_body": ["already sent"]},
        )
    errors = {}
    if not subject:
        errors["apology_subject"] = ["required"]
    if not body:
        errors["apology_body"] = ["required"]
    unknown = {p for p in _placeholders(body + subject)} - set(PLACEHOLDERS)
    if unknown:
        errors["apology_body"] = [f"unknown placeholder(s): {', '.join(sorted(unknown))}"]
    if errors:
        raise Invalid("The apology cannot be used.", errors)
    incident.apology_subject, incident.apology_body = subject[:200], body
    audit.record(actor, "incident.apology_written", target=f"incident:{incident.id}")


def _placeholders(text: str) -> list[str]:
    return re.findall(r"\{[a-z_]+\}", text)


def notify_batch(incident: Incident, *, actor: str) -> int:
    """Queue the apology to the next batch of members whose awards this incident corrected;
    returns how many (0 when done). The caller commits."""
    if not incident.apology_body:
        raise Invalid("Write the apology first.", {"apology_body": ["required"]})
    rows = db.session.execute(
        select(
            IncidentRecord.record_id,
            PerkAward.subject_id,
            PerkAward.external_id,
            Perk.item,
            Member.email_enc,
            Member.name_enc,
        )
        .join(PerkAward, PerkAward.id == IncidentRecord.record_id)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .join(Member, Member.subject_id == PerkAward.subject_id)
        .join(Subject, Subject.id == PerkAward.subject_id)
        .where(
            IncidentRecord.incident_id == incident.id,
            IncidentRecord.record_type == "perk_awards",
            IncidentRecord.record_id > incident.notified_through,
            Subject.erased_at.is_(None),
        )
        .order_by(IncidentRecord.record_id)
        .limit(BATCH)
    ).all()
    if not rows:
        if incident.notified_at is None and incident.notified:
            incident.notified_at = utcnow()
            audit.record(
                actor,
                "incident.notified",
                target=f"incident:{incident.id}",
                details={"members": incident.notified},
            )
        return 0
    vault.load_keys([r.subject_id for r in rows])
    for r in rows:
        name = vault.decrypt(r.subject_id, "members.name_enc", r.name_enc) or "there"
        values = {"{name}": name, "{perk}": r.item, "{incident}": incident.reference}
        body, title = incident.apology_body, incident.apology_subject
        for key, value in values.items():
            body, title = body.replace(key, value), title.replace(key, value)
        outbox.enqueue_email(
            subject_id=r.subject_id,
            to=vault.decrypt(r.subject_id, "members.email_enc", r.email_enc),
            title=title,
            body=body,
            topic="notice.incident",
            request_id=None,
        )
    incident.notified_through = rows[-1].record_id
    incident.notified += len(rows)
    audit.record(
        actor,
        "incident.batch_notified",
        target=f"incident:{incident.id}",
        details={"members": len(rows), "through": rows[-1].record_id},
    )
    return len(rows)


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
