"""Rectification (Art. 16): the subject names records that are wrong; from the moment the
request stands (identity verified), those records — and what is built on them — are
restricted while their accuracy is contested (Art. 18(1)(a)); accepting applies the correction
with a history row on every record it touches, and tells downstream recipients (Art. 19).

Records are named by their external ids as the subject sees them in their access report
(``aw-…`` awards, ``dl-…`` disclosures, ``pr-…`` promotions, ``con-…`` consents): the data
map's contestable categories. What is built on a contested award — its disclosure-list entries,
promotions and feedback requests, the award's dependants in the data map — is held back with
it: no "rate the phone you never got", no list entry saying he received it. What accepting
makes of each record is the data map's correction for its category.
"""

from flask_babel import gettext as _
from sqlalchemy import select

from rights.holdings import records, restrictions
from rights.recipients import downstream
from storage import cascades, datamap, processes, vault
from storage.clock import utcnow
from storage.db import db
from storage.models import Member, Perk, PerkAward, RightsRequest
from storage.wording import N_

# Profile fields a subject can have corrected, named "profile.<field>" (the data map's names).
PROFILE_FIELDS = {
    "name": "name_enc",
    "handle": "handle_enc",
    "address": "address_enc",
    "email": "email_enc",
}
PROFILE_LABELS = {
    "name": N_("Your name"),
    "handle": N_("Your social media handle"),
    "address": N_("Your postal address"),
    "email": N_("Your email address"),
}


def _member(subject_id: str):
    return db.session.execute(
        select(Member).where(Member.subject_id == subject_id)
    ).scalar_one_or_none()


def _find(subject_id: str, external_id: str):
    for cat in datamap.contestable():
        model = cat.model
        row = db.session.execute(
            select(model).where(
                model.external_id == external_id,
                getattr(model, cat.subject_column) == subject_id,
            )
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


def contest(
    request: RightsRequest, names: list[str], *, actor: str, reason: str = "contested"
) -> tuple[int, list[str]]:
    """Restrict the named records and their dependants for this request (flushes). Returns
    (records restricted, names that matched none of the subject's records)."""
    found, unknown = resolve(request.subject_id, names)
    count = 0
    for record in found:
        for row in [record, *cascades.dependants_of(record)]:
            count += restrictions.restrict(row, request=request, reason=reason, actor=actor)
    if count:
        downstream.tell("subject.restricted", request, [*found], f"hold: {reason}")
    return count, unknown


def contested(request: RightsRequest) -> list:
    """The records this request restricts, as rows (for the officer's review): those of the
    contestable categories and the profile. Feedback held back with an award is not listed:
    there is nothing in it to correct."""
    by_type = {m.__tablename__: m for m in (*(c.model for c in datamap.contestable()), Member)}
    rows = []
    for r in restrictions.of_request(request):
        model = by_type.get(r.record_type)
        row = db.session.get(model, r.record_id) if model else None
        if row is not None:
            rows.append(row)
    return rows


def accept(request: RightsRequest, *, actor: str, profile: dict | None = None) -> list:
    """Apply the correction the subject asked for (flushes): each contested record, and what
    was held back with it, gets its category's correction from the data map — an award becomes
    "not received" (nothing arrived), disclosure-list entries and promotions are withdrawn —
    a record before what is built on it. Each change is a history row naming this request.
    Returns the records changed."""
    changed = []
    why = f"rectification {request.reference} accepted"
    now = utcnow()
    for record in cascades.in_cascade_order(contested(request)):
        correction = datamap.category_of(record).correction
        if correction is not None and not correction.made(record):
            records.correct(record, correction.at(now), request=request, actor=actor, reason=why)
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
    """The subject's records they can point at as wrong (profile fields, then the records of
    each contestable category: awards, list entries, promotions, consents), each with whether
    this request already holds it back."""
    held = {(r.record_type, r.record_id) for r in restrictions.of_request(request)}
    out = _profile_choices(request.subject_id, held)
    items = _perk_items(request.subject_id)
    for cat in datamap.contestable():
        label = LABELS.get(cat.key, _default_label)
        for row in _unrestricted(cat, request.subject_id):
            out.append(_choice(row, label(row, items), held))
    return out


# How each contestable record is named in the list the subject picks from (and the officer
# sees), in the language being written; ``items`` holds the perk of each of their awards, for
# what is built on one.
LABELS = {
    "perk_awards": lambda r, items: _(
        "Award of %(item)s: marked %(status)s",
        item=items[r.id],
        status=processes.status_words(r.status, "perk_awards"),
    ),
    "disclosures": lambda r, items: _(
        "Disclosure-list entry for %(item)s", item=items.get(r.award_id) or _("an award")
    ),
    "promotions": lambda r, items: _(
        "Promotion shown to %(audience)s", audience=processes.audience_words(r.audience)
    ),
    "consents": lambda r, items: _(
        "Consent to %(purpose)s: %(status)s",
        purpose=processes.purpose_words(r.purpose),
        status=processes.status_words(r.status, "consents"),
    ),
}


def _default_label(row, items) -> str:
    return f"{_(datamap.category_of(row).title)}: {row.external_id}"


def _profile_choices(subject_id: str, held: set) -> list[dict]:
    member = _member(subject_id)
    if member is None:
        return []
    member_held = (Member.__tablename__, member.id) in held
    out = []
    for key, column in PROFILE_FIELDS.items():
        value = vault.decrypt(member.subject_id, f"members.{column}", getattr(member, column))
        if value:
            out.append(
                {
                    "id": f"profile.{key}",
                    "label": f"{_(PROFILE_LABELS[key])}: {value}",
                    "held": member_held,
                }
            )
    return out


def _perk_items(subject_id: str) -> dict[int, str]:
    """The perk each of the subject's awards is for (those erasure kept aside)."""
    return dict(
        db.session.execute(
            select(PerkAward.id, Perk.item)
            .join(Perk, Perk.id == PerkAward.perk_id)
            .where(PerkAward.subject_id == subject_id, PerkAward.restricted_at.is_(None))
        ).all()
    )


def _unrestricted(cat: datamap.Category, subject_id: str):
    """The subject's records of ``cat`` in id order, less those erasure kept under a legal
    exception (restricted for good: not theirs to correct any more)."""
    model = cat.model
    query = select(model).where(getattr(model, cat.subject_column) == subject_id).order_by(model.id)
    if hasattr(model, "restricted_at"):
        query = query.where(model.restricted_at.is_(None))
    return db.session.execute(query).scalars()


def _choice(row, label: str, held: set) -> dict:
    return {
        "id": row.external_id,
        "label": label,
        "held": (row.__tablename__, row.id) in held,
    }
