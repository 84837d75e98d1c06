"""An incident's resumable work, a batch of ``BATCH`` awards or members per transaction, each
recorded as it is done: correcting the awards its filter matches, with everything built on
them, recording unchanged those a request of the member's own decides, then telling each
member touched once, with the apology written once as a template.

What a correction sets, and what it reaches beyond the award (disclosure-list entries and
promotions built on it), is the data map's: the same correction an accepted rectification
makes (:mod:`rights.contest.rectification`), written here as one UPDATE per table per batch.

The apology is the officer's text, sent as they wrote it; what Lethe adds to it (the word
standing in for a name it does not know) is written in the member's language: that of their
most recent request with a language (one query per batch), else English.
"""

import re
from datetime import datetime

from flask_babel import gettext
from sqlalchemy import func, insert, select, update

from rights.contest.incident_filter import Filter
from rights.contest.incident_touched import TO_CORRECT, decided_earlier, first_to_tell, live
from rights.delivery import outbox
from rights.errors import Invalid
from rights.ledger import audit
from rights.recipients import downstream
from storage import cascades, datamap, vault, wording
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Incident,
    IncidentRecord,
    Member,
    Perk,
    PerkAward,
    RecordHistory,
    RightsRequest,
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


def _lock(incident: Incident) -> None:
    """Hold the incident's row for this transaction and read it afresh (PostgreSQL: a second
    officer pressing the same button waits, then finds the work done; SQLite has one writer)."""
    db.session.flush()
    db.session.refresh(incident, with_for_update=True)


def _record(incident: Incident, rows: list[tuple], *, corrected_at) -> None:
    """Record awards the incident touched: (award id, request that decided it or None)."""
    db.session.execute(
        insert(IncidentRecord),
        [
            {
                "incident_id": incident.id,
                "record_type": "perk_awards",
                "record_id": award_id,
                "corrected_at": corrected_at,
                "decided_by_request_id": request_id,
            }
            for award_id, request_id in rows
        ],
    )


def record_decided(incident: Incident, f: Filter, *, actor: str) -> int:
    """Record up to ``BATCH`` of the awards a request of their member's own decides — holds
    back now, or had corrected already — that the incident has not recorded yet, unchanged;
    returns how many. Their members are touched, and told, like the others."""
    held = [
        (r.award_id, r.request_id)
        for r in db.session.execute(live(f, incident.id, held_only=True).limit(BATCH))
    ]
    earlier = decided_earlier(f)
    if earlier:
        known = set(
            db.session.execute(
                select(IncidentRecord.record_id).where(
                    IncidentRecord.incident_id == incident.id,
                    IncidentRecord.record_type == "perk_awards",
                    IncidentRecord.record_id.in_(list(earlier)),
                )
            ).scalars()
        )
        held += [(a, r) for a, r in earlier.items() if a not in known]
    rows = held[:BATCH]
    if not rows:
        return 0
    _record(incident, rows, corrected_at=None)
    audit.record(
        actor,
        "incident.batch_decided",
        target=f"incident:{incident.id}",
        details={"awards": len(rows)},
    )
    return len(rows)


def correct_batch(incident: Incident, *, actor: str) -> int:
    """Go through the next batch of awards the filter matches (in id order): correct those
    still to correct (and their list entries and promotions), and record, unchanged, those a
    request of their member's own holds back; then the awards such a request had corrected
    already. Returns how many awards it went through (0 when done). The caller commits.

    Each award is recorded as it is done, and recorded awards are not looked at again, so a
    run stopped halfway resumes where it stopped and a second run finds nothing left to do."""
    _lock(incident)
    f = Filter.load(incident.record_filter)
    batch = db.session.execute(live(f, incident.id).limit(BATCH)).all()
    if not batch:
        decided = record_decided(incident, f, actor=actor)
        if not decided:
            _corrected(incident, actor=actor)
        return decided
    now = utcnow()
    free = [(r.award_id, r.subject_id, r.external_id) for r in batch if r.state == TO_CORRECT]
    held = [(r.award_id, r.request_id) for r in batch if r.state != TO_CORRECT]
    counts = {"awards": len(free)}
    if free:
        reason = f"incident {incident.reference}: {incident.title}"
        vault.load_keys([s for _, s, _ in free])
        history, counts = _correct_awards(f, free, actor=actor, reason=reason, now=now)
        db.session.execute(insert(RecordHistory), history)
        _record(incident, [(a, None) for a, _, _ in free], corrected_at=now)
        incident.corrected_through = free[-1][0]
        incident.corrected += len(free)
    if held:
        _record(incident, held, corrected_at=None)
    incident.status = "correcting"
    audit.record(
        actor,
        "incident.batch_corrected",
        target=f"incident:{incident.id}",
        details={**counts, "decided": len(held), "through": batch[-1].award_id},
    )
    if free:
        downstream.announce(
            "subject.rectified",
            {
                "type": "subject.rectified",
                "incident": incident.reference,
                "records": [{"type": "perk_awards", "id": e} for _, _, e in free],
                "action": "correct: the award was not received",
            },
        )
    return len(batch)


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


def _fill(incident: Incident, *, name: str | None, item: str) -> tuple[str, str]:
    """The apology's title and body as one member receives them (in the language being
    written, for the word standing in for an unknown name: "Hi there")."""
    values = {"{name}": name or gettext("there"), "{perk}": item, "{incident}": incident.reference}
    title, body = incident.apology_subject or "", incident.apology_body or ""
    for key, value in values.items():
        title, body = title.replace(key, value), body.replace(key, value)
    return title, body


