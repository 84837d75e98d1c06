"""The officers' work queue: which requests need an answer, how soon, and the queue as a
CSV file for audit (what was decided, by whom, why, and when)."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from rights.holdings import subjects
from rights.ledger import audit
from rights.lifecycle import requests
from rights.spreadsheets import cell
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import Officer, RightsRequest, Subject

SOON_DAYS = 7
DUE_WINDOWS = {"overdue": None, "week": SOON_DAYS, "month": 30}
CSV_BATCH = 500
CSV_COLUMNS = [
    "reference",
    "received",
    "type",
    "status",
    "channel",
    "deadline",
    "extended_by_months",
    "decided_by",
    "decision",
    "reason",
    "completed",
]


@dataclass
class Filters:
    status: str | None = "active"
    type: str | None = None
    channel: str | None = None
    due: str | None = None  # overdue | week | month
    subject: str | None = None  # a pseudonymous subject reference, never an email
    assignee: int | None = None  # an officer id; 0 for nobody's

    def query(self, now: datetime):
        due_before = due_after = None
        status = self.status
        if self.due in DUE_WINDOWS:
            # Deadlines matter only for what is still to be answered.
            status = status if status and status != "all" else "active"
            days = DUE_WINDOWS[self.due]
            if days is None:
                due_before = now
            else:
                due_after, due_before = now, now + timedelta(days=days)
        subject_id = ""
        if self.subject:
            subject_id = _subject_id(self.subject) or "none"
        return requests.filtered(
            status=None if status == "all" else status,
            type=self.type,
            channel=self.channel,
            due_before=due_before,
            due_after=due_after,
            subject_id=subject_id or None,
            assignee_id=self.assignee,
        )


def _subject_id(ref: str) -> str | None:
    return db.session.execute(select(Subject.id).where(Subject.ref == ref)).scalar_one_or_none()


def subject_ref_for_email(email: str) -> str | None:
    """The pseudonymous reference to search the queue by, found through the blind index (the
    address itself is not stored, and never goes into a URL)."""
    subject = subjects.by_email(email)
    return subject.ref if subject else None


def page(filters: Filters, *, page: int = 1, per_page: int = 50):
    """One page of the queue: soonest deadline first."""
    query = filters.query(utcnow()).order_by(RightsRequest.due_at, RightsRequest.id)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def days_left(request: RightsRequest, now: datetime) -> int | None:
    """Whole days until the deadline (negative once overdue); None once answered."""
    if request.status in requests.TERMINAL:
        return None
    return (
        (request.due_at - now).days if request.due_at >= now else -((now - request.due_at).days + 1)
    )


def urgency(request: RightsRequest, now: datetime) -> str | None:
    left = days_left(request, now)
    if left is None:
        return None
    if left < 0:
        return "overdue"
    if left < SOON_DAYS:
        return "soon"
    return None


def officer_names() -> dict[str, str]:
    """Audit actors ("officer:3") to the names shown on screen, in one query."""
    rows = db.session.execute(select(Officer.id, Officer.display_name))
    return {f"officer:{id_}": name for id_, name in rows}


def _date(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def record_export(filters: Filters, *, actor: str) -> int:
    """Audit an export before it is sent (flushes): who, with which filters, how many rows."""
    rows = db.session.execute(
        select(func.count()).select_from(filters.query(utcnow()).subquery())
    ).scalar_one()
    audit.record(actor, "queue.exported", details={"rows": rows, **_described(filters)})
    return rows


def export_csv(filters: Filters) -> Iterator[str]:
    """The queue as CSV text, produced in keyset batches of ``CSV_BATCH`` (subject keys for
    the reasons loaded once per batch; rows let go of once written)."""
    names = officer_names()
    query = filters.query(utcnow()).order_by(RightsRequest.received_at, RightsRequest.id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    last = None
    while True:
        batch_query = query.limit(CSV_BATCH)
        if last is not None:
            batch_query = batch_query.where(
                (RightsRequest.received_at > last[0])
                | ((RightsRequest.received_at == last[0]) & (RightsRequest.id > last[1]))
            )
        batch = list(db.session.execute(batch_query).scalars())
        if not batch:
            break
        vault.load_keys([r.subject_id for r in batch])
        for r in batch:
            reason = requests.decision_reason(r) if r.decision_reason_enc else None
            writer.writerow(
                [
                    cell(v)
                    for v in (
                        r.reference,
                        _date(r.received_at),
                        r.type,
                        r.status,
                        r.channel,
                        _date(r.due_at),
                        r.extension_months or "",
                        names.get(r.decided_by, r.decided_by),
                        r.decision,
                        reason,
                        _date(r.completed_at),
                    )
                ]
            )
        last = (batch[-1].received_at, batch[-1].id)
        for r in batch:
            db.session.expunge(r)
        yield _drain(buffer)


def _described(filters: Filters) -> dict:
    """The filters of an export, for its audit entry (a subject reference is pseudonymous)."""
    return {k: v for k, v in vars(filters).items() if v not in (None, "")}


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
