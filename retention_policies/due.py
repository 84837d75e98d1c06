"""What a sweep works on (:mod:`retention_policies.sweeps`): every table, or part of one, that
a policy governs; which of its rows are due; and which of those a hold keeps.

All of it is SQL built from the data map and the policies — the category's row filter, where
its clock is read (:mod:`retention_policies.clocks`), the campaign its rows belong to — so a
category added to the map is swept like the others, with no case of its own here.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, and_, exists, false, or_, select, true

from retention_policies import clocks
from retention_policies.policies import Policy, policies
from storage import cascades
from storage.datamap import CATEGORIES, LEDGER_RECORDS, Clock
from storage.db import db
from storage.models import LegalHold, Restriction, RightsRequest, Subject

ANONYMOUS_SUBJECT_ID = "00000000-0000-4000-8000-000000000000"


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
    clock: Clock = clocks.NO_CLOCK

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
            where=c.where,
            clock=c.clock,
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
            clock=r.clock,
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
    if "request_id" in model.__table__.c and same_database:
        columns.append(
            select(RightsRequest.subject_id)
            .where(RightsRequest.id == model.request_id)
            .scalar_subquery()
        )
    return columns


def _restricted(g: Governed, now: datetime):
    """SQL: a restriction in force names the row — as the record it restricts (from when it
    starts), or as the request that placed it (a request is kept while it holds records)."""
    in_force = or_(Restriction.ends_at.is_(None), Restriction.ends_at > now)
    table = g.model.__table__
    conditions = [
        exists().where(fk.parent == fk.column, in_force)
        for fk in Restriction.__table__.foreign_keys
        if fk.column.table is table
    ]
    # Restrictions name platform records, whose ids are numbers.
    if isinstance(table.c.id.type, Integer):
        conditions.append(
            exists().where(
                Restriction.record_type == g.model.__tablename__,
                Restriction.record_id == table.c.id,
                Restriction.started_at <= now,
                in_force,
            )
        )
    return or_(*conditions) if conditions else false()


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


def narrowed(g: Governed, query):
    """``query`` limited to the rows of the table that ``g`` governs."""
    condition = cascades.row_filter(g)
    return query if condition is None else query.where(condition)


def _actionable(g: Governed):
    """SQL filter: rows the policy's action can still be applied to — not yet anonymised, or
    (to delete) not referred to by another row."""
    if g.policy.action == "anonymise":
        return getattr(g.model, g.subject_column) != ANONYMOUS_SUBJECT_ID
    return ~_still_referred_to(g)


def started(g: Governed):
    """SQL: when the clock of ``g``'s rows started under its policy's trigger."""
    return clocks.started(g.policy.trigger, g.model, g.clock)


def expired(g: Governed, now: datetime):
    """SQL filter: rows whose retention period has run by ``now`` under their policy. Rows
    erasure kept go at the earlier of this and their retain_until: an erasure request never
    makes data live longer."""
    start = started(g)
    return and_(start.is_not(None), start <= g.policy.period.before(now), _actionable(g))


def retained_expired(g: Governed, now: datetime):
    """SQL filter: rows erasure kept whose ``retain_until`` has passed (and whose own clock has
    not: those count as expired): the category's action applies to them now."""
    start = started(g)
    own_clock_ran = and_(start.is_not(None), start <= g.policy.period.before(now))
    return and_(
        g.model.restricted_at.is_not(None),
        g.model.retain_until <= now,
        ~own_clock_ran,
        _actionable(g),
    )
