"""Demo data: a small perk platform and the story of DESIGN.md.

Sam Rivera was told he had won a Nova X1 phone, then found ineligible; a fulfilment sync job
later marked the award "received" though nothing shipped. The disclosure list still says he
received it, and a promotion told his friends he had won. Eleven other members of the same
campaign were hit by the same sync fault. Around them, a few hundred ordinary members.

Everything goes through the same ingestion services the API uses, so provenance and history
are real. Deterministic (seeded) so the demo reads the same on every machine.

With a receiver (``flask demo load --receiver URL``, which ``make run`` passes), the brand and
a disclosure-list consumer are webhook subscribers too (:mod:`demo.subscribers`, whose names
this module re-exports for its callers), served by :mod:`demo.receiver`: once an officer
approves Sam's correction, his request's page shows them told, then confirmed. Without one (the
tests' demo), nobody subscribes: no deliveries wait on a receiver that is not running.
"""

import random
from datetime import timedelta

from sqlalchemy import select

from demo import subscribers
from rights.holdings import records
from rights.ledger import officers
from rights.lifecycle import requests
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Feedback,
    InfluenceScore,
    InfluenceTopic,
    Member,
    Officer,
    PerkAward,
)

STORY_EMAIL = "sam.rivera@example.com"
STORY_MEMBER = "m-0001"
BRANDS = [
    ("b-nova", "Nova Mobile", "c-nova-x1", "Nova X1 Launch", "p-nova-x1", "Nova X1 phone", 79900),
    ("b-brew", "Brewlab", "c-brew-fall", "Fall Roast Club", "p-brew-kit", "Pour-over kit", 4500),
    ("b-trail", "Trailhead", "c-trail-run", "Run Season", "p-trail-shoe", "Trail shoes", 12900),
    ("b-glow", "Glow Skin", "c-glow-spf", "Summer SPF", "p-glow-spf", "SPF 50 set", 3900),
]
TOPICS = ["tech", "coffee", "running", "skincare", "travel", "gaming", "food", "fitness"]
FIRST = ["Alex", "Jordan", "Priya", "Chen", "Maria", "Omar", "Lena", "Kofi", "Ines", "Tom"]
LAST = ["Smith", "Garcia", "Okafor", "Nguyen", "Müller", "Rossi", "Kowalski", "Haddad"]


def _perk(brand) -> dict:
    bid, bname, cid, cname, pid, item, value = brand
    return {
        "brand_id": bid,
        "brand_name": bname,
        "campaign_id": cid,
        "campaign_name": cname,
        "perk_id": pid,
        "perk_item": item,
        "value_cents": value,
        "currency": "USD",
    }


def _member(n: int, email: str, name: str, at) -> Member:
    member, _ = records.upsert_member(
        {
            "member_id": f"m-{n:04d}",
            "email": email,
            "name": name,
            "handle": "@" + name.lower().replace(" ", "_"),
            "address": f"{n} Demo Street, Springfield",
            "status": "active",
            "joined_at": at,
        },
        source="signup-web",
        actor="member",
        at=at,
    )
    return member


def _profile(member: Member, rng: random.Random, at) -> None:
    score = InfluenceScore(subject_id=member.subject_id)
    records.apply_changes(
        score,
        {
            "score": round(rng.uniform(10, 95), 1),
            "model_version": "influence-2026.3",
            "computed_at": at,
            "factors": {
                "followers": round(rng.uniform(0.2, 0.5), 2),
                "engagement": round(rng.uniform(0.2, 0.5), 2),
                "consistency": round(rng.uniform(0.1, 0.3), 2),
            },
        },
        subject_id=member.subject_id,
        source="scoring-service",
        actor="nightly-score-job",
        at=at,
    )
    for topic in rng.sample(TOPICS, 2):
        records.apply_changes(
            InfluenceTopic(subject_id=member.subject_id),
            {"topic": topic, "weight": round(rng.uniform(0.1, 1.0), 2)},
            subject_id=member.subject_id,
            source="scoring-service",
            actor="topic-inference",
            at=at,
        )


def load(extra_members: int = 300) -> dict | None:
    """Load the demo (flushes). Returns counts, or None if it is already there."""
    if db.session.execute(select(Member.id).where(Member.external_id == STORY_MEMBER)).first():
        return None
    rng = random.Random(20261125)
    start = utcnow() - timedelta(days=120)
    _story(rng, start)
    counts = {"members": 1, "awards": 1, "affected_by_sync_fault": 0}
    # Others hit by the same sync fault, and ordinary members.
    for n in range(2, extra_members + 2):
        faulty = _other_member(n, rng, start)
        counts["members"] += 1
        counts["awards"] += 1
        counts["affected_by_sync_fault"] += int(faulty)
    counts.update(_requests(extra_members))
    counts["officers"] = len(_officers())
    return counts