def _item(incident: Incident) -> str:
    perk = incident.record_filter["perk"]
    return db.session.execute(select(Perk.item).where(Perk.external_id == perk)).scalar_one()


def apology_preview(incident: Incident) -> dict | None:
    """The apology filled in for the first member it will go to (their platform id, name,
    title and body), for the officer to read before sending; None when nobody is to be told."""
    subject_id = first_to_tell(incident)
    if subject_id is None or not incident.apology_body:
        return None
    member = db.session.execute(select(Member).where(Member.subject_id == subject_id)).scalar_one()
    name = vault.decrypt(subject_id, "members.name_enc", member.name_enc)
    title, body = _fill(incident, name=name, item=_item(incident))
    return {"member": member.external_id, "name": name, "title": title, "body": body}


def _to_notify(incident: Incident) -> list[str]:
    """The next batch of members to tell, in subject order: those with a record the incident
    recorded (corrected, or decided on their own request) and no record saying they were
    told. Erased people are not written to."""
    told = (
        select(PerkAward.subject_id)
        .join(IncidentRecord, IncidentRecord.record_id == PerkAward.id)
        .where(
            IncidentRecord.incident_id == incident.id,
            IncidentRecord.record_type == "perk_awards",
            IncidentRecord.notified_at.is_not(None),
        )
    )
    return list(
        db.session.execute(
            select(PerkAward.subject_id)
            .distinct()
            .select_from(IncidentRecord)
            .join(PerkAward, PerkAward.id == IncidentRecord.record_id)
            .join(Subject, Subject.id == PerkAward.subject_id)
            .join(Member, Member.subject_id == PerkAward.subject_id)
            .where(
                IncidentRecord.incident_id == incident.id,
                IncidentRecord.record_type == "perk_awards",
                IncidentRecord.notified_at.is_(None),
                Subject.erased_at.is_(None),
                PerkAward.subject_id.not_in(told),
            )
            .order_by(PerkAward.subject_id)
            .limit(BATCH)
        ).scalars()
    )


def _languages(subjects: list[str]) -> dict[str, str]:
    """The language of each of ``subjects``' most recent request that has one (the language
    they last wrote to us in), in one query; those who never asked in a language are left out
    (English)."""
    latest = (
        select(
            RightsRequest.subject_id,
            RightsRequest.locale,
            func.row_number()
            .over(
                partition_by=RightsRequest.subject_id,
                order_by=(RightsRequest.received_at.desc(), RightsRequest.id.desc()),
            )
            .label("n"),
        )
        .where(RightsRequest.subject_id.in_(subjects), RightsRequest.locale.is_not(None))
        .subquery()
    )
    return dict(
        db.session.execute(
            select(latest.c.subject_id, latest.c.locale).where(latest.c.n == 1)
        ).all()
    )


def _tell(incident: Incident, subjects: list[str]) -> int:
    """Queue the apology, filled in, to each member of ``subjects`` and record on their
    records that they were told; returns how many members were told."""
    members = db.session.execute(
        select(Member.subject_id, Member.email_enc, Member.name_enc)
        .where(Member.subject_id.in_(subjects))
        .order_by(Member.subject_id)
    ).all()
    item = _item(incident)
    languages = _languages(subjects)
    vault.load_keys(subjects)
    for m in members:
        name = vault.decrypt(m.subject_id, "members.name_enc", m.name_enc)
        with wording.in_language(languages.get(m.subject_id)):
            title, body = _fill(incident, name=name, item=item)
        outbox.enqueue_email(
            subject_id=m.subject_id,
            to=vault.decrypt(m.subject_id, "members.email_enc", m.email_enc),
            title=title,
            body=body,
            topic="notice.incident",
            request_id=None,
        )
    db.session.execute(
        update(IncidentRecord)
        .where(
            IncidentRecord.incident_id == incident.id,
            IncidentRecord.record_type == "perk_awards",
            IncidentRecord.notified_at.is_(None),
            IncidentRecord.record_id.in_(
                select(PerkAward.id).where(PerkAward.subject_id.in_(subjects))
            ),
        )
        .values(notified_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return len(members)


def notify_batch(incident: Incident, *, actor: str) -> int:
    """Queue the apology to the next batch of members the incident touched — once each,
    however many of their awards it touched, members decided on their own request included —
    after recording any such awards not recorded yet. Returns how many members were told and
    awards recorded (0 when done). The caller commits.

    Each member's records say when they were told, in the same transaction as their email is
    queued: a run stopped halfway resumes with the members not told yet, and a second run
    sends nothing."""
    if not incident.apology_body:
        raise Invalid("Write the apology first.", {"apology_body": ["required"]})
    _lock(incident)
    recorded = record_decided(incident, Filter.load(incident.record_filter), actor=actor)
    subjects = _to_notify(incident)
    if not subjects:
        if not recorded and incident.notified_at is None and incident.notified:
            incident.notified_at = utcnow()
            audit.record(
                actor,
                "incident.notified",
                target=f"incident:{incident.id}",
                details={"members": incident.notified},
            )
        return recorded
    told = _tell(incident, subjects)
    incident.notified += told
    audit.record(
        actor,
        "incident.batch_notified",
        target=f"incident:{incident.id}",
        details={"members": told, "decided": recorded},
    )
    return told + recorded
