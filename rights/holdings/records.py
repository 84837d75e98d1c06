"""Ingesting platform records, each with provenance and a history of its changes.

A record is created on first sight of its id and updated when the platform sends it again;
either way a :class:`RecordHistory` row says what changed, from which source, by whom, and
(for corrections) why and on which request. Personal-data values are encrypted with the
subject's key before they reach a column, and history keeps them encrypted too.
"""

from datetime import datetime

from sqlalchemy import select

from rights.errors import Conflict, Invalid
from rights.holdings import restrictions, subjects, suppression
from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.datamap import BY_KEY
from storage.db import db
from storage.models import (
    Brand,
    Campaign,
    Consent,
    Disclosure,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RecordHistory,
    Subject,
)

# What correcting an award makes of it ("not received"): such an award is never promoted.
AWARD_CORRECTION = BY_KEY["perk_awards"].correction


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _set(record, values: dict, *, subject_id: str, creating: bool) -> dict:
    """Set the values that differ on ``record``; the changes as ``{attr: [old, new]}``."""
    table = record.__tablename__
    changes = {}
    for attr, new in values.items():
        if attr.endswith("_enc"):
            current = getattr(record, attr)
            old = None if creating else vault.decrypt(subject_id, f"{table}.{attr}", current)
            if creating or old != new:
                setattr(record, attr, vault.encrypt(subject_id, f"{table}.{attr}", new))
                if not (creating and new is None):
                    changes[attr.removesuffix("_enc")] = [old, new]
        else:
            old = None if creating else getattr(record, attr)
            if creating or old != new:
                setattr(record, attr, new)
                if not (creating and new is None):
                    changes[attr] = [_plain(old), _plain(new)]
    return changes


def apply_changes(
    record,
    values: dict,
    *,
    subject_id: str,
    source: str,
    actor: str,
    reason: str | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Set ``values`` (attribute -> plain value) on ``record`` and write one history row.

    Attributes ending in ``_enc`` take plaintext and are stored encrypted. ``at`` backdates the
    change (imports of past events); it defaults to now. Returns the changes
    as ``{attr: [old, new]}`` (empty when nothing changed; then no history is written).
    """
    table = record.__tablename__
    creating = record.id is None
    changes = _set(record, values, subject_id=subject_id, creating=creating)
    if not changes and not creating:
        return changes
    when = at or utcnow()
    record.source, record.actor, record.recorded_at = source, actor, when
    if creating:
        db.session.add(record)
    db.session.flush()
    db.session.add(
        RecordHistory(
            subject_id=subject_id,
            record_type=table,
            record_id=record.id,
            action="created" if creating else "updated",
            changed_at=when,
            source=source,
            actor=actor,
            reason=reason,
            request_id=request_id,
            changes_enc=vault.encrypt_json(subject_id, "record_history.changes_enc", changes),
        )
    )
    ref = db.session.get(Subject, subject_id).ref
    audit.record(
        f"{source}/{actor}",
        f"record.{'created' if creating else 'updated'}",
        subject_ref=ref,
        target=f"{table}:{record.id}",
        details={"fields": sorted(changes)},
    )
    return changes


def correct(record, values: dict, *, request, actor: str, reason: str) -> dict:
    """A change Lethe makes to a platform record on a request's behalf (a rectification
    accepted, a consent withdrawn): one history row naming the request and who decided."""
    return apply_changes(
        record,
        values,
        subject_id=record.subject_id,
        source="lethe",
        actor=actor,
        reason=reason,
        request_id=request.id,
    )


def by_external(model, external_id: str):
    return db.session.execute(
        select(model).where(model.external_id == external_id)
    ).scalar_one_or_none()


def _same_owner(record, subject_id: str, field: str) -> None:
    """A record never changes owner: each subject's fields are under that subject's key."""
    if record.subject_id != subject_id:
        raise Conflict(
            f"This {record.__tablename__.rstrip('s').replace('_', ' ')} belongs to another "
            "member; it cannot be moved.",
            {field: ["belongs to another member"]},
        )
    _not_retained(record, field)


def member_for(member_id: str) -> Member:
    """The member with this platform id, or the API's 422 (unknown) or 409 (erased)."""
    member = subjects.member_by_external_id(member_id)
    if member is None:
        if suppression.is_suppressed("member_id", member_id):
            raise Conflict(ERASED, {"member_id": ["erased"]})
        raise Invalid("Unknown member.", {"member_id": ["no member with this id"]})
    _not_erased(member.subject_id, "member_id")
    return member


