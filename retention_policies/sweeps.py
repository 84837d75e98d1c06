"""Sweeps: every retention policy applied to the rows it governs.

For each data-map category and each of Lethe's own kinds of record, a sweep finds the rows
whose clock (:mod:`retention_policies.clocks`) started at or before *now minus the period*,
leaves out the rows a legal hold covers, and deletes or anonymises the rest:

- **delete** removes the rows and their provenance history. A row something else still
  refers to (a consent a promotion was shown on, feedback that still has a picture) waits until
  that is gone, so a sweep never breaks a reference and never fails half-way.
- **anonymise** keeps the row without a person: it moves to the anonymous subject, its
  encrypted columns are emptied, a platform id becomes ``anon-<n>``, and its history goes.
  What is left proves that something happened, not to whom.
- rows that erasure kept under an Art. 17(3) exception get the category's action when their
  ``retain_until`` passes (not before): deleted or anonymised, they leave the person.

Work goes in batches of ``batch`` rows, each its own transaction, so memory stays flat and a
stopped sweep has lost nothing. Batches are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so sweeps started at once by several schedulers share the rows and remove each
one once; a second sweep finds nothing left to do. Only counts and dates come out: never data.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from retention_policies import clocks
from retention_policies.policies import Policy, policies
from storage.clock import utcnow
from storage.datamap import CATEGORIES, LEDGER_RECORDS
from storage.db import db
from storage.models import (
    LegalHold,
    RecordHistory,
    Restriction,
    RetentionRun,
    RightsRequest,
    Subject,
)

log = logging.getLogger(__name__)
BATCH = 2000
ANONYMOUS_SUBJECT_ID = "00000000-0000-4000-8000-000000000000"
ANONYMOUS_REF = "sub_anonymous"


@dataclass(frozen=True)
class Governed:
    """A table (or part of one) under one policy."""

    key: str
    title: str
    model: type
    policy_key: str
    subject_column: str | None
    has_provenance: bool
    where: tuple[str, tuple[str, ...]] | None = None
    personal: bool = True  # a data-map category (rather than one of Lethe's own records)

    @property
    def policy(self) -> Policy:
        return policies()[self.policy_key]

    @property
    def retained(self) -> bool:
        """Whether erasure may keep its rows until ``retain_until``."""
        return hasattr(self.model, "retain_until")


def governed() -> list[Governed]:
    """Everything a policy governs, children before parents (so a parent's rows can go in the
    same sweep as the rows that refer to them)."""
    out = [
        Governed(
            key=c.key,
            title=c.title,
            model=c.model,
            policy_key=c.retention_policy,
            subject_column=c.subject_column,
            has_provenance=c.has_provenance,
            where=("kind", ("email",)) if c.key == "notices" else None,
        )
        for c in CATEGORIES
    ] + [
        Governed(
            key=r.key,
            title=r.title,
            model=r.model,
            policy_key=r.retention_policy,
            subject_column=r.subject_column,
            has_provenance=False,
            where=r.where,
            personal=False,
        )
        for r in LEDGER_RECORDS
        if r.swept_as == "rows"
    ]
    order = {}
    for name, metadata in db.metadatas.items():
        for i, table in enumerate(metadata.sorted_tables):
            order[(name, table.name)] = i
    bind_of = {g.key: getattr(g.model, "__bind_key__", None) for g in out}
    return sorted(out, key=lambda g: -order[(bind_of[g.key], g.model.__tablename__)])


@dataclass
class Holds:
    """The legal holds in force now, read once per sweep (they are few)."""

    subjects: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    campaigns: list[int] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)
    now: datetime | None = None

    @classmethod
    def at(cls, now: datetime) -> "Holds":
        rows = db.session.execute(
            select(LegalHold, Subject.ref)
            .outerjoin(Subject, Subject.id == LegalHold.subject_id)
            .where(
                LegalHold.released_at.is_(None),
                or_(LegalHold.ends_at.is_(None), LegalHold.ends_at > now),
            )
        ).all()
        holds = cls(now=now)
        for hold, ref in rows:
            if hold.scope == "subject":
                holds.subjects.append(hold.subject_id)
                holds.refs.append(ref)
            elif hold.scope == "campaign":
                holds.campaigns.append(hold.campaign_id)
            else:
                holds.categories.add(hold.category)
        return holds

    def covers(self, g: Governed):
        """SQL: the rows of ``g`` held back — by a legal hold on their category, their person
        (directly, through their request, or by reference) or their campaign, or by a
        restriction in force (Art. 18: stored, not used, and not deleted). NULL-safe: a row
        with no person or no campaign is simply not covered by such a hold."""
        if g.key in self.categories:
            return true()
        model = g.model
        conditions = [_restricted(g, self.now)] if g.personal else []
        if self.subjects:
            for column in _subject_columns(model, g.subject_column):
                conditions.append(and_(column.is_not(None), column.in_(self.subjects)))
            if "subject_ref" in model.__table__.c:
                conditions.append(model.__table__.c.subject_ref.in_(self.refs))
        campaign = clocks.campaign_of(model) if self.campaigns else None
        if campaign is not None:
            conditions.append(and_(campaign.is_not(None), campaign.in_(self.campaigns)))
        return or_(*conditions) if conditions else false()


def _subject_columns(model, subject_column: str | None) -> list:
    """Where a row says whose it is: its own subject column, and its request's subject."""
    columns = [getattr(model, subject_column)] if subject_column else []
    same_database = getattr(model, "__bind_key__", None) is None
    if "request_id" in model.__table__.c and model is not RightsRequest and same_database:
        columns.append(
            select(RightsRequest.subject_id)
            .where(RightsRequest.id == model.request_id)
            .scalar_subquery()
        )
    return columns


