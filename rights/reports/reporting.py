"""Figures for the dashboard's home page: how many requests arrive, how fast they are closed,
how many on time, and how much time the open ones have left.

Each figure is one query over the columns it needs (no rows loaded as objects), bounded by a
time window, so the page costs the same whatever the size of the ledger's history.
"""

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from rights.lifecycle.requests import ACTIVE
from storage.clock import utcnow
from storage.db import db
from storage.models import RequestStatus, RequestType, RightsRequest

WEEKS = 12
CLOSED_WINDOW_DAYS = 90
DAYS_LEFT_BUCKETS = [
    ("overdue", None, 0),
    ("0–6 days", 0, 7),
    ("7–13 days", 7, 14),
    ("14–29 days", 14, 30),
    ("30+ days", 30, None),
]


@dataclass
class Overview:
    weeks: list[datetime]
    types: list[str]
    received: dict[str, list[int]]  # type -> count per week
    closed: int
    median_days_to_close: float | None
    closed_on_time: int
    open_by_days_left: list[tuple[str, int]] = field(default_factory=list)
    open_total: int = 0

    @property
    def on_time_share(self) -> float | None:
        return self.closed_on_time / self.closed if self.closed else None

    @property
    def received_total(self) -> int:
        return sum(sum(counts) for counts in self.received.values())


def _week_start(moment: datetime) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _bucket(column, edges: list[datetime]):
    """A SQL expression numbering the interval of ``edges`` that ``column`` falls in (0 below
    the first edge, len(edges) at or above the last): grouped in the database, portably."""
    return case(*((column < edge, i) for i, edge in enumerate(edges)), else_=len(edges))


def _days(start, end):
    """Days from ``start`` to ``end``, as SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 86400
    return func.julianday(end) - func.julianday(start)


def _closing(now: datetime) -> tuple[int, int, float | None]:
    """(closed, closed on time, median days to close) over the last ``CLOSED_WINDOW_DAYS``:
    counted in the database, the median read at its offset (no rows brought back)."""
    closed_at = RightsRequest.decided_at  # set on completion and on refusal alike
    window = (
        RightsRequest.status.in_([RequestStatus.COMPLETED, RequestStatus.REFUSED]),
        closed_at >= now - timedelta(days=CLOSED_WINDOW_DAYS),
    )
    closed, on_time = db.session.execute(
        select(func.count(), func.sum(case((closed_at <= RightsRequest.due_at, 1), else_=0))).where(
            *window
        )
    ).one()
    if not closed:
        return 0, 0, None
    days = _days(RightsRequest.received_at, closed_at)
    middle = (
        db.session.execute(
            select(days)
            .where(*window)
            .order_by(days)
            .offset((closed - 1) // 2)
            .limit(2 if closed % 2 == 0 else 1)
        )
        .scalars()
        .all()
    )
    return closed, int(on_time or 0), round(float(statistics.fmean(middle)), 1)


def overview(now: datetime | None = None) -> Overview:
    now = now or utcnow()
    first = _week_start(now) - timedelta(weeks=WEEKS - 1)
    weeks = [first + timedelta(weeks=i) for i in range(WEEKS)]
    types = [t.value for t in RequestType]
    received = {t: [0] * WEEKS for t in types}
    week = _bucket(RightsRequest.received_at, weeks[1:])
    rows = db.session.execute(
        select(week, RightsRequest.type, func.count())
        .where(RightsRequest.received_at >= first)
        .group_by(week, RightsRequest.type)
    )
    for index, type_, n in rows:
        if type_ in received and 0 <= index < WEEKS:
            received[type_][index] += n

    # Closed = answered (completed or refused); a withdrawal is not an answer.
    closed, on_time, median = _closing(now)

    edges = [now + timedelta(days=high) for _, _, high in DAYS_LEFT_BUCKETS if high is not None]
    left = _bucket(RightsRequest.due_at, edges)
    counts = dict(
        db.session.execute(
            select(left, func.count())
            .where(RightsRequest.status.in_([s.value for s in ACTIVE]))
            .group_by(left)
        ).all()
    )
    buckets = [(label, counts.get(i, 0)) for i, (label, _, _) in enumerate(DAYS_LEFT_BUCKETS)]
    return Overview(
        weeks=weeks,
        types=types,
        received=received,
        closed=closed,
        median_days_to_close=median,
        closed_on_time=on_time,
        open_by_days_left=buckets,
        open_total=sum(n for _, n in buckets),
    )
