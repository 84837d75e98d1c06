"""Everyone an incident touched, and what became of each: the read model the dashboard shows
and the batches work through.

The members it touched are those whose awards its filter (:mod:`rights.contest.incident_filter`)
describes, whatever became of them since:

- **to correct**: the award still matches, and nothing holds it back;
- **corrected** by this incident (its :class:`IncidentRecord` says when);
- **decided** on a request of the member's own: the request holds the award back under
  Art. 18 (a restriction in force), or had corrected it already (the award's history has the
  change the request wrote, from what the filter describes). The incident counts and tells
  such a member, and never changes their award: the request decides it.

The awards it recorded are read from its records; the others from the platform records as
they stand, so the list is the same before, during and after the correction, and an officer
sees it before anything is done (:func:`touched`; before the incident is opened,
:func:`matches` and :func:`preview`). Counting is SQL over one union of the three; only the
few awards a request corrected are read in Python (what the request changed is in their
history, under the member's key).
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from rights.contest.incident_filter import AWARDS, Filter, described, matching_awards
from rights.holdings import restrictions
from storage import vault
from storage.clock import utcnow
from storage.db import UTCDateTime, db
from storage.models import (
    IncidentRecord,
    Member,
    PerkAward,
    RecordHistory,
    Restriction,
    RightsRequest,
    Subject,
)

# What became of a touched award, as the incident sees it.
TO_CORRECT, CORRECTED, DECIDED = "to_correct", "corrected", "decided"
# How many members the dashboard lists at once (the counts cover them all).
LIST_LIMIT = 50


def _holding_request():
    """SQL: the request whose restriction holds the award back now (the first placed, when
    several do) — :func:`restrictions.in_force`, naming the request."""
    now = utcnow()
    return (
        select(Restriction.request_id)
        .where(
            Restriction.record_type == AWARDS,
            Restriction.record_id == PerkAward.id,
            Restriction.request_id.is_not(None),
            Restriction.started_at <= now,
            or_(Restriction.ends_at.is_(None), Restriction.ends_at > now),
        )
        .order_by(Restriction.id)
        .limit(1)
        .correlate(PerkAward)
        .scalar_subquery()
    )


def _not_recorded(incident_id: int):
    return ~exists().where(
        IncidentRecord.incident_id == incident_id,
        IncidentRecord.record_type == AWARDS,
        IncidentRecord.record_id == PerkAward.id,
    )


def _text(value: str):
    return literal_column(f"'{value}'", String)


def _no_time():
    return cast(null(), UTCDateTime)


def live(f: Filter, incident_id: int, *, held_only: bool = False):
    """The awards the filter matches now that the incident has not recorded, in id order:
    ``award_id``, ``subject_id``, ``external_id``, ``state`` (decided when a request holds it
    back, else to correct) and ``request_id`` (the request holding it)."""
    held = restrictions.in_force(PerkAward)
    query = described(
        f,
        PerkAward.id.label("award_id"),
        PerkAward.subject_id.label("subject_id"),
        PerkAward.external_id.label("external_id"),
        case((held, _text(DECIDED)), else_=_text(TO_CORRECT)).label("state"),
        _holding_request().label("request_id"),
    ).where(_not_recorded(incident_id))
    return query.where(held) if held_only else query


def decided_earlier(f: Filter) -> dict[int, str]:
    """Awards the filter describes that a request of their member's own had corrected before
    the incident could (award id → request id): they no longer match, since the request
    changed what the filter looks for, and the history row the request wrote says the award
    was as the filter describes until then. Few: only awards a request changed are read."""
    history = aliased(RecordHistory)
    rows = db.session.execute(
        described(
            f,
            PerkAward.id,
            PerkAward.subject_id,
            PerkAward.status_at,
            history.request_id,
            history.changes_enc,
            as_now=False,
        )
        .join(
            history,
            and_(
                history.record_type == AWARDS,
                history.record_id == PerkAward.id,
                history.request_id.is_not(None),
                history.action == "updated",
            ),
        )
        .join(
            RightsRequest,
            and_(
                RightsRequest.id == history.request_id,
                RightsRequest.subject_id == PerkAward.subject_id,
            ),
        )
        .join(Subject, Subject.id == PerkAward.subject_id)
        .where(PerkAward.status != f.status, Subject.erased_at.is_(None))
        .order_by(history.id)
    ).all()
    vault.load_keys([r.subject_id for r in rows])
    found = {}
    for r in rows:
        if r.id in found:
            continue
        changes = vault.decrypt_json(r.subject_id, "record_history.changes_enc", r.changes_enc)
        status = (changes or {}).get("status")
        if not status or status[0] != f.status:
            continue
        was_at = (changes.get("status_at") or [None])[0]
        if f.in_range(datetime.fromisoformat(was_at) if was_at else r.status_at):
            found[r.id] = r.request_id
    return found


def _touched(incident, f: Filter):
    """One row per award the incident touched — ``award_id``, ``subject_id``, ``state``,
    ``request_id`` (deciding it), ``corrected_at``, ``notified_at`` — as a CTE."""
    recorded = (
        select(
            IncidentRecord.record_id.label("award_id"),
            PerkAward.subject_id.label("subject_id"),
            case(
                (IncidentRecord.corrected_at.is_not(None), _text(CORRECTED)),
                else_=_text(DECIDED),
            ).label("state"),
            IncidentRecord.decided_by_request_id.label("request_id"),
            IncidentRecord.corrected_at.label("corrected_at"),
            IncidentRecord.notified_at.label("notified_at"),
        )
        .join(PerkAward, PerkAward.id == IncidentRecord.record_id)
        .where(IncidentRecord.incident_id == incident.id, IncidentRecord.record_type == AWARDS)
    )
    now = live(f, incident.id).order_by(None).subquery()
    parts = [
        recorded,
        select(
            now.c.award_id,
            now.c.subject_id,
            now.c.state,
            now.c.request_id,
            _no_time().label("corrected_at"),
            _no_time().label("notified_at"),
        ),
    ]
    earlier = decided_earlier(f)
    if earlier:
        parts.append(
            select(
                PerkAward.id,
                PerkAward.subject_id,
                _text(DECIDED),
                case(earlier, value=PerkAward.id),
                _no_time(),
                _no_time(),
            ).where(PerkAward.id.in_(list(earlier)), _not_recorded(incident.id))
        )
    return union_all(*parts).cte("touched")


@dataclass
class Touched:
    """Everyone an incident touched, counted (members are counted once each, in each state
    they have an award in), with the first of them listed."""

    members: int = 0
    awards: int = 0
    corrected: int = 0
    corrected_awards: int = 0
    decided: int = 0
    to_correct: int = 0
    to_correct_awards: int = 0
    told: int = 0
    # Members with an award settled (corrected or decided) who have not been told yet, and
    # can be: erased people are never written to.
    to_tell: int = 0
    erased: int = 0
    rows: list[dict] = field(default_factory=list)


def _members(t, condition):
    return func.count(distinct(case((condition, t.c.subject_id))))


def _told(t):
    """SQL: the members of the CTE ``t`` told already (on any of their records)."""
    return select(t.c.subject_id).where(t.c.notified_at.is_not(None))


def _tellable(t):
    """The CTE ``t``'s rows whose member is to be told now, as (what to select them from,
    the conditions): settled, a member still (joined to Subject and Member), not erased, not
    told on any of their records."""
    members = t.join(Subject, Subject.id == t.c.subject_id).join(
        Member, Member.subject_id == t.c.subject_id
    )
    return members, (
        t.c.state != TO_CORRECT,
        Subject.erased_at.is_(None),
        t.c.subject_id.not_in(_told(t)),
    )


def _counts(t) -> dict:
    """How many members (and awards) the CTE ``t`` has in each state; told, erased, and
    still to tell."""
    counts = db.session.execute(
        select(
            func.count(distinct(t.c.subject_id)).label("members"),
            func.count().label("awards"),
            _members(t, t.c.state == CORRECTED).label("corrected"),
            func.count(case((t.c.state == CORRECTED, 1))).label("corrected_awards"),
            _members(t, t.c.state == DECIDED).label("decided"),
            _members(t, t.c.state == TO_CORRECT).label("to_correct"),
            func.count(case((t.c.state == TO_CORRECT, 1))).label("to_correct_awards"),
            _members(t, t.c.notified_at.is_not(None)).label("told"),
            _members(t, Subject.erased_at.is_not(None)).label("erased"),
        ).select_from(t.join(Subject, Subject.id == t.c.subject_id))
    ).one()
    members, tellable = _tellable(t)
    to_tell = db.session.execute(
        select(func.count(distinct(t.c.subject_id))).select_from(members).where(*tellable)
    ).scalar_one()
    return {**counts._asdict(), "to_tell": to_tell}


def _listed(t, *, limit: int, state: str | None) -> list[dict]:
    """The CTE ``t``'s first ``limit`` awards (in award order; in ``state`` when given), each
    with its member and what became of it."""
    rows = db.session.execute(
        select(
            t.c.award_id,
            t.c.state,
            t.c.request_id,
            t.c.corrected_at,
            t.c.subject_id.in_(_told(t)).label("told"),
            PerkAward.external_id,
            PerkAward.status_at,
            Member.external_id.label("member"),
            Subject.ref,
            Subject.erased_at,
            RightsRequest.reference,
        )
        .select_from(
            t.join(PerkAward, PerkAward.id == t.c.award_id)
            .join(Subject, Subject.id == t.c.subject_id)
            .outerjoin(Member, Member.subject_id == t.c.subject_id)
            .outerjoin(RightsRequest, RightsRequest.id == t.c.request_id)
        )
        .where(*([t.c.state == state] if state else []))
        .order_by(t.c.award_id)
        .limit(limit)
    ).all()
    return [
        {
            "award": r.external_id,
            "status_at": r.status_at,
            "member": r.member,
            "subject_ref": r.ref,
            "state": r.state,
            "request_id": r.request_id,
            "request_reference": r.reference,
            "corrected_at": r.corrected_at,
            "told": bool(r.told),
            "erased": r.erased_at is not None,
        }
        for r in rows
    ]


def touched(incident, *, limit: int = LIST_LIMIT, state: str | None = None) -> Touched:
    """Everyone the incident touched, with the first ``limit`` of their awards (in award
    order; only those in ``state`` when given) for the officer to see who and what became of
    it: corrected by the incident, decided on which request, or still to correct."""
    t = _touched(incident, Filter.load(incident.record_filter))
    return Touched(**_counts(t), rows=_listed(t, limit=limit, state=state))


def first_to_tell(incident) -> str | None:
    """The subject the apology goes to first (the order the batches tell them in), if any."""
    t = _touched(incident, Filter.load(incident.record_filter))
    members, tellable = _tellable(t)
    return db.session.execute(
        select(t.c.subject_id)
        .select_from(members)
        .where(*tellable)
        .order_by(t.c.subject_id)
        .limit(1)
    ).scalar()


def matches(f: Filter) -> int:
    """How many awards the filter matches that are still to correct."""
    return db.session.execute(
        select(func.count()).select_from(matching_awards(f).subquery())
    ).scalar_one()


def preview(f: Filter, *, limit: int = LIST_LIMIT) -> list[dict]:
    """The first matching members still to correct (for the officer to see who), with their
    award."""
    rows = db.session.execute(
        matching_awards(f)
        .add_columns(PerkAward.status_at, Member.external_id, Subject.ref)
        .join(Member, Member.subject_id == PerkAward.subject_id)
        .join(Subject, Subject.id == PerkAward.subject_id)
        .limit(limit)
    ).all()
    return [{"award": r[2], "status_at": r[3], "member": r[4], "subject_ref": r[5]} for r in rows]