def _not_erased(subject_id: str, field: str) -> None:
    """No new data about someone whose erasure has begun (or is done)."""
    if db.session.get(Subject, subject_id).erased_at is not None:
        raise Conflict(ERASED, {field: ["erased"]})


def _not_retained(record, field: str) -> None:
    """Records kept under an Art. 17(3) exception are stored, not used: not changed either."""
    if getattr(record, "restricted_at", None) is not None:
        raise Conflict(
            "This record is kept only under a legal exception after an erasure; it cannot be "
            "changed.",
            {field: ["retained after erasure"]},
        )


ERASED = (
    "This person's data was erased; records about them cannot be created again. If they have "
    "signed up again, send their new member record with new_signup: true first."
)


def upsert_member(
    data: dict, *, source: str, actor: str, at: datetime | None = None
) -> tuple[Member, bool]:
    """Create or update a member. Returns (member, created)."""
    member = by_external(Member, data["member_id"])
    created = member is None
    if created:
        erased = [
            k
            for k, v in (("member_id", data["member_id"]), ("email", data["email"]))
            if suppression.is_suppressed(k, v)
        ]
        if erased and (not data.get("new_signup") or "member_id" in erased):
            # A new sign-up lifts the email's tombstone, but never brings back an erased
            # member id: the platform gives the new account a new id.
            raise Conflict(ERASED, {k: ["erased"] for k in erased})
        if erased:
            suppression.lift("email", data["email"], actor=f"{source}/{actor}")
        subject = subjects.get_or_create(data["email"])
        if subjects.member_of(subject.id) is not None:
            raise Conflict(
                "Another member already has this email address.",
                {"email": ["belongs to another member"]},
            )
        member = Member(subject_id=subject.id, external_id=data["member_id"])
    elif vault.blind_index(data["email"]) != db.session.get(Subject, member.subject_id).email_index:
        # An address change moves the blind index with it.
        _not_erased(member.subject_id, "member_id")
        if subjects.by_email(data["email"]) is not None:
            raise Conflict("Another subject has this email address.", {"email": ["in use"]})
        if suppression.is_suppressed("email", data["email"]) and not data.get("new_signup"):
            raise Conflict(ERASED, {"email": ["erased"]})
        db.session.get(Subject, member.subject_id).email_index = vault.blind_index(data["email"])
    values = {
        "email_enc": data["email"].strip(),
        "name_enc": data.get("name"),
        "handle_enc": data.get("handle"),
        "address_enc": data.get("address"),
        "status": data.get("status", "active"),
        "joined_at": data.get("joined_at") or (member.joined_at if not created else utcnow()),
        "closed_at": data.get("closed_at"),
    }
    apply_changes(member, values, subject_id=member.subject_id, source=source, actor=actor, at=at)
    db.session.get(Subject, member.subject_id).closed_at = member.closed_at
    return member, created


def _perk(data: dict) -> Perk:
    brand = by_external(Brand, data["brand_id"])
    if brand is None:
        brand = Brand(external_id=data["brand_id"], name=data.get("brand_name") or data["brand_id"])
        db.session.add(brand)
        db.session.flush()
    campaign = None
    if data.get("campaign_id"):
        campaign = by_external(Campaign, data["campaign_id"])
        if campaign is None:
            campaign = Campaign(
                external_id=data["campaign_id"],
                brand_id=brand.id,
                name=data.get("campaign_name") or data["campaign_id"],
            )
            db.session.add(campaign)
            db.session.flush()
    perk = by_external(Perk, data["perk_id"])
    if perk is None:
        perk = Perk(
            external_id=data["perk_id"],
            brand_id=brand.id,
            campaign_id=campaign.id if campaign else None,
            item=data.get("perk_item") or data["perk_id"],
            value_cents=data.get("value_cents", 0),
            currency=data.get("currency", "USD"),
        )
        db.session.add(perk)
        db.session.flush()
    return perk


def upsert_award(
    data: dict, *, source: str, actor: str, at: datetime | None = None
) -> tuple[PerkAward, bool]:
    award = by_external(PerkAward, data["award_id"])
    member = member_for(data["member_id"])
    created = award is None
    if created:
        award = PerkAward(external_id=data["award_id"], subject_id=member.subject_id)
    else:
        _same_owner(award, member.subject_id, "member_id")
    values = {
        "perk_id": _perk(data).id,
        "status": data["status"],
        # An omitted time keeps the one on record unless the status itself changes now.
        "status_at": data.get("status_at")
        or (award.status_at if not created and award.status == data["status"] else utcnow()),
        "shipped_at": data.get("shipped_at"),
        "received_at": data.get("received_at"),
    }
    apply_changes(award, values, subject_id=member.subject_id, source=source, actor=actor, at=at)
    return award, created


