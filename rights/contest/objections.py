"""Objection (Art. 21) and consent withdrawal (Art. 7(3)).

Objection to direct marketing and to the use of one's name and likeness in promotions is
absolute (Art. 21(2)-(3)): it acts the moment the request stands — the consent that allowed
the use is withdrawn, live promotions are withdrawn, and new ones are refused at ingestion —
and no officer decision can undo it. Objection on grounds relating to one's situation (Art.
21(1): profiling, legitimate interests) is weighed by an officer; meanwhile the processing
objected to is restricted (Art. 18(1)(d)).

Withdrawing a consent takes no more steps than giving it: once the subject is verified it is
done, with no officer in between, and it acts from then on (what was done before stays lawful).
"""

from sqlalchemy import select

from rights.holdings import records, restrictions
from rights.recipients import downstream
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Consent,
    InfluenceScore,
    InfluenceTopic,
    Promotion,
    RightsRequest,
)

# Absolute objections, and the consent each one takes away.
# "sale_and_sharing": the CCPA's right to opt out of the sale or sharing of personal
# information, as authorized agents send it (rights/agents/): absolute, like marketing.
ABSOLUTE = {
    "direct_marketing": "email_marketing",
    "likeness": "name_and_likeness",
    "sale_and_sharing": "sale_and_sharing",
}
# Weighed objections, and what is restricted while they are.
WEIGHED = {"profiling": (InfluenceScore, InfluenceTopic), "legitimate_interests": ()}
LIKENESS = "name_and_likeness"


def withdraw_consent(request: RightsRequest, purpose: str, *, actor: str) -> list:
    """Withdraw the subject's live consents for ``purpose`` from now (flushes); promotions that
    relied on the name-and-likeness consent are withdrawn with it. Returns what changed."""
    now = utcnow()
    why = f"{request.type.replace('_', ' ')} {request.reference}"
    changed = []
    consents = db.session.execute(
        select(Consent).where(
            Consent.subject_id == request.subject_id,
            Consent.purpose == purpose,
            Consent.status == "granted",
        )
    ).scalars()
    for consent in consents:
        records.correct(
            consent,
            {"status": "withdrawn", "withdrawn_at": now},
            request=request,
            actor=actor,
            reason=why,
        )
        changed.append(consent)
    if purpose == LIKENESS:
        changed += _withdraw_promotions(request, actor=actor, reason=why)
    if changed:
        downstream.tell("consent.withdrawn", request, changed, f"stop: {purpose} from now on")
    return changed


def _withdraw_promotions(request: RightsRequest, *, actor: str, reason: str) -> list:
    live = db.session.execute(
        select(Promotion).where(
            Promotion.subject_id == request.subject_id,
            Promotion.uses_likeness.is_(True),
            Promotion.withdrawn_at.is_(None),
        )
    ).scalars()
    out = []
    for promo in live:
        records.correct(
            promo, {"withdrawn_at": utcnow()}, request=request, actor=actor, reason=reason
        )
        out.append(promo)
    return out


def object_to(request: RightsRequest, purpose: str, *, actor: str) -> bool:
    """Act on an objection as soon as it stands (flushes). Returns True when it is absolute
    (done: nothing left to decide), False when an officer must weigh it (processing restricted
    meanwhile)."""
    if purpose in ABSOLUTE:
        changed = withdraw_consent(request, ABSOLUTE[purpose], actor=actor)
        downstream.tell("subject.objected", request, changed, f"stop: {purpose}, permanently")
        return True
    for model in WEIGHED.get(purpose, ()):
        rows = db.session.execute(
            select(model).where(model.subject_id == request.subject_id)
        ).scalars()
        for row in rows:
            restrictions.restrict(row, request=request, reason="objection", actor=actor)
    downstream.tell(
        "subject.objected", request, [], f"hold: {purpose} while the objection is weighed"
    )
    return False
