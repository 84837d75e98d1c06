"""Rectification (Art. 16): the subject names records that are wrong; from the moment the
request stands (identity verified), those records — and what is built on them — are
restricted while their accuracy is contested (Art. 18(1)(a)); accepting applies the correction
with a history row on every record it touches, and tells downstream recipients (Art. 19).

Records are named by their external ids as the subject sees them in their access report
(``aw-…`` awards, ``dl-…`` disclosures, ``pr-…`` promotions, ``con-…`` consents). What is built
on a contested award — its disclosure-list entries and promotions — is held back with it: no
"rate the phone you never got", no list entry saying he received it.
"""

from sqlalchemy import select

from rights.holdings import records, restrictions
from rights.recipients import downstream
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Consent,
    Disclosure,
    Feedback,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RightsRequest,
)

CONTESTABLE = (PerkAward, Disclosure, Promotion, Consent)


# Profile fields a subject can have corrected, named "profile.<field>" (the data map's names).
PROFILE_FIELDS = {
    "name": "name_enc",
    "handle": "handle_enc",
    "address": "address_enc",
    "email": "email_enc",
}
PROFILE_LABELS = {
    "name": "Your name",
    "handle": "Your social media handle",
    "address": "Your postal address",
    "email": "Your email address",
}


def _member(subject_id: str):
    return db.session.execute(
        select(Member).where(Member.subject_id == subject_id)
    ).scalar_one_or_none()


def _find(subject_id: str, external_id: str):
    for model in CONTESTABLE:
        row = db.session.execute(
            select(model).where(model.external_id == external_id, model.subject_id == subject_id)
        ).scalar_one_or_none()
        if row is not None:
            return row
    return None


def resolve(subject_id: str, names: list[str]) -> tuple[list, list[str]]:
    """(the subject's own records among ``names``, the names that are not theirs or unknown).
    A profile field ("profile.name") stands for the member's profile record."""
    found, unknown = [], []
    for name in dict.fromkeys(n.strip() for n in names if n and n.strip()):
        if name.startswith("profile."):
            row = _member(subject_id) if name[8:] in PROFILE_FIELDS else None
        else:
            row = _find(subject_id, name)
        if row is None:
            unknown.append(name)
        elif row not in found:
            found.append(row)
    return found, unknown


def profile_fields(names: list[str]) -> list[str]:
    """The profile fields among a request's named records (for the officer to correct)."""
    return [n[8:] for n in names or [] if n.startswith("profile.") and n[8:] in PROFILE_FIELDS]


def dependants(record) -> list:
    """What is built on a record and must be held back or corrected with it."""
    if isinstance(record, PerkAward):
        out = list(
            db.session.execute(select(Disclosure).where(Disclosure.award_id == record.id)).scalars()
        )
        out += list(
            db.session.execute(select(Promotion).where(Promotion.award_id == record.id)).scalars()
        )
        # A feedback request about the award is a solicitation: no "rate the phone you never
        # got" while its receipt is contested.
        out += list(
            db.session.execute(select(Feedback).where(Feedback.award_id == record.id)).scalars()
        )
        return out
    return []


def contest(
    request: RightsRequest, names: list[str], *, actor: str, reason: str = "contested"
) -> tuple[int, list[str]]:
    """Restrict the named records and their dependants for this request (flushes). Returns
    (records restricted, names that matched none of the subject's records)."""
    found, unknown = resolve(request.subject_id, names)
    count = 0
    for record in found:
        for row in [record, *dependants(record)]:
            count += restrictions.restrict(row, request=request, reason=reason, actor=actor)
    if count:
        downstream.tell("subject.restricted", request, [*found], f"hold: {reason}")
    return count, unknown


def contested(request: RightsRequest) -> list:
    """The records this request restricts, as rows (for the officer's review)."""
    by_type = {m.__tablename__: m for m in (*CONTESTABLE, Member)}
    rows = []
    for r in restrictions.of_request(request):
        model = by_type.get(r.record_type)
        row = db.session.get(model, r.record_id) if model else None
        if row is not None:
            rows.append(row)
    return rows


