"""Small builders for test data, through the same services the API uses."""

from datetime import datetime

from rights.holdings import records
from storage.db import db
from tests.helpers import PROVENANCE


def member(n: int = 1, **extra):
    data = {
        "member_id": f"m-{n}",
        "email": f"person{n}@example.org",
        "name": f"Person {n}",
        "handle": f"@person{n}",
        "address": None,
        "status": "active",
        "joined_at": None,
        "closed_at": None,
        **extra,
    }
    row, _ = records.upsert_member(data, **PROVENANCE)
    return row


def award(
    n: int = 1, member_n: int = 1, status: str = "offered", at: datetime | None = None, **extra
):
    data = {
        "award_id": f"aw-{n}",
        "member_id": f"m-{member_n}",
        "perk_id": "p-phone",
        "perk_item": "Nova X1 phone",
        "brand_id": "b-nova",
        "brand_name": "Nova Mobile",
        "campaign_id": "c-launch",
        "campaign_name": "Launch",
        "status": status,
        "status_at": at,
        **extra,
    }
    row, _ = records.upsert_award(
        data, source=extra.pop("source", "award-engine"), actor="draw", at=at
    )
    return row


def consent(n: int = 1, member_n: int = 1, purpose: str = "name_and_likeness", at=None):
    row, _ = records.upsert_consent(
        {
            "consent_id": f"con-{n}",
            "member_id": f"m-{member_n}",
            "purpose": purpose,
            "status": "granted",
            "notice_version": "2026-01",
            "channel": "web",
            "granted_at": at or datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        },
        **PROVENANCE,
    )
    return row


def commit():
    db.session.commit()
