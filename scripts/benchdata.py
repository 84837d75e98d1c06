"""Shared by the benchmarks: a throwaway app and one member with many records."""

import base64
import os
import tempfile
from pathlib import Path

from app import create_app
from rights.holdings import records
from storage.clock import utcnow
from storage.db import db
from storage.models import InfluenceTopic


def make_app():
    """SQLite files in a temporary folder, or LETHE_BENCH_DATABASE_URL /
    LETHE_BENCH_KEYSTORE_URL for PostgreSQL."""
    tmp = Path(tempfile.mkdtemp(prefix="lethe-bench-"))
    key = lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()  # noqa: E731
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": os.environ.get(
                "LETHE_BENCH_DATABASE_URL", f"sqlite:///{tmp / 'bench.db'}"
            ),
            "KEYSTORE_URL": os.environ.get(
                "LETHE_BENCH_KEYSTORE_URL", f"sqlite:///{tmp / 'keys.db'}"
            ),
            "SECRET_KEY": "bench",
            "KEY_ENCRYPTION_KEY": key(),
            "BLIND_INDEX_KEY": key(),
            "MAIL_BACKEND": "file",
            "MAIL_DIR": str(tmp / "mail"),
        },
        instance_path=str(tmp / "instance"),
    )


def likeness_consent(member_id: str) -> None:
    """The member's consent to the use of their name and likeness, in force: ingestion refuses
    a promotion that uses them without it (rights/holdings/records.py), so every seed that
    writes such promotions gives it first, as the platform would."""
    records.upsert_consent(
        {
            "consent_id": f"{member_id}-con-likeness",
            "member_id": member_id,
            "purpose": records.LIKENESS,
            "status": "granted",
            "notice_version": "v1",
            "channel": "web",
            "granted_at": utcnow(),
        },
        source="bench",
        actor="seed",
    )


def seed(n: int, member_id: str = "m-bench", email: str = "bench@example.org") -> str:
    """One member with ``n`` records across the data map (40% awards, 30% disclosures, 10%
    promotions, 10% consents, 10% topics), each with provenance and history, as ingestion
    writes them. Flushes; returns the subject id."""
    member, _ = records.upsert_member(
        {
            "member_id": member_id,
            "email": email,
            "name": "Bench Mark",
            "handle": "@bench",
            "address": "1 Bench Road",
        },
        source="bench",
        actor="seed",
    )
    sid = member.subject_id
    awards = int(n * 0.4)
    for i in range(awards):
        records.upsert_award(
            {
                "award_id": f"{member_id}-aw-{i}",
                "member_id": member_id,
                "perk_id": f"p-{i % 25}",
                "perk_item": f"Perk {i % 25}",
                "brand_id": f"b-{i % 5}",
                "campaign_id": f"c-{i % 10}",
                "status": "received",
            },
            source="bench",
            actor="seed",
        )
    for i in range(int(n * 0.3)):
        records.upsert_disclosure(
            {
                "disclosure_id": f"{member_id}-dl-{i}",
                "award_id": f"{member_id}-aw-{i % awards}",
                "status": "disclosed",
            },
            source="bench",
            actor="seed",
        )
    likeness_consent(member_id)
    for i in range(int(n * 0.1)):
        records.upsert_promotion(
            {
                "promotion_id": f"{member_id}-pr-{i}",
                "member_id": member_id,
                "audience": "friends",
                "message": f"Bench Mark won perk {i}!",
                "uses_likeness": True,
            },
            source="bench",
            actor="seed",
        )
    for i in range(int(n * 0.1)):
        records.upsert_consent(
            {
                "consent_id": f"{member_id}-con-{i}",
                "member_id": member_id,
                "purpose": f"purpose-{i}",
                "status": "granted",
                "notice_version": "v1",
                "channel": "web",
                "granted_at": utcnow(),
            },
            source="bench",
            actor="seed",
        )
    done = awards + int(n * 0.3) + 2 * int(n * 0.1)
    for i in range(n - done):
        records.apply_changes(
            InfluenceTopic(subject_id=sid),
            {"topic": f"t{i}", "weight": 0.5},
            subject_id=sid,
            source="bench",
            actor="seed",
        )
        if i % 1000 == 0:
            db.session.flush()
    db.session.flush()
    return sid


def seed_promotions(n: int, member_id: str, email: str) -> str:
    """One member with ``n`` promotions (all erased, none retained), under a name-and-likeness
    consent (kept: consents are retained). Flushes."""
    member, _ = records.upsert_member(
        {"member_id": member_id, "email": email, "name": "Bench Mark"}, source="bench", actor="seed"
    )
    likeness_consent(member_id)
    for i in range(n):
        records.upsert_promotion(
            {
                "promotion_id": f"{member_id}-pr-{i}",
                "member_id": member_id,
                "audience": "friends",
                "message": f"Bench Mark won perk {i}!",
                "uses_likeness": True,
            },
            source="bench",
            actor="seed",
        )
    db.session.flush()
    return member.subject_id