def accept(request: RightsRequest, *, actor: str, profile: dict | None = None) -> list:
    """Apply the correction the subject asked for (flushes): a contested award becomes "not
    received" (nothing arrived), its disclosure-list entries are withdrawn, promotions built on
    it are withdrawn; a contested disclosure is withdrawn; a contested promotion is withdrawn.
    Each change is a history row naming this request. Returns the records changed."""
    changed = []
    why = f"rectification {request.reference} accepted"
    now = utcnow()
    for record in [r for r in contested(request) if isinstance(r, (PerkAward,))]:
        if record.status != "not_received":
            records.correct(
                record,
                {"status": "not_received", "status_at": now, "received_at": None},
                request=request,
                actor=actor,
                reason=why,
            )
            changed.append(record)
    for record in contested(request):
        if isinstance(record, Disclosure) and record.status != "withdrawn":
            records.correct(
                record, {"status": "withdrawn"}, request=request, actor=actor, reason=why
            )
            changed.append(record)
        elif isinstance(record, Promotion) and record.withdrawn_at is None:
            records.correct(record, {"withdrawn_at": now}, request=request, actor=actor, reason=why)
            changed.append(record)
    values = {
        PROFILE_FIELDS[k]: v.strip()
        for k, v in (profile or {}).items()
        if k in PROFILE_FIELDS and isinstance(v, str) and v.strip()
    }
    if values:
        member = _member(request.subject_id)
        if member is not None and records.correct(
            member, values, request=request, actor=actor, reason=why
        ):
            changed.append(member)
    # Corrected records are used again as they now stand: the hold has done its work.
    restrictions.end_now(request, actor=actor)
    if changed:
        downstream.tell("subject.rectified", request, changed, "correct: apply the new values")
    return changed


def refuse(request: RightsRequest, *, actor: str):
    """The records stand as they are: their restriction ends after the subject is told."""
    ends = restrictions.lift(request, actor=actor)
    if ends is not None:
        downstream.tell("subject.restriction_lifted", request, contested(request), "resume use")
    return ends


def choices(request: RightsRequest) -> list[dict]:
    """The subject's records they can point at as wrong (awards, list entries, promotions,
    consents), each with whether this request already holds it back."""
    held = {(r.record_type, r.record_id) for r in restrictions.of_request(request)}
    out = []
    awards = db.session.execute(
        select(PerkAward, Perk.item)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .where(PerkAward.subject_id == request.subject_id, PerkAward.restricted_at.is_(None))
        .order_by(PerkAward.id)
    ).all()
    items = {}
    member = _member(request.subject_id)
    if member is not None:
        member_held = (Member.__tablename__, member.id) in held
        for key, column in PROFILE_FIELDS.items():
            value = vault.decrypt(member.subject_id, f"members.{column}", getattr(member, column))
            if value:
                out.append(
                    {
                        "id": f"profile.{key}",
                        "label": f"{PROFILE_LABELS[key]}: {value}",
                        "held": member_held,
                    }
                )
    for award, item in awards:
        items[award.id] = item
        out.append(
            _choice(award, f"Award of {item}: marked {award.status.replace('_', ' ')}", held)
        )
    for model, label in (
        (Disclosure, lambda r: f"Disclosure-list entry for {items.get(r.award_id, 'an award')}"),
        (Promotion, lambda r: f"Promotion shown to {r.audience}"),
        (Consent, lambda r: f"Consent to {r.purpose.replace('_', ' ')}: {r.status}"),
    ):
        rows = db.session.execute(
            select(model).where(model.subject_id == request.subject_id).order_by(model.id)
        ).scalars()
        for row in rows:
            if getattr(row, "restricted_at", None) is None:
                out.append(_choice(row, label(row), held))
    return out


def _choice(row, label: str, held: set) -> dict:
    return {
        "id": row.external_id,
        "label": label,
        "held": (row.__tablename__, row.id) in held,
    }