def upsert_disclosure(
    data: dict, *, source: str, actor: str, at: datetime | None = None
) -> tuple[Disclosure, bool]:
    award = by_external(PerkAward, data["award_id"])
    if award is None:
        raise Invalid("Unknown award.", {"award_id": ["no award with this id"]})
    _not_erased(award.subject_id, "award_id")
    disclosure = by_external(Disclosure, data["disclosure_id"])
    created = disclosure is None
    if created:
        disclosure = Disclosure(external_id=data["disclosure_id"], subject_id=award.subject_id)
    else:
        _same_owner(disclosure, award.subject_id, "award_id")
    values = {
        "award_id": award.id,
        "status": data["status"],
        "listed_at": data.get("listed_at") or (disclosure.listed_at if not created else utcnow()),
    }
    apply_changes(
        disclosure, values, subject_id=award.subject_id, source=source, actor=actor, at=at
    )
    return disclosure, created


def upsert_consent(
    data: dict, *, source: str, actor: str, at: datetime | None = None
) -> tuple[Consent, bool]:
    member = member_for(data["member_id"])
    consent = by_external(Consent, data["consent_id"])
    created = consent is None
    if created:
        consent = Consent(external_id=data["consent_id"], subject_id=member.subject_id)
    else:
        _same_owner(consent, member.subject_id, "member_id")
    values = {
        "purpose": data["purpose"],
        "status": data["status"],
        "notice_version": data["notice_version"],
        "channel": data["channel"],
        "granted_at": data.get("granted_at"),
        "withdrawn_at": data.get("withdrawn_at"),
    }
    apply_changes(consent, values, subject_id=member.subject_id, source=source, actor=actor, at=at)
    return consent, created


LIKENESS = "name_and_likeness"


def _consent_in_force(subject_id: str, purpose: str) -> bool:
    return (
        db.session.execute(
            select(Consent.id).where(
                Consent.subject_id == subject_id,
                Consent.purpose == purpose,
                Consent.status == "granted",
            )
        ).first()
        is not None
    )


def upsert_promotion(
    data: dict, *, source: str, actor: str, at: datetime | None = None
) -> tuple[Promotion, bool]:
    member = member_for(data["member_id"])
    award_id = consent_id = None
    if data.get("award_id"):
        award = by_external(PerkAward, data["award_id"])
        if award is None or award.subject_id != member.subject_id:
            raise Invalid("Unknown award for this member.", {"award_id": ["unknown"]})
        # Held back while contested, and for good once corrected (the data map's correction).
        if restrictions.is_restricted(award) or AWARD_CORRECTION.made(award):
            raise Conflict(
                "This award is contested or was corrected: it may not be promoted.",
                {"award_id": ["held back"]},
            )
        award_id = award.id
    if data.get("consent_id"):
        consent = by_external(Consent, data["consent_id"])
        if consent is None or consent.subject_id != member.subject_id:
            raise Invalid("Unknown consent for this member.", {"consent_id": ["unknown"]})
        consent_id = consent.id
    if data.get("uses_likeness") and not _consent_in_force(member.subject_id, LIKENESS):
        # Name and likeness are used only under a consent in force; an objection (Art. 21(3))
        # or a withdrawal takes it away, and only the member can give it again.
        raise Conflict(
            "This member has no consent in force to the use of their name and likeness.",
            {"uses_likeness": ["no consent in force"]},
        )
    promotion = by_external(Promotion, data["promotion_id"])
    created = promotion is None
    if created:
        promotion = Promotion(external_id=data["promotion_id"], subject_id=member.subject_id)
    else:
        _same_owner(promotion, member.subject_id, "member_id")
    values = {
        "award_id": award_id,
        "consent_id": consent_id,
        "audience": data["audience"],
        "shown_at": data.get("shown_at") or (promotion.shown_at if not created else utcnow()),
        "message_enc": data.get("message"),
        "uses_likeness": data.get("uses_likeness", False),
    }
    apply_changes(
        promotion, values, subject_id=member.subject_id, source=source, actor=actor, at=at
    )
    return promotion, created
