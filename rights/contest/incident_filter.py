"""An incident's filter: the fault described as a filter over perk awards — this perk, written
by this source process, in this date range, marked received with no shipment — and the awards
it matches, counted and previewed for the officer (:mod:`rights.contest.incidents`)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select

from rights.errors import Invalid
from rights.holdings import restrictions
from storage.db import db
from storage.models import Member, Perk, PerkAward, RecordHistory, Subject


@dataclass
class Filter:
    perk: str
    source: str | None = None
    status: str = "received"
    since: datetime | None = None
    until: datetime | None = None
    no_shipment: bool = True

    @classmethod
    def load(cls, data: dict) -> "Filter":
        return cls(
            perk=data["perk"],
            source=data.get("source") or None,
            status=data.get("status") or "received",
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
            no_shipment=bool(data.get("no_shipment", True)),
        )

    def dump(self) -> dict:
        return {
            "perk": self.perk,
            "source": self.source,
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "no_shipment": self.no_shipment,
        }

    def describe(self) -> str:
        parts = [f"awards of perk {self.perk} marked {self.status}"]
        if self.source:
            parts.append(f"written by {self.source}")
        if self.since or self.until:
            parts.append(
                f"between {self.since.date() if self.since else 'the start'} and "
                f"{self.until.date() if self.until else 'now'}"
            )
        if self.no_shipment:
            parts.append("with no shipment recorded")
        return ", ".join(parts)


def matching_awards(f: Filter):
    """Awards matching the filter (ids, subjects and external ids), in id order. Records kept
    only under a legal exception after an erasure are never touched."""
    query = (
        select(PerkAward.id, PerkAward.subject_id, PerkAward.external_id)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .where(
            Perk.external_id == f.perk,
            PerkAward.status == f.status,
            PerkAward.restricted_at.is_(None),
            # A record a request holds back (Art. 18) is decided on that request, not here.
            ~restrictions.in_force(PerkAward),
        )
        .order_by(PerkAward.id)
    )
    if f.no_shipment:
        query = query.where(PerkAward.shipped_at.is_(None))
    if f.since:
        query = query.where(PerkAward.status_at >= f.since)
    if f.until:
        query = query.where(PerkAward.status_at < f.until)
    if f.source:
        query = query.where(
            exists().where(
                RecordHistory.record_type == PerkAward.__tablename__,
                RecordHistory.record_id == PerkAward.id,
                RecordHistory.source == f.source,
            )
        )
    return query


def validate(data: dict) -> Filter:
    """The filter an officer typed, or :class:`Invalid` naming each field that is wrong."""
    errors = {}
    perk = (data.get("perk") or "").strip()
    if not perk:
        errors["perk"] = ["required"]
    elif not db.session.execute(select(Perk.id).where(Perk.external_id == perk)).first():
        errors["perk"] = ["no perk with this id"]
    try:
        f = Filter.load({**data, "perk": perk})
    except (ValueError, TypeError):
        errors["since"] = ["dates as YYYY-MM-DD"]
        f = None
    if f and f.since and f.until and f.since >= f.until:
        errors["until"] = ["after the start"]
    if errors:
        raise Invalid("The filter cannot be used.", errors)
    return f


def matches(f: Filter) -> int:
    return db.session.execute(
        select(func.count()).select_from(matching_awards(f).subquery())
    ).scalar_one()


def preview(f: Filter, *, limit: int = 50) -> list[dict]:
    """The first matching members (for the officer to see who), with their award."""
    rows = db.session.execute(
        matching_awards(f)
        .add_columns(PerkAward.status_at, Member.external_id, Subject.ref)
        .join(Member, Member.subject_id == PerkAward.subject_id)
        .join(Subject, Subject.id == PerkAward.subject_id)
        .limit(limit)
    ).all()
    return [{"award": r[2], "status_at": r[3], "member": r[4], "subject_ref": r[5]} for r in rows]
