"""What operators watch, read when Prometheus scrapes ``/metrics`` (web/operations.py): open
requests by status and time left, the outbox's backlog and its oldest message, webhook
deliveries by state, the last retention sweep, the audit chain's length.

Read at scrape time, not kept in the process: every worker process answers the same figures,
however many there are, and a restart loses nothing. Each figure is one aggregate query
(GROUP BY, no rows loaded as objects, none per request or per message), six in all, so a scrape
costs the same whatever the size of the ledger. Labels come from fixed vocabularies (statuses,
kinds, states, buckets): never a reference, an address, a name or a token.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select

from rights.lifecycle.requests import ACTIVE
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    AuditCheckpoint,
    AuditEvent,
    Delivery,
    LogCheckpoint,
    LogPending,
    OutboxMessage,
    RetentionRun,
    RightsRequest,
)

# Whole days left before the deadline: "overdue" once it has passed; 7.9 days left is "0-7".
DAYS_LEFT = ("overdue", "0-7", "8-30", ">30")
_DAYS_LEFT_EDGES = (0, 8, 31)  # lower bound in days of each bucket after "overdue"
# The outbox's kinds: emails and jobs the worker delivers, events it fans out to webhooks.
OUTBOX_KINDS = ("email", "job", "event")
DELIVERY_STATES = ("pending", "delivered", "confirmed", "dead", "disabled")
SWEEP_OUTCOMES = ("expired", "retained_removed", "held")


@dataclass
class Figures:
    requests_open: dict[tuple[str, str], int]  # (status, days left) -> count
    outbox_backlog: dict[str, int]  # kind -> pending messages
    outbox_oldest_age_seconds: dict[str, float]  # kind -> age of the oldest pending one
    webhook_deliveries: dict[str, int]  # state -> count
    last_sweep_at: datetime | None
    last_sweep_rows: dict[str, int]  # outcome -> rows, over each policy's latest run
    audit_chain_length: int
    log_size: int  # the transparency log's latest signed checkpoint
    log_pending: int  # signed documents waiting for the sequencer
    log_oldest_pending_seconds: float

    @property
    def webhook_dead_letters(self) -> int:
        return self.webhook_deliveries.get("dead", 0)


def _requests_open(now: datetime) -> dict[tuple[str, str], int]:
    edges = [now + timedelta(days=days) for days in _DAYS_LEFT_EDGES]
    bucket = case(
        *((RightsRequest.due_at < edge, i) for i, edge in enumerate(edges)), else_=len(edges)
    )
    statuses = [s.value for s in ACTIVE]
    counts = dict.fromkeys(((s, b) for s in statuses for b in DAYS_LEFT), 0)
    rows = db.session.execute(
        select(RightsRequest.status, bucket, func.count())
        .where(RightsRequest.status.in_(statuses))
        .group_by(RightsRequest.status, bucket)
    )
    for status, index, n in rows:
        counts[(status, DAYS_LEFT[index])] = n
    return counts


def _outbox(now: datetime) -> tuple[dict[str, int], dict[str, float]]:
    backlog = dict.fromkeys(OUTBOX_KINDS, 0)
    oldest = dict.fromkeys(OUTBOX_KINDS, 0.0)
    rows = db.session.execute(
        select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status == "pending", OutboxMessage.kind.in_(OUTBOX_KINDS))
        .group_by(OutboxMessage.kind)
    )
    for kind, n, first in rows:
        backlog[kind] = n
        oldest[kind] = max(0.0, (now - first).total_seconds()) if first else 0.0
    return backlog, oldest


def _deliveries() -> dict[str, int]:
    counts = dict.fromkeys(DELIVERY_STATES, 0)
    rows = db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    counts.update({state: n for state, n in rows if state in counts})
    return counts


def _last_sweep() -> tuple[datetime | None, dict[str, int]]:
    """Each policy's latest run (dry runs aside): when the last of them finished, and the
    rows they expired, removed from retention or kept for a hold. A sweep runs every policy, so
    these are the last sweep's runs; a policy that a sweep cut short did not reach shows its
    previous run."""
    latest = (
        select(func.max(RetentionRun.id))
        .where(RetentionRun.dry_run.is_(False))
        .group_by(RetentionRun.policy)
    )
    rows = db.session.execute(
        select(RetentionRun.finished_at, RetentionRun.counts).where(RetentionRun.id.in_(latest))
    ).all()
    finished = [at for at, _ in rows if at is not None]
    totals = dict.fromkeys(SWEEP_OUTCOMES, 0)
    for _, counts in rows:
        for outcome in SWEEP_OUTCOMES:
            totals[outcome] += int((counts or {}).get(outcome) or 0)
    return (max(finished) if finished else None), totals


def _key_store(now: datetime) -> tuple[tuple[int, int] | None, dict]:
    """What the figures read from the key store, in one statement: the latest audit
    checkpoint's (last_id, entries), and the transparency log — its size (the latest signed
    checkpoint) and what waits for the sequencer (a backlog that grows says the worker's
    ``jobs`` role is not running)."""
    latest_audit = (
        select(AuditCheckpoint.last_id, AuditCheckpoint.entries)
        .order_by(AuditCheckpoint.id.desc())
        .limit(1)
        .subquery()
    )
    row = db.session.execute(
        select(
            select(latest_audit.c.last_id).scalar_subquery().label("last_id"),
            select(latest_audit.c.entries).scalar_subquery().label("entries"),
            select(func.max(LogCheckpoint.size)).scalar_subquery().label("log_size"),
            select(func.count(LogPending.id)).scalar_subquery().label("pending"),
            select(func.min(LogPending.queued_at)).scalar_subquery().label("oldest"),
        )
    ).one()
    oldest = row.oldest
    if isinstance(oldest, str):  # SQLite: a bare scalar subquery comes back as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    audit = None if row.last_id is None else (row.last_id, row.entries)
    return audit, {
        "log_size": row.log_size or 0,
        "log_pending": row.pending,
        "log_oldest_pending_seconds": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    }


def _audit_chain_length(checkpoint: tuple[int, int] | None) -> int:
    """Entries since the chain began, as the checkpoints count them (retention's pruning does
    not shorten it): the latest checkpoint's count plus the entries after it, so the count
    reads a few dozen rows at most rather than the whole trail."""
    after = select(func.count(AuditEvent.id))
    if checkpoint is None:
        return db.session.execute(after).scalar_one()
    last_id, entries = checkpoint
    return entries + db.session.execute(after.where(AuditEvent.id > last_id)).scalar_one()


def figures(now: datetime | None = None) -> Figures:
    now = now or utcnow()
    backlog, oldest = _outbox(now)
    last_sweep_at, last_sweep_rows = _last_sweep()
    audit, log = _key_store(now)
    return Figures(
        requests_open=_requests_open(now),
        outbox_backlog=backlog,
        outbox_oldest_age_seconds=oldest,
        webhook_deliveries=_deliveries(),
        last_sweep_at=last_sweep_at,
        last_sweep_rows=last_sweep_rows,
        audit_chain_length=_audit_chain_length(audit),
        **log,
    )