def _restricted(g: Governed, now: datetime):
    """SQL: the row is under a restriction in force (or, for a request, holds one open)."""
    in_force = or_(Restriction.ends_at.is_(None), Restriction.ends_at > now)
    if g.model is RightsRequest:
        return exists().where(Restriction.request_id == RightsRequest.id, in_force)
    if not isinstance(g.model.__table__.c.id.type, Integer):
        return false()  # restrictions name platform records, whose ids are numbers
    return exists().where(
        Restriction.record_type == g.model.__tablename__,
        Restriction.record_id == g.model.__table__.c.id,
        Restriction.started_at <= now,
        in_force,
    )


def _pk(g: Governed):
    return g.model.__table__.c.id


def _still_referred_to(g: Governed):
    """SQL: rows another table still refers to (they wait for those rows to go first)."""
    table = g.model.__table__
    bind = getattr(g.model, "__bind_key__", None)
    conditions = []
    for other in db.metadatas[bind].sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table and other is not table:
                conditions.append(exists().where(fk.parent == fk.column))
    return or_(*conditions) if conditions else false()


def _narrowed(g: Governed, query):
    if g.where is not None:
        column, values = g.where
        query = query.where(getattr(g.model, column).in_(values))
    return query


def _actionable(g: Governed):
    """SQL filter: rows the policy's action can still be applied to — not yet anonymised, or
    (to delete) not referred to by another row."""
    if g.policy.action == "anonymise":
        return getattr(g.model, g.subject_column) != ANONYMOUS_SUBJECT_ID
    return ~_still_referred_to(g)


def expired(g: Governed, now: datetime):
    """SQL filter: rows whose retention period has run by ``now`` under their policy. Rows
    erasure kept go at the earlier of this and their retain_until: an erasure request never
    makes data live longer."""
    start = clocks.started(g.policy.trigger, g.model)
    return and_(start.is_not(None), start <= g.policy.period.before(now), _actionable(g))


def retained_expired(g: Governed, now: datetime):
    """SQL filter: rows erasure kept whose ``retain_until`` has passed (and whose own clock has
    not: those count as expired): the category's action applies to them now."""
    start = clocks.started(g.policy.trigger, g.model)
    own_clock_ran = and_(start.is_not(None), start <= g.policy.period.before(now))
    return and_(
        g.model.restricted_at.is_not(None),
        g.model.retain_until <= now,
        ~own_clock_ran,
        _actionable(g),
    )


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
    start = clocks.started(policy.trigger, g.model)
    covered = holds.covers(g)
    rows = select(func.count()).select_from(g.model)
    due = _narrowed(g, rows.add_columns(func.min(start)).where(expired(g, now)))
    outcome.expired, outcome.oldest = db.session.execute(due.where(~covered)).one()
    outcome.held = db.session.execute(
        _narrowed(g, rows.where(expired(g, now), covered))
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
    query = _narrowed(g, select(pk).select_from(g.model).where(condition))
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
    values = {
        column.name: None
        for column in table.columns
        if column.name.endswith("_enc") and column.nullable
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
        db.session.commit()
    return ANONYMOUS_SUBJECT_ID


def _work(g: Governed, due, now: datetime, act, batch: int, progress) -> int:
    """``act`` on the rows ``due(g, now)`` selects that no hold covers, batch by batch. The
    holds are read again for every batch: one placed during a long sweep is honoured."""
    done, after = 0, None
    while True:
        holds = Holds.at(now)
        ids = _claim(g, and_(due(g, now), ~holds.covers(g)), batch, after)
        if not ids:
            db.session.rollback()
            return done
        n = act(g, ids)
        db.session.commit()
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
) -> Outcome:
    """Apply ``g``'s policy now (commits, batch by batch)."""
    policy = g.policy
    outcome = Outcome(g.key, g.policy_key, policy.action)
    act = _anonymise if policy.action == "anonymise" else _delete
    if act is _anonymise:
        anonymous_subject()
    outcome.expired = _work(g, expired, now, act, batch, progress)
    if g.retained:
        outcome.retained_removed = _work(g, retained_expired, now, act, batch, progress)
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
    """Apply every policy (or, with ``dry_run``, say what would go), recording each as a
    :class:`RetentionRun` (commits). ``only`` limits it to one category or record."""
    now = utcnow()
    holds = Holds.at(now)
    outcomes = []
    for g in governed():
        if only is not None and g.key != only:
            continue
        started = utcnow()
        outcome = (
            preview(g, holds, now)
            if dry_run
            else apply(g, holds, now, batch=batch, progress=progress)
        )
        record(outcome, started, dry_run)
        outcomes.append(outcome)
    return outcomes


def record(outcome: Outcome, started: datetime, dry_run: bool) -> None:
    """Record one policy's run (commits) and log its counts — never data."""
    db.session.add(
        RetentionRun(
            policy=outcome.key,
            started_at=started,
            finished_at=utcnow(),
            dry_run=dry_run,
            counts=outcome.counts(),
        )
    )
    db.session.commit()
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
