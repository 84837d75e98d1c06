"""Sweeps: every retention policy applied to the rows it governs.

For each data-map category and each of Lethe's own kinds of record, a sweep finds the rows
whose clock (:mod:`retention_policies.clocks`) started at or before *now minus the period*,
leaves out the rows a legal hold covers, and deletes or anonymises the rest:

- **delete** removes the rows and their provenance history. A row something else still
  refers to (a consent a promotion was shown on, feedback that still has a picture) waits until
  that is gone, so a sweep never breaks a reference and never fails half-way.
- **anonymise** keeps the row without a person: it moves to the anonymous subject, its
  encrypted columns are emptied, links to other rows of its table are cut, a platform id
  becomes ``anon-<n>``, and its history goes.
  What is left proves that something happened, not to whom.
- rows that erasure kept under an Art. 17(3) exception get the category's action when their
  ``retain_until`` passes (not before): deleted or anonymised, they leave the person.

Work goes in batches of ``batch`` rows, each its own transaction, so memory stays flat and a
stopped sweep has lost nothing. Batches are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so sweeps started at once by several schedulers share the rows and remove each
one once; a second sweep finds nothing left to do. Only counts and dates come out: never data.

What is governed, which rows are due and what holds them are in :mod:`retention_policies.due`;
its names used outside (``Governed``, ``governed``, ``Holds``) are this module's too.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    String,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from retention_policies.due import (
    ANONYMOUS_SUBJECT_ID,
    Governed,
    Holds,
    expired,
    governed,
    narrowed,
    retained_expired,
    started,
)
from storage.clock import utcnow
from storage.db import db
from storage.models import RecordHistory, RetentionRun, Subject
from storage.steps import Steps, run_steps

__all__ = [
    "ANONYMOUS_REF",
    "ANONYMOUS_SUBJECT_ID",
    "BATCH",
    "Governed",
    "Holds",
    "Outcome",
    "anonymous_subject",
    "apply",
    "due_counts",
    "governed",
    "preview",
    "record",
    "sweep",
]

log = logging.getLogger(__name__)
BATCH = 2000
ANONYMOUS_REF = "sub_anonymous"


def _pk(g: Governed):
    return g.model.__table__.c.id


@dataclass
class Outcome:
    key: str
    policy: str
    action: str
    expired: int = 0  # removed or anonymised
    retained_removed: int = 0  # kept by erasure, now past retain_until
    held: int = 0  # due but held
    oldest: datetime | None = None  # the oldest clock start among the due rows (dry run)

    def counts(self) -> dict:
        out = {
            "expired": self.expired,
            "retained_removed": self.retained_removed,
            "held": self.held,
            "action": self.action,
        }
        if self.oldest is not None:
            out["oldest"] = self.oldest.isoformat()
        return out


def preview(g: Governed, holds: Holds, now: datetime) -> Outcome:
    """What a sweep would do to ``g`` now: counts and the oldest date, nothing changed."""
    policy = g.policy
    outcome = Outcome(g.key, g.policy_key, policy.action)
    start = started(g)
    covered = holds.covers(g)
    rows = select(func.count()).select_from(g.model)
    due = narrowed(g, rows.add_columns(func.min(start)).where(expired(g, now)))
    outcome.expired, outcome.oldest = db.session.execute(due.where(~covered)).one()
    outcome.held = db.session.execute(
        narrowed(g, rows.where(expired(g, now), covered))
    ).scalar_one()
    if g.retained:
        outcome.retained_removed = db.session.execute(
            rows.where(retained_expired(g, now), ~covered)
        ).scalar_one()
        outcome.held += db.session.execute(
            rows.where(retained_expired(g, now), covered)
        ).scalar_one()
    return outcome


def _claim(g: Governed, condition, batch: int, after) -> list:
    pk = _pk(g)
    query = narrowed(g, select(pk).select_from(g.model).where(condition))
    if after is not None:
        query = query.where(pk > after)  # keyset: rows passed over are not scanned again
    query = query.order_by(pk).limit(batch)
    if db.session.get_bind(mapper=g.model.__mapper__).dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=g.model.__table__)
    return db.session.execute(query).scalars().all()


def _among(g: Governed, column, ids: list):
    """SQL: ``column`` is one of ``ids``. On PostgreSQL one array parameter (a 2,000-item IN
    list is compiled and parsed again for every batch; an array is not)."""
    if db.session.get_bind(mapper=g.model.__mapper__).dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(column.type)))
    return column.in_(ids)


_BULK = {"synchronize_session": False}  # the session holds none of these rows


def _forget_history(g: Governed, ids: list) -> None:
    if g.has_provenance:
        db.session.execute(
            delete(RecordHistory)
            .where(
                RecordHistory.record_type == g.model.__tablename__,
                _among(g, RecordHistory.record_id, ids),
            )
            .execution_options(**_BULK)
        )


def _delete(g: Governed, ids: list) -> int:
    _forget_history(g, ids)
    return db.session.execute(
        delete(g.model).where(_among(g, _pk(g), ids)).execution_options(**_BULK)
    ).rowcount


def _anonymise(g: Governed, ids: list) -> int:
    table = g.model.__table__
    # What is sealed for the person goes, and so does any link to another row of the same
    # table (two requests linked as asking the same thing would show they were one person's).
    values = {
        column.name: None
        for column in table.columns
        if column.nullable
        and (
            column.name.endswith("_enc")
            or any(fk.column.table is table for fk in column.foreign_keys)
        )
    }
    values[g.subject_column] = ANONYMOUS_SUBJECT_ID
    if "external_id" in table.c:
        values["external_id"] = literal("anon-") + cast(table.c.id, String)
    _forget_history(g, ids)
    return db.session.execute(
        update(g.model)
        .where(
            _among(g, _pk(g), ids),
            getattr(g.model, g.subject_column) != ANONYMOUS_SUBJECT_ID,
        )
        .values(values)
        .execution_options(**_BULK)
    ).rowcount


def anonymous_subject() -> str:
    """The one subject anonymised rows belong to (no key, no address, no person)."""
    if db.session.get(Subject, ANONYMOUS_SUBJECT_ID) is None:
        try:
            with db.session.begin_nested():
                db.session.add(Subject(id=ANONYMOUS_SUBJECT_ID, ref=ANONYMOUS_REF))
        except IntegrityError:
            pass  # another sweep made it
    return ANONYMOUS_SUBJECT_ID


def _work(g: Governed, due, now: datetime, act, batch: int, progress) -> Steps[int]:
    """``act`` on the rows ``due(g, now)`` selects that no hold covers, batch by batch, each
    batch a step. The holds are read again for every batch: one placed during a long sweep is
    honoured."""
    done, after = 0, None
    while True:
        holds = Holds.at(now)
        ids = _claim(g, and_(due(g, now), ~holds.covers(g)), batch, after)
        if not ids:
            db.session.rollback()
            return done
        n = act(g, ids)
        yield
        done, after = done + n, ids[-1]
        if progress is not None:
            progress(g.key, len(ids))


def apply(
    g: Governed,
    holds: Holds,
    now: datetime,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> Steps[Outcome]:
    """Apply ``g``'s policy now (steps: one per batch)."""
    policy = g.policy
    outcome = Outcome(g.key, g.policy_key, policy.action)
    act = _anonymise if policy.action == "anonymise" else _delete
    if act is _anonymise:
        anonymous_subject()
        yield
    outcome.expired = yield from _work(g, expired, now, act, batch, progress)
    if g.retained:
        outcome.retained_removed = yield from _work(
            g, retained_expired, now, act, batch, progress
        )
    outcome.held = preview(g, Holds.at(now), now).held
    db.session.rollback()
    return outcome