def _consent(consent_id: str, member_id: str, purpose: str, at) -> None:
    records.upsert_consent(
        {
            "consent_id": consent_id,
            "member_id": member_id,
            "purpose": purpose,
            "status": "granted",
            "notice_version": "2026-01",
            "channel": "signup-web",
            "granted_at": at,
        },
        source="consent-service",
        actor="member",
        at=at,
    )


def _disclosure(disclosure_id: str, award_id: str, at) -> None:
    records.upsert_disclosure(
        {
            "disclosure_id": disclosure_id,
            "award_id": award_id,
            "status": "disclosed",
            "listed_at": at,
        },
        source="disclosure-generator",
        actor="ftc-list-build",
        at=at,
    )


def _story(rng: random.Random, start) -> None:
    """Sam: recorded as having received a phone he never got, listed and promoted for it."""
    nova = BRANDS[0]
    sam = _member(1, STORY_EMAIL, "Sam Rivera", start)
    _profile(sam, rng, start + timedelta(days=1))
    _consent("con-0001-likeness", STORY_MEMBER, "name_and_likeness", start)
    _consent("con-0001-marketing", STORY_MEMBER, "email_marketing", start)
    offered = start + timedelta(days=30)
    award = {"award_id": "aw-0001-nova", "member_id": STORY_MEMBER, **_perk(nova)}
    for status, source, actor, days in (
        ("offered", "award-engine", "campaign-draw-2026-08", 0),
        ("claimed", "member-app", "member", 1),
        ("ineligible", "eligibility-check", "geo-rule-v2", 3),
        ("received", "fulfilment-sync", "sync-job-0817", 9),  # the fault: nothing shipped
    ):
        at = offered + timedelta(days=days)
        records.upsert_award(
            {**award, "status": status, "status_at": at}, source=source, actor=actor, at=at
        )
    _disclosure("dl-0001-nova", "aw-0001-nova", offered + timedelta(days=10))
    records.upsert_promotion(
        {
            "promotion_id": "pr-0001-nova",
            "member_id": STORY_MEMBER,
            "award_id": "aw-0001-nova",
            "consent_id": "con-0001-likeness",
            "audience": "friends",
            "shown_at": offered + timedelta(days=12),
            "message": "Sam Rivera just won a Nova X1 phone! Join Perkly to win yours.",
            "uses_likeness": True,
        },
        source="promo-service",
        actor="winner-spotlight",
        at=offered + timedelta(days=12),
    )
    award_row = records.by_external(PerkAward, "aw-0001-nova")
    records.apply_changes(
        Feedback(subject_id=sam.subject_id, award_id=award_row.id),
        {"rating": None, "text_enc": None},
        subject_id=sam.subject_id,
        source="feedback-form",
        actor="solicitation-bot",
        at=offered + timedelta(days=14),
    )


FAULTY_STEPS = (
    ("offered", "award-engine", "campaign-draw-2026-08", 0),
    ("ineligible", "eligibility-check", "geo-rule-v2", 3),
    ("received", "fulfilment-sync", "sync-job-0817", 9),
)
ORDINARY_STEPS = (
    ("offered", "award-engine", "campaign-draw", 0),
    ("claimed", "member-app", "member", 1),
    ("shipped", "fulfilment", "warehouse-3", 4),
    ("received", "carrier-webhook", "carrier", 8),
)


def _other_member(n: int, rng: random.Random, start) -> bool:
    """Member ``n`` with one award; members 2-12 were hit by Sam's sync fault (returns so)."""
    joined = start + timedelta(days=rng.randint(0, 60))
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    member = _member(n, f"member{n:04d}@example.com", name, joined)
    _profile(member, rng, joined + timedelta(days=1))
    mid = f"m-{n:04d}"
    _consent(f"con-{n:04d}-likeness", mid, "name_and_likeness", joined)
    faulty = n <= 12
    brand = BRANDS[0] if faulty else rng.choice(BRANDS)
    award_id = f"aw-{n:04d}-{brand[0][2:]}"
    base = {"award_id": award_id, "member_id": mid, **_perk(brand)}
    at = joined + timedelta(days=rng.randint(5, 40))
    for status, source, actor, days in FAULTY_STEPS if faulty else ORDINARY_STEPS:
        when = at + timedelta(days=days)
        data = {**base, "status": status, "status_at": when}
        if status == "shipped":
            data["shipped_at"] = when
        if status == "received":
            data["received_at"] = when
            if not faulty:
                data["shipped_at"] = at + timedelta(days=4)
        records.upsert_award(data, source=source, actor=actor, at=when)
    if faulty or rng.random() < 0.7:
        _disclosure(f"dl-{n:04d}", award_id, at + timedelta(days=10))
    return faulty


