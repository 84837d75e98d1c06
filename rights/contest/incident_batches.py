"""An incident's resumable work, a batch of ``BATCH`` awards per transaction behind a cursor
on the incident: correcting the awards its filter matches, with everything built on them, then
telling each member touched, with the apology written once as a template.

What a correction sets, and what it reaches beyond the award (disclosure-list entries and
promotions built on it), is the data map's: the same correction an accepted rectification
makes (:mod:`rights.contest.rectification`), written here as one UPDATE per table per batch.
"""

import re
from datetime import datetime

from sqlalchemy import insert, select, update

from rights.contest.incident_filter import Filter, matching_awards
from rights.delivery import outbox
from rights.errors import Invalid
from rights.ledger import audit
from rights.recipients import downstream
from storage import cascades, datamap, vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Incident,
    IncidentRecord,
    Member,
    Perk,
    PerkAward,
    RecordHistory,
    Subject,
)

BATCH = 500
PLACEHOLDERS = ("{name}", "{perk}", "{incident}")


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _correct(cat: datamap.Category, rows: list, *, actor: str, reason: str, now) -> list[dict]:
    """Give ``rows`` — (id, subject id, value of the correction's first column) — of ``cat``
    the category's correction, as Lethe, in one UPDATE; returns their history rows, each saying
    how the correction's first column changed."""
    correction = cat.correction
    values = correction.at(now)
    db.session.execute(
        update(cat.model)
        .where(cat.model.id.in_([record_id for record_id, _, _ in rows]))
        .values(**values, source="lethe", actor=actor, recorded_at=now)
        .execution_options(synchronize_session=False)
    )
    new = _plain(values[correction.marker])
    return [
        {
            "subject_id": subject_id,
            "record_type": cat.table,
            "record_id": record_id,
            "action": "updated",
            "changed_at": now,
            "source": "lethe",
            "actor": actor,
            "reason": reason,
            "request_id": None,
            "changes_enc": vault.encrypt_json(
                subject_id,
                "record_history.changes_enc",
                {correction.marker: [_plain(old), new]},
            ),
        }
        for record_id, subject_id, old in rows
    ]


def _correct_awards(f: Filter, batch: list, *, actor: str, reason: str, now) -> tuple:
    """Correct a batch of matching awards and what is built on them (each dependant category
    with a correction: one query and one UPDATE per table). Returns the history rows to write
    and how many records of each kind changed."""
    awards = datamap.BY_KEY["perk_awards"]
    award_ids = [a for a, _, _ in batch]
    rows = [(a, s, f.status) for a, s, _ in batch]
    history = _correct(awards, rows, actor=actor, reason=reason, now=now)
    counts = {"awards": len(award_ids)}
    for dependant, rows in cascades.uncorrected_dependants(awards, award_ids):
        if rows:
            history += _correct(dependant, rows, actor=actor, reason=reason, now=now)
        counts[dependant.key] = len(rows)
    return history, counts


def correct_batch(incident: Incident, *, actor: str) -> int:
    """Correct the next batch of matching awards (and their list entries and promotions) in
    this transaction; returns how many awards (0 when done). The caller commits."""
    f = Filter.load(incident.record_filter)
    batch = db.session.execute(
        matching_awards(f).where(PerkAward.id > incident.corrected_through).limit(BATCH)
    ).all()
    if not batch:
        _corrected(incident, actor=actor)
        return 0
    now = utcnow()
    reason = f"incident {incident.reference}: {incident.title}"
    vault.load_keys([s for _, s, _ in batch])
    history, counts = _correct_awards(f, batch, actor=actor, reason=reason, now=now)
    db.session.execute(insert(RecordHistory), history)
    award_ids = [a for a, _, _ in batch]
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
        details={**counts, "through": award_ids[-1]},
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


def _corrected(incident: Incident, *, actor: str) -> None:
    """Nothing left to correct: the incident says so, once."""
    if incident.status != "corrected":
        incident.status, incident.corrected_at = "corrected", utcnow()
        audit.record(
            actor,
            "incident.corrected",
            target=f"incident:{incident.id}",
            details={"awards": incident.corrected},
        )


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


def _to_notify(incident: Incident) -> list:
    """The next batch of members this incident corrected and has not told yet (erased people
    are not written to), with what the apology needs."""
    return db.session.execute(
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


def notify_batch(incident: Incident, *, actor: str) -> int:
    """Queue the apology to the next batch of members whose awards this incident corrected;
    returns how many (0 when done). The caller commits."""
    if not incident.apology_body:
        raise Invalid("Write the apology first.", {"apology_body": ["required"]})
    rows = _to_notify(incident)
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
