"""Figures for the dashboard's home page: how many requests arrive, how fast they are closed,
how many on time, and how much time the open ones have left.

Each figure is one query over the columns it needs (no rows loaded as objects), bounded by a
time window, so the page costs the same whatever the size of the ledger's history.
"""

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from rights.requests import TERMINAL
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


def overview(now: datetime | None = None) -> Overview:
    now = now or utcnow()
    first = _week_start(now) - timedelta(weeks=WEEKS - 1)
    weeks = [first + timedelta(weeks=i) for i in range(WEEKS)]
    types = [t.value for t in RequestType]
    received = {t: [0] * WEEKS for t in types}
    rows = db.session.execute(
        select(RightsRequest.received_at, RightsRequest.type).where(
            RightsRequest.received_at >= first
        )
    )
    for received_at, type_ in rows:
        index = (received_at - first).days // 7
        if 0 <= index < WEEKS and type_ in received:
            received[type_][index] += 1

    # Closed = answered (completed or refused); a withdrawal is not an answer.
    closed_at = func.coalesce(RightsRequest.completed_at, RightsRequest.decided_at)
    closed_rows = db.session.execute(
        select(RightsRequest.received_at, closed_at, RightsRequest.due_at).where(
            RightsRequest.status.in_([RequestStatus.COMPLETED, RequestStatus.REFUSED]),
            closed_at >= now - timedelta(days=CLOSED_WINDOW_DAYS),
        )
    ).all()
    durations = [(c - r).total_seconds() / 86400 for r, c, _ in closed_rows if c]
    on_time = sum(1 for _, c, due in closed_rows if c and c <= due)

    open_rows = db.session.execute(
        select(RightsRequest.due_at).where(RightsRequest.status.not_in([s.value for s in TERMINAL]))
    ).scalars()
    buckets = dict.fromkeys((label for label, _, _ in DAYS_LEFT_BUCKETS), 0)
    total_open = 0
    for due in open_rows:
        total_open += 1
        left = (due - now).total_seconds() / 86400
        for label, low, high in DAYS_LEFT_BUCKETS:
            if (low is None or left >= low) and (high is None or left < high):
                buckets[label] += 1
                break
    return Overview(
        weeks=weeks,
        types=types,
        received=received,
        closed=len(closed_rows),
        median_days_to_close=round(statistics.median(durations), 1) if durations else None,
        closed_on_time=on_time,
        open_by_days_left=list(buckets.items()),
        open_total=total_open,
    )