# Demo sign-ins, published in the README: development only (the CLI refuses in production).
DEMO_PASSWORD = "lethe-demo-password"  # noqa: S105 - published on purpose (demo only)
DEMO_OFFICERS = (
    ("dpo@perkly.example", "Dana Okafor", "admin", "LETHEDEMOADMINDANAOKAFORQQQQQQQQ"),
    ("officer@perkly.example", "Olu Mensah", "officer", "LETHEDEMOOFFICEROLUMENSAHQQQQQQQ"),
    ("auditor@perkly.example", "Aino Virtanen", "auditor", "LETHEDEMOAUDITORAINOVIRTANENQQQQ"),
)


def safe_to_load() -> bool:
    """False when real officers exist: a database in use must never get the demo's published
    sign-ins (whatever the environment says it is)."""
    demo_indexes = [vault.blind_index(email) for email, *_ in DEMO_OFFICERS]
    return not db.session.execute(
        select(Officer.id).where(Officer.email_index.not_in(demo_indexes)).limit(1)
    ).first()


def _officers() -> list[str]:
    return [
        officers.create(
            email, name=name, role=role, password=DEMO_PASSWORD, by="demo", totp_secret=secret
        )[1]
        for email, name, role, secret in DEMO_OFFICERS
    ]


def _backdate(request, days: int) -> None:
    """Move a demo request (and its timeline) into the past, so the queue has requests due
    soon, overdue and closed. Demo only: real requests are dated by the clock."""
    delta = timedelta(days=days)
    for column in (
        "received_at",
        "original_due_at",
        "due_at",
        "verified_at",
        "decided_at",
        "completed_at",
        "downloads_expire_at",
    ):
        value = getattr(request, column)
        if value is not None:
            setattr(request, column, value - delta)
    for event in requests.events(request):
        event.at -= delta


def _requests(extra_members: int) -> dict:
    story = requests.file(
        type="rectification",
        member_id=STORY_MEMBER,
        channel="web",
        verified=True,
        actor="platform-account-page",
        details={
            "records": ["aw-0001-nova"],
            "correction": "I never received the Nova X1 phone. The award says received and my "
            "name is on the disclosure list and in a promotion for it. Please correct it.",
        },
    )
    _backdate(story, 3)
    plan = (
        # (member n, type, days ago, outcome)
        (20, "access", 10, None),
        (21, "portability", 40, None),
        (30, "restriction", 26, None),
        (40, "objection", 35, None),
        (50, "rectification", 45, "refuse"),
        (60, "consent_withdrawal", 20, None),  # done at once, no officer
        (70, "restriction", 5, None),
    )
    plan = plan if extra_members else ()
    for n, type_, days, outcome in plan:
        n = 2 + (n - 2) % extra_members  # the plan's members, or the few there are
        req = requests.file(
            type=type_,
            member_id=f"m-{n:04d}",
            channel="api",
            verified=True,
            actor="apikey:platform",
            details={"purpose": "profiling", "grounds_text": "I object to being scored."}
            if type_ == "objection"
            else {"consent_purpose": "email_marketing"}
            if type_ == "consent_withdrawal"
            else {},
        )
        if outcome == "refuse":
            requests.refuse(
                req,
                reason="The records you named are correct: the carrier confirmed delivery.",
                actor="demo",
            )
        elif outcome == "approve":
            requests.approve(req, actor="demo", note="Consent withdrawn in the consent service.")
        _backdate(req, days)
    requests.file(type="erasure", email="someone@example.net", channel="web", actor="subject")
    return {"requests": len(plan) + 2}


# The receiver's subscription is demo/subscribers.py's; the tests (tests/test_demo_receiver.py,
# tests/browser/) reach it through the loader, as ``demo.subscribe_receiver``.
receiver_file = subscribers.receiver_file
subscribe_receiver = subscribers.subscribe_receiver
write_receiver_file = subscribers.write_receiver_file