def sweep(
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
    only: str | None = None,
) -> list[Outcome]:
    """:func:`sweep_steps` now, each step committed."""
    return run_steps(sweep_steps(dry_run=dry_run, batch=batch, progress=progress, only=only))


def sweep_steps(
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
    only: str | None = None,
) -> Steps[list[Outcome]]:
    """Apply every policy (or, with ``dry_run``, say what would go), recording each as a
    :class:`RetentionRun` (steps: each batch, and each record). ``only`` limits it to one
    category or record."""
    now = utcnow()
    holds = Holds.at(now)
    outcomes = []
    for g in governed():
        if only is not None and g.key != only:
            continue
        started = utcnow()
        if dry_run:
            outcome = preview(g, holds, now)
        else:
            outcome = yield from apply(g, holds, now, batch=batch, progress=progress)
        record(outcome, started, dry_run)
        yield
        outcomes.append(outcome)
    return outcomes


def record(outcome: Outcome, started: datetime, dry_run: bool) -> None:
    """Record one policy's run (flushes: the caller's step commits it) and log its counts —
    never data."""
    db.session.add(
        RetentionRun(
            policy=outcome.key,
            started_at=started,
            finished_at=utcnow(),
            dry_run=dry_run,
            counts=outcome.counts(),
        )
    )
    db.session.flush()
    log.info(
        "retention %s %s: %s expired, %s retained removed, %s held",
        "dry run" if dry_run else "sweep",
        outcome.key,
        outcome.expired,
        outcome.retained_removed,
        outcome.held,
    )


def due_counts(now: datetime | None = None) -> dict[str, int]:
    """How many rows each governed table would lose now (for a progress bar's length)."""
    now = now or utcnow()
    holds = Holds.at(now)
    return {g.key: (o := preview(g, holds, now)).expired + o.retained_removed for g in governed()}
