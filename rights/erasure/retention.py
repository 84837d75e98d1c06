"""Retention as the officers and the worker use it: sweeps (audited, on a schedule), legal holds
(placed and released by officers, audited), and what the dashboard shows about both. The
engine itself — which rows are due, batches, claims — is :mod:`retention_policies.sweeps`."""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select

from retention_policies import record_of_processing, sweeps
from retention_policies.policies import policies
from rights import spreadsheets
from rights.errors import Invalid, NotFound
from rights.ledger import audit, audit_checkpoints
from storage import leases
from storage.clock import utcnow
from storage.datamap import BY_KEY
from storage.db import db
from storage.models import Campaign, LegalHold, RetentionRun, Subject
from storage.steps import Steps, run_steps

SCOPES = ("subject", "campaign", "category")
BATCH = sweeps.BATCH
MAX_REASON = 500


def run(
    *, actor: str, dry_run: bool = False, progress=None, batch: int = BATCH
) -> list[sweeps.Outcome]:
    """:func:`sweep_steps` now, each step committed."""
    return run_steps(sweep_steps(actor=actor, dry_run=dry_run, progress=progress, batch=batch))


def sweep_steps(
    *, actor: str, dry_run: bool = False, progress=None, batch: int = BATCH
) -> Steps[list[sweeps.Outcome]]:
    """Sweep every policy now, the audit trail included, and audit it with the counts
    (steps: the sweep engine's batches are steps of this run)."""
    outcomes = yield from sweeps.sweep_steps(dry_run=dry_run, progress=progress, batch=batch)
    outcomes.append((yield from _audit_trail(dry_run)))
    if not dry_run:
        audit.record(
            actor,
            "retention.swept",
            details={
                o.key: {"expired": o.expired, "retained": o.retained_removed, "held": o.held}
                for o in outcomes
                if o.expired or o.retained_removed or o.held
            },
        )
        yield
    return outcomes


def _audit_trail(dry_run: bool) -> Steps[sweeps.Outcome]:
    """The audit trail's policy: pruned up to a signed checkpoint (recorded like the rest)."""
    started = utcnow()
    policy = policies()["audit_events"]
    outcome = sweeps.Outcome("audit_events", "audit_events", policy.action)
    cutoff = policy.period.before(started)
    if "audit_events" in sweeps.Holds.at(started).categories:
        outcome.held, _ = audit_checkpoints.preview_prune(cutoff)
    elif dry_run:
        outcome.expired, outcome.oldest = audit_checkpoints.preview_prune(cutoff)
    else:
        outcome.expired = yield from audit_checkpoints.prune_steps(cutoff)
    sweeps.record(outcome, started, dry_run)
    yield
    return outcome


