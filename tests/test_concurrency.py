"""Races: two writers at once must never fork the audit chain, duplicate a subject, or move
a record to another subject's key."""

import threading

import pytest
from sqlalchemy import func, select

from rights.errors import Conflict
from rights.holdings import records, subjects
from rights.ledger import audit
from rights.lifecycle import requests
from storage.db import db
from storage.models import AuditEvent, Subject
from tests import factories
from tests.conftest import PG_URL


def test_subject_created_by_a_concurrent_request_is_reused(app, monkeypatch):
    with app.app_context():
        existing = subjects.get_or_create("race@example.org")
        db.session.commit()
        existing_id = existing.id
    with app.app_context():
        real = subjects.by_email
        calls = []

        def stale_first(email):
            calls.append(email)
            return None if len(calls) == 1 else real(email)  # as if the other insert won

        monkeypatch.setattr(subjects, "by_email", stale_first)
        got = subjects.get_or_create("race@example.org")
        db.session.commit()
        assert got.id == existing_id
        assert db.session.execute(select(func.count(Subject.id))).scalar_one() == 1


@pytest.mark.parametrize(
    ("upsert", "body", "field"),
    [
        (
            records.upsert_promotion,
            {"promotion_id": "pr-1", "audience": "friends", "message": "Person 1 won!"},
            "member_id",
        ),
        (
            records.upsert_consent,
            {
                "consent_id": "con-1",
                "purpose": "x",
                "status": "granted",
                "notice_version": "1",
                "channel": "web",
                "granted_at": None,
            },
            "member_id",
        ),
    ],
)
def test_records_never_move_to_another_member(app, upsert, body, field):
    with app.app_context():
        factories.member(1)
        factories.member(2)
        upsert({**body, "member_id": "m-1"}, source="s", actor="a")
        db.session.commit()
        with pytest.raises(Conflict) as err:
            upsert({**body, "member_id": "m-2"}, source="s", actor="a")
        assert field in err.value.fields
        db.session.rollback()


def test_disclosure_never_moves_to_another_members_award(app, client, api_key):
    with app.app_context():
        factories.member(1)
        factories.member(2)
        factories.award(1, member_n=1)
        factories.award(2, member_n=2)
        factories.commit()
    body = {"disclosure_id": "d-1", "status": "disclosed", "source": "s", "actor": "a"}
    assert (
        client.post(
            "/api/v1/disclosures", json={**body, "award_id": "aw-1"}, headers=api_key
        ).status_code
        == 201
    )
    moved = client.post("/api/v1/disclosures", json={**body, "award_id": "aw-2"}, headers=api_key)
    assert moved.status_code == 409
    assert "award_id" in moved.get_json()["error"]["fields"]
    # Person 1's report still reads whole.
    filed = client.post(
        "/api/v1/requests",
        json={"type": "access", "member_id": "m-1", "verified": True},
        headers=api_key,
    ).get_json()
    report = client.get(filed["result"]["report_url"], headers=api_key)
    assert report.status_code == 200 and report.get_json()["categories"]


@pytest.mark.skipif(not PG_URL, reason="concurrent writers need PostgreSQL (SQLite has one)")
def test_concurrent_requests_keep_one_audit_chain(app):
    errors = []

    def file_some(n):
        try:
            for i in range(5):
                with app.app_context():
                    requests.file(
                        type="access", email=f"c{n}-{i}@example.org", channel="web", actor="subject"
                    )
                    db.session.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=file_some, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with app.app_context():
        assert audit.verify_chain() == []
        assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() >= 80


def test_a_request_moved_by_someone_else_meanwhile_is_not_moved_again(app):
    """Transitions are compare-and-set: an officer's page loaded before the subject withdrew
    cannot then grant the request (a stale read never overrides another actor's move)."""
    from sqlalchemy import update

    from rights.errors import InvalidTransition
    from storage.models import RequestEvent, RightsRequest

    with app.app_context():
        factories.member(1)
        req = requests.file(
            type="restriction",
            member_id="m-1",
            details={"grounds": "accuracy_contested"},
            channel="api",
            verified=True,
            actor="t",
        )
        db.session.commit()
        request_id = req.id
    with app.app_context():
        stale = requests.get(request_id)
        assert stale.status == "open"
        # Another actor (another process) withdraws it now.
        with db.engine.begin() as conn:
            conn.execute(
                update(RightsRequest)
                .where(RightsRequest.id == request_id)
                .values(status="withdrawn")
            )
        with pytest.raises(InvalidTransition):
            requests.approve(stale, actor="officer:1")
        db.session.rollback()
        assert requests.get(request_id).status == "withdrawn"
        kinds = db.session.execute(
            select(RequestEvent.kind).where(RequestEvent.request_id == request_id)
        ).scalars()
        assert "completed" not in set(kinds)
