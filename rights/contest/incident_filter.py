"""An incident's filter: the fault an officer describes, as a query over perk awards — this perk,
written by this source process, in this date range, marked received with no shipment.

:class:`Filter` is what the officer typed (:func:`validate` checks it; the incident stores it
as :meth:`Filter.dump`); :func:`described` is the awards it describes, :func:`matching_awards`
those of them still to correct. Who the fault touched, and what became of each, is read in
:mod:`rights.contest.incident_touched`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select

from rights.errors import Invalid
from rights.holdings import restrictions
from storage.db import db
from storage.models import Perk, PerkAward, RecordHistory

AWARDS = PerkAward.__tablename__


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

    def in_range(self, at: datetime) -> bool:
        """Whether an award marked at ``at`` falls in the filter's dates."""
        at = _aware(at)
        return (not self.since or at >= _aware(self.since)) and (
            not self.until or at < _aware(self.until)
        )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def described(f: Filter, *columns, as_now: bool = True):
    """SELECT ``columns`` of the awards the filter describes, in id order. ``as_now``: as they
    stand now (marked ``f.status`` in the date range); otherwise whatever they are marked now
    (the caller checks what they were). Records kept only under a legal exception after an
    erasure are never touched. Holds are the caller's to look at."""
    query = (
        select(*columns)
        .select_from(PerkAward)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .where(Perk.external_id == f.perk, PerkAward.restricted_at.is_(None))
        .order_by(PerkAward.id)
    )
    if as_now:
        query = query.where(PerkAward.status == f.status)
        if f.since:
            query = query.where(PerkAward.status_at >= f.since)
        if f.until:
            query = query.where(PerkAward.status_at < f.until)
    if f.no_shipment:
        query = query.where(PerkAward.shipped_at.is_(None))
    if f.source:
        query = query.where(
            exists().where(
                RecordHistory.record_type == AWARDS,
                RecordHistory.record_id == PerkAward.id,
                RecordHistory.source == f.source,
            )
        )
    return query


def matching_awards(f: Filter):
    """Awards matching the filter that are still to correct (ids, subjects and external ids),
    in id order: a record a request holds back (Art. 18) is decided on that request."""
    return described(f, PerkAward.id, PerkAward.subject_id, PerkAward.external_id).where(
        ~restrictions.in_force(PerkAward)
    )


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