def last_sweep() -> datetime | None:
    return db.session.execute(
        select(RetentionRun.started_at)
        .where(RetentionRun.dry_run.is_(False))
        .order_by(RetentionRun.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def run_if_due() -> bool:
    """:func:`run_if_due_steps` now, each step committed."""
    return run_steps(run_if_due_steps())


def run_if_due_steps() -> Steps[bool]:
    """The worker's schedule: sweep when the last sweep is older than
    ``RETENTION_SWEEP_HOURS`` (steps). One worker at a time sweeps, across all workers (the
    ``retention`` lease, taken only once a sweep is due): of several deciding at once, one
    sweeps and the others find the lease held — or, once it is let go, the sweep done."""
    if not _sweep_due():
        return False
    return (yield from leases.exclusive("retention", _sweep_if_still_due, busy=False))


def _sweep_due() -> bool:
    hours = current_app.config["RETENTION_SWEEP_HOURS"]
    if not hours:
        return False
    last = last_sweep()
    return last is None or last <= utcnow() - timedelta(hours=hours)


def _sweep_if_still_due() -> Steps[bool]:
    if not _sweep_due():  # another worker swept while this one waited for the lease
        return False
    yield from sweep_steps(actor="lethe")
    return True


def recent_runs(limit: int = 60) -> list[RetentionRun]:
    return (
        db.session.execute(
            select(RetentionRun)
            .order_by(RetentionRun.started_at.desc(), RetentionRun.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


# --- legal holds ------------------------------------------------------------------------------


def place_hold(
    *,
    scope: str,
    target: str,
    reason: str,
    ends_at: datetime | None,
    actor: str,
) -> LegalHold:
    """Hold a subject's (by pseudonymous reference), a campaign's (by its platform id) or a
    category's records back from sweeps (flushes; audited). Errors name the field."""
    reason = (reason or "").strip()
    target = (target or "").strip()
    errors = {}
    for name, value in (("reason", reason), ("target", target)):
        if "\x00" in value:
            errors[name] = ["no NUL characters"]
    if errors:
        raise Invalid("The hold cannot be placed.", errors)
    if scope not in SCOPES:
        errors["scope"] = [f"one of {', '.join(SCOPES)}"]
    if not reason:
        errors["reason"] = ["required: why the records must be kept"]
    elif len(reason) > MAX_REASON:
        errors["reason"] = [f"at most {MAX_REASON} characters"]
    if ends_at is not None and ends_at <= utcnow():
        errors["ends_at"] = ["must be in the future (or empty: until released)"]
    hold = LegalHold(scope=scope, reason=reason, ends_at=ends_at, placed_by=actor)
    if scope in SCOPES:
        problem = _aim(hold, scope, target)
        if problem:
            errors["target"] = [problem]
    if errors:
        raise Invalid("The hold cannot be placed.", errors)
    db.session.add(hold)
    db.session.flush()
    audit.record(
        actor,
        "hold.placed",
        subject_ref=target if scope == "subject" else None,
        target=f"hold:{hold.id}",
        details={
            "scope": scope,
            # A campaign's or category's name says nothing about a person; a person is the
            # entry's subject reference.
            "target": target if scope != "subject" else None,
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
    )
    return hold


def _aim(hold: LegalHold, scope: str, target: str) -> str | None:
    """Point ``hold`` at its target; what is wrong with the target, or None."""
    if scope == "subject":
        subject = db.session.execute(
            select(Subject).where(Subject.ref == target)
        ).scalar_one_or_none()
        if subject is None or subject.id == sweeps.ANONYMOUS_SUBJECT_ID:
            return "no subject with this reference (sub_…)"
        hold.subject_id = subject.id
    elif scope == "campaign":
        campaign = db.session.execute(
            select(Campaign).where(Campaign.external_id == target)
        ).scalar_one_or_none()
        if campaign is None:
            return "no campaign with this id"
        hold.campaign_id = campaign.id
    else:
        if target not in {g.key for g in sweeps.governed()} | {"audit_events"}:
            return "no such category"
        hold.category = target
    return None


def release_hold(hold_id, *, actor: str) -> LegalHold:
    """End a hold now (flushes; audited): its records are swept again from the next sweep."""
    hold = get_hold(hold_id)
    if hold is None:
        raise NotFound("No such hold.")
    if hold.released_at is not None:
        raise Invalid("This hold was already released.", {"hold": ["released"]})
    hold.released_at, hold.released_by = utcnow(), actor
    audit.record(
        actor,
        "hold.released",
        subject_ref=describe_target(hold) if hold.scope == "subject" else None,
        target=f"hold:{hold.id}",
        details={
            "scope": hold.scope,
            "target": describe_target(hold) if hold.scope != "subject" else None,
        },
    )
    return hold


def get_hold(hold_id) -> LegalHold | None:
    try:
        return db.session.get(LegalHold, int(hold_id))
    except (TypeError, ValueError, OverflowError):
        return None


def holds(*, active_only: bool = False) -> list[LegalHold]:
    query = select(LegalHold).order_by(LegalHold.placed_at.desc(), LegalHold.id.desc())
    if active_only:
        now = utcnow()
        query = query.where(
            LegalHold.released_at.is_(None),
            or_(LegalHold.ends_at.is_(None), LegalHold.ends_at > now),
        )
    return db.session.execute(query).scalars().all()


def describe_target(hold: LegalHold) -> str:
    """What a hold covers, as officers name it (a pseudonymous reference, never a person)."""
    if hold.scope == "subject":
        subject = db.session.get(Subject, hold.subject_id)
        return subject.ref if subject else "?"
    if hold.scope == "campaign":
        campaign = db.session.get(Campaign, hold.campaign_id)
        return campaign.external_id if campaign else "?"
    return hold.category


def in_force(hold: LegalHold, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return hold.released_at is None and (hold.ends_at is None or hold.ends_at > now)


def overview() -> list[dict]:
    """Every policy with what it governs and what a sweep would do now (counts, oldest)."""
    now = utcnow()
    current = sweeps.Holds.at(now)
    rows = []
    count, oldest = audit_checkpoints.preview_prune(policies()["audit_events"].period.before(now))
    audit_due = sweeps.Outcome("audit_events", "audit_events", "delete", count, oldest=oldest)
    rows.append(
        {
            "key": "audit_events",
            "title": "Audit trail",
            "personal": False,
            "policy": policies()["audit_events"],
            "erasure": None,
            "due": audit_due,
        }
    )
    for g in sweeps.governed():
        policy = policies()[g.policy_key]
        rows.append(
            {
                "key": g.key,
                "title": g.title,
                "personal": g.personal,
                "policy": policy,
                "erasure": BY_KEY[g.key].erasure.action if g.key in BY_KEY else None,
                "due": sweeps.preview(g, current, now),
            }
        )
    db.session.rollback()
    return rows


def due_counts() -> dict[str, int]:
    """Rows each policy would remove now (a progress bar's length)."""
    return sweeps.due_counts()


# --- the record of processing (Art. 30) -------------------------------------------------------


def record() -> dict:
    return record_of_processing.build(current_app.config)


def record_csv():
    return record_of_processing.to_csv(record(), cell=spreadsheets.cell)
