"""Restriction of processing (Art. 18): records kept but not used.

A record is restricted while any :class:`Restriction` on it is in force. Everything that hands
records on or uses them — the disclosure list, promotions, solicitations — asks
:func:`in_force` (one ``EXISTS`` per query, no per-row look-ups). Lifting never takes effect at
once: the subject is told first, and the restriction ends ``RESTRICTION_LIFT_NOTICE_HOURS``
later (Art. 18(3)).
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, or_, select

from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import RecordHistory, Restriction, RightsRequest, Subject

REASONS = ("contested", "objection", "requested")


def in_force(model, now: datetime | None = None):
    """A SQL condition: the ``model`` row is under a restriction in force at ``now``."""
    now = now or utcnow()
    return exists().where(
        Restriction.record_type == model.__tablename__,
        Restriction.record_id == model.id,
        Restriction.started_at <= now,
        or_(Restriction.ends_at.is_(None), Restriction.ends_at > now),
    )


def is_restricted(record, now: datetime | None = None) -> bool:
    model = type(record)
    return bool(
        db.session.execute(
            select(in_force(model, now)).select_from(model).where(model.id == record.id)
        ).scalar()
    )


def _history(record, action: str, request: RightsRequest | None, actor: str, reason: str):
    subject_id = record.subject_id
    db.session.add(
        RecordHistory(
            subject_id=subject_id,
            record_type=record.__tablename__,
            record_id=record.id,
            action=action,
            changed_at=utcnow(),
            source="lethe",
            actor=actor,
            reason=reason,
            request_id=request.id if request else None,
            changes_enc=vault.encrypt_json(subject_id, "record_history.changes_enc", {}),
        )
    )
    audit.record(
        actor,
        f"record.{action}",
        subject_ref=db.session.get(Subject, subject_id).ref,
        target=f"{record.__tablename__}:{record.id}",
        details={"reason": reason},
    )


def restrict(record, *, request: RightsRequest | None, reason: str, actor: str) -> bool:
    """Restrict ``record`` from now (flushes). False if this request already restricts it."""
    if reason not in REASONS:
        raise ValueError(reason)
    already = db.session.execute(
        select(Restriction.id).where(
            Restriction.record_type == record.__tablename__,
            Restriction.record_id == record.id,
            Restriction.request_id == (request.id if request else None),
            Restriction.ends_at.is_(None),
        )
    ).first()
    if already:
        return False
    db.session.add(
        Restriction(
            request_id=request.id if request else None,
            record_type=record.__tablename__,
            record_id=record.id,
            reason=reason,
            started_at=utcnow(),
        )
    )
    _history(record, "restricted", request, actor, reason)
    db.session.flush()
    return True


def lift(request: RightsRequest, *, actor: str) -> datetime | None:
    """End the restrictions this request placed, after the notice period (flushes). Returns
    when they end (None if there were none); the caller tells the subject."""
    rows = list(
        db.session.execute(
            select(Restriction).where(
                Restriction.request_id == request.id, Restriction.ends_at.is_(None)
            )
        ).scalars()
    )
    if not rows:
        return None
    ends = utcnow() + timedelta(hours=current_app.config["RESTRICTION_LIFT_NOTICE_HOURS"])
    for row in rows:
        row.ends_at, row.lifted_by = ends, actor
        audit.record(
            actor,
            "record.restriction_lifted",
            target=f"{row.record_type}:{row.record_id}",
            details={"ends_at": ends.isoformat(), "request": request.id},
        )
    db.session.flush()
    return ends


def end_now(request: RightsRequest, *, actor: str) -> int:
    """End this request's restrictions at once (flushes): when the restricted records were
    corrected or withdrawn, there is nothing left to hold back."""
    rows = list(
        db.session.execute(
            select(Restriction).where(
                Restriction.request_id == request.id,
                or_(Restriction.ends_at.is_(None), Restriction.ends_at > utcnow()),
            )
        ).scalars()
    )
    for row in rows:
        row.ends_at, row.lifted_by = utcnow(), actor
    db.session.flush()
    return len(rows)


def of_request(request: RightsRequest) -> list[Restriction]:
    return list(
        db.session.execute(
            select(Restriction).where(Restriction.request_id == request.id).order_by(Restriction.id)
        ).scalars()
    )


def describe(request: RightsRequest) -> list[dict]:
    """This request's restrictions for the officer's page: which record, why, since, until."""
    models = {c.table: c.model for c in CATEGORIES}
    out = []
    for r in of_request(request):
        row = (
            db.session.get(models[r.record_type], r.record_id) if r.record_type in models else None
        )
        out.append(
            {
                "record": f"{r.record_type.replace('_', ' ')} {_name(row, r.record_id)}",
                "reason": r.reason,
                "since": r.started_at,
                "ends_at": r.ends_at,
                "in_force": r.ends_at is None or r.ends_at > utcnow(),
            }
        )
    return out


def _name(row, fallback) -> str:
    return getattr(row, "external_id", None) or str(fallback)


def held_open(request: RightsRequest) -> bool:
    """Whether this request holds records back with no end set yet."""
    return (
        db.session.execute(
            select(Restriction.id).where(
                Restriction.request_id == request.id, Restriction.ends_at.is_(None)
            )
        ).first()
        is not None
    )
