"""Shared test helpers: API bodies, the API error-shape check, counting rows, running the
outbox. Fixtures live in conftest.py; builders through the services in factories.py."""

import time
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import func, select

from rights import jobs
from rights.ledger import officers
from storage.db import db

API = "/api/v1"
PROVENANCE = {"source": "test-suite", "actor": "pytest"}
T1 = "2024-03-01T10:00:00+00:00"
T2 = "2024-03-05T10:00:00+00:00"


# Officers' passwords are hashed with argon2id at production cost: about 0.3 s of CPU a hash
# or a check, two per sign-in, the largest single cost of the suite (a quarter of its time).
# A test checks what a hash does, not what it costs, so the suite hashes at argon2's lowest
# cost (conftest.py in the test processes, processes.py in the servers they start);
# test_officer_password_cost.py checks the production parameters themselves.
TEST_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PRODUCTION_PASSWORD_HASHER, PRODUCTION_DUMMY_HASH = officers._hasher, officers._DUMMY_HASH


def cheap_password_hashing(set_attribute=setattr) -> None:
    """Make the officers' module hash and check passwords with TEST_PASSWORD_HASHER, its
    stand-in hash for unknown emails included (so both paths still cost the same);
    ``set_attribute`` is ``monkeypatch.setattr`` where the change must be undone."""
    set_attribute(officers, "_hasher", TEST_PASSWORD_HASHER)
    set_attribute(officers, "_DUMMY_HASH", TEST_PASSWORD_HASHER.hash("not-a-real-password"))


def deliver(app) -> dict:
    """Run the outbox worker once (what `flask worker --once` does)."""
    with app.app_context():
        return jobs.run_due(limit=500)


def member_body(n: int = 1, **extra) -> dict:
    return {
        "member_id": f"m-{n}",
        "email": f"person{n}@example.org",
        "name": f"Person {n}",
        "handle": f"@person{n}",
        **PROVENANCE,
        **extra,
    }


def award_body(n: int = 1, member: int = 1, **extra) -> dict:
    return {
        "award_id": f"aw-{n}",
        "member_id": f"m-{member}",
        "perk_id": "p-phone",
        "perk_item": "Nova X1 phone",
        "brand_id": "b-nova",
        "brand_name": "Nova Mobile",
        "campaign_id": "c-launch",
        "campaign_name": "Launch",
        "status": "offered",
        **PROVENANCE,
        **extra,
    }


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def consent_body(n: int = 1, member: int = 1, **extra) -> dict:
    return {
        "consent_id": f"c-{n}",
        "member_id": f"m-{member}",
        "purpose": "name_and_likeness",
        "status": "granted",
        "notice_version": "2024-01",
        "channel": "web",
        "granted_at": T1,
        **PROVENANCE,
        **extra,
    }


def disclosure_body(n: int = 1, award: int = 1, **extra) -> dict:
    return {
        "disclosure_id": f"d-{n}",
        "award_id": f"aw-{award}",
        "status": "required",
        "listed_at": T1,
        **PROVENANCE,
        **extra,
    }


def promotion_body(n: int = 1, member: int = 1, **extra) -> dict:
    return {
        "promotion_id": f"pr-{n}",
        "member_id": f"m-{member}",
        "award_id": "aw-1",
        "consent_id": "c-1",
        "audience": "friends",
        "shown_at": T1,
        "message": "Person 1 won a Nova X1 phone!",
        "uses_likeness": True,
        **PROVENANCE,
        **extra,
    }


def assert_error(resp, status: int, code: str | None = None, fields=()) -> dict:
    """The one API error shape, exactly: {"error": {"code", "message", "fields"}}."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert list(body) == ["error"]
    err = body["error"]
    assert set(err) == {"code", "message", "fields"}
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["fields"], dict)
    if code is not None:
        assert err["code"] == code
    for name in fields:
        assert name in err["fields"], err
        messages = err["fields"][name]
        assert isinstance(messages, list) and messages
        assert all(isinstance(m, str) and m for m in messages)
    return err


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def aware(text: str) -> datetime:
    """An API timestamp: ISO 8601, timezone-aware, UTC."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    return value
