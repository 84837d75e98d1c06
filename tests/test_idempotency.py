"""``Idempotency-Key`` on POST: a retry replays the first answer and never makes a second record."""

import threading

import pytest
from sqlalchemy import select

from rights.ledger import apikeys
from rights.lifecycle import idempotency
from storage import vault
from storage.db import db
from storage.models import (
    Consent,
    Disclosure,
    IdempotencyRecord,
    Member,
    OutboxMessage,
    PerkAward,
    Promotion,
    RecordHistory,
    RightsRequest,
)
from tests.helpers import API, PROVENANCE, award_body, consent_body, count, deliver, member_body


def assert_invalid_key(resp) -> None:
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert set(err) == {"code", "message", "fields"}
    assert err["code"] == "invalid"
    assert "Idempotency-Key" in err["fields"]
    assert "Idempotent-Replayed" not in resp.headers


@pytest.fixture
def world(client, api_key):
    for path, body in (
        ("/members", member_body(1)),
        ("/perk-awards", award_body(1)),
        ("/consents", consent_body(1)),
    ):
        assert client.post(API + path, json=body, headers=api_key).status_code == 201
    return api_key


INGEST = {
    "/members": (Member, lambda: member_body(2)),
    "/perk-awards": (PerkAward, lambda: award_body(2)),
    "/disclosures": (
        Disclosure,
        lambda: {"disclosure_id": "d-1", "award_id": "aw-1", "status": "required", **PROVENANCE},
    ),
    "/promotions": (
        Promotion,
        lambda: {"promotion_id": "pr-1", "member_id": "m-1", "audience": "friends", **PROVENANCE},
    ),
    "/consents": (Consent, lambda: consent_body(2)),
}


@pytest.mark.parametrize("path", list(INGEST))
def test_retry_with_same_key_and_body_replays_and_creates_one_record(app, client, world, path):
    model, make = INGEST[path]
    headers = {**world, "Idempotency-Key": f"retry-{path}"}
    before = count(app, model)
    history_before = count(app, RecordHistory)

    first = client.post(API + path, json=make(), headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    for _ in range(3):
        again = client.post(API + path, json=make(), headers=headers)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()

    assert count(app, model) == before + 1
    assert count(app, RecordHistory) == history_before + 1
    assert count(app, IdempotencyRecord) == 1


def test_key_order_in_the_body_does_not_matter(app, client, world):
    body = member_body(2)
    headers = {**world, "Idempotency-Key": "order"}
    first = client.post(API + "/members", json=body, headers=headers)
    reordered = dict(reversed(list(body.items())))
    again = client.post(API + "/members", json=reordered, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()


def test_an_update_is_replayed_as_the_update_not_reapplied(app, client, world):
    """Replaying the stored answer must not run the change again (state moved on since)."""
    headers = {**world, "Idempotency-Key": "rename-1"}
    renamed = member_body(1, name="First rename")
    first = client.post(API + "/members", json=renamed, headers=headers)
    assert first.status_code == 200  # m-1 existed: an update

    # Meanwhile the platform renames the member again without a key.
    second = client.post(API + "/members", json=member_body(1, name="Second"), headers=world)
    assert second.status_code == 200
    member_id = second.get_json()["id"]
    history_before = count(app, RecordHistory, RecordHistory.record_id == member_id)

    retry = client.post(API + "/members", json=renamed, headers=headers)
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert count(app, RecordHistory, RecordHistory.record_id == member_id) == history_before
    assert _member_name(app, member_id) == "Second"


def _member_name(app, member_id: int) -> str:
    with app.app_context():
        member = db.session.get(Member, member_id)
        return vault.decrypt(member.subject_id, "members.name_enc", member.name_enc)


def test_same_key_with_a_different_body_is_422(app, client, world):
    headers = {**world, "Idempotency-Key": "k-1"}
    assert client.post(API + "/members", json=member_body(2), headers=headers).status_code == 201
    before = count(app, Member)
    for body in (member_body(3), member_body(2, name="Changed"), {}, [member_body(2)]):
        assert_invalid_key(client.post(API + "/members", json=body, headers=headers))
    assert count(app, Member) == before
    # The original retry still replays.
    again = client.post(API + "/members", json=member_body(2), headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_key_on_another_endpoint_is_422(app, client, world):
    headers = {**world, "Idempotency-Key": "k-2"}
    assert client.post(API + "/members", json=member_body(2), headers=headers).status_code == 201
    before = count(app, Consent)
    assert_invalid_key(client.post(API + "/consents", json=consent_body(2), headers=headers))
    assert count(app, Consent) == before


def test_same_key_from_two_api_keys_is_independent(app, client, world, key_with):
    other = key_with("records:write")
    first = client.post(
        API + "/members", json=member_body(2), headers={**world, "Idempotency-Key": "shared"}
    )
    second = client.post(
        API + "/members", json=member_body(3), headers={**other, "Idempotency-Key": "shared"}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert first.get_json()["id"] != second.get_json()["id"]
    # The same body under the other key is processed (an unchanged update), not replayed.
    third = client.post(
        API + "/members", json=member_body(2), headers={**other, "Idempotency-Key": "again"}
    )
    assert third.status_code == 200
    assert "Idempotent-Replayed" not in third.headers
    assert count(app, IdempotencyRecord) == 3


def test_a_refused_attempt_does_not_use_up_the_key(app, client, world):
    headers = {**world, "Idempotency-Key": "fix-and-retry"}
    bad = client.post(API + "/members", json=member_body(2, email="nope"), headers=headers)
    assert bad.status_code == 422
    assert "Idempotent-Replayed" not in bad.headers
    good = client.post(API + "/members", json=member_body(2), headers=headers)
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers
    assert count(app, Member, Member.external_id == "m-2") == 1


@pytest.mark.parametrize(
    "key",
    ["", "k" * 201, "with\x00nul", "tab\there", "bell\x07", "del\x7f"],
    ids=["empty", "too-long", "nul", "tab", "bell", "delete"],
)
def test_malformed_keys_are_422(app, client, world, key):
    resp = client.post(
        API + "/members", json=member_body(2), headers={**world, "Idempotency-Key": key}
    )
    assert_invalid_key(resp)
    assert count(app, Member, Member.external_id == "m-2") == 0


def test_longest_allowed_key_works(client, world):
    headers = {**world, "Idempotency-Key": "k" * 200}
    assert client.post(API + "/members", json=member_body(2), headers=headers).status_code == 201
    again = client.post(API + "/members", json=member_body(2), headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_idempotency_applies_after_authentication(app, client, world, key_with):
    """A key without the scope gets 403 and its Idempotency-Key is not recorded."""
    weak = {**key_with("requests:read"), "Idempotency-Key": "k-3"}
    assert client.post(API + "/members", json=member_body(2), headers=weak).status_code == 403
    assert count(app, IdempotencyRecord) == 0


# ---------------------------------------------------------------------------------------
# POST /api/v1/requests


def test_retried_request_is_filed_once_and_mails_once(app, client, world, mailbox):
    body = {"type": "erasure", "email": "someone@example.org", "reason": "I left"}
    headers = {**world, "Idempotency-Key": "req-1"}
    first = client.post(API + "/requests", json=body, headers=headers)
    assert first.status_code == 201
    assert first.get_json()["status"] == "awaiting_verification"
    again = client.post(API + "/requests", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()

    assert count(app, RightsRequest) == 1
    with app.app_context():
        stored = db.session.get(RightsRequest, first.get_json()["id"])
        assert stored.idempotency_key == "req-1"
    assert count(app, OutboxMessage, OutboxMessage.topic == "notice.verify") == 1
    deliver(app)
    assert len(mailbox.to("someone@example.org")) == 1


def test_retried_verified_access_request_replays_the_completed_answer(app, client, world):
    headers = {**world, "Idempotency-Key": "req-2"}
    body = {"type": "access", "member_id": "m-1", "verified": True}
    first = client.post(API + "/requests", json=body, headers=headers)
    assert first.status_code == 201
    assert first.get_json()["status"] == "completed"
    again = client.post(API + "/requests", json=body, headers=headers)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(app, RightsRequest) == 1


def test_request_key_reused_with_another_body_is_422(app, client, world):
    headers = {**world, "Idempotency-Key": "req-3"}
    body = {"type": "access", "email": "a@example.org"}
    assert client.post(API + "/requests", json=body, headers=headers).status_code == 201
    other = {"type": "access", "email": "b@example.org"}
    assert_invalid_key(client.post(API + "/requests", json=other, headers=headers))
    assert count(app, RightsRequest) == 1


def test_request_keys_of_two_api_keys_are_independent(app, client, world, key_with):
    other = key_with("requests:write")
    body = {"type": "access", "email": "a@example.org"}
    one = client.post(API + "/requests", json=body, headers={**world, "Idempotency-Key": "same"})
    two = client.post(API + "/requests", json=body, headers={**other, "Idempotency-Key": "same"})
    assert (one.status_code, two.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in two.headers
    assert one.get_json()["id"] != two.get_json()["id"]
    assert count(app, RightsRequest) == 2


# ---------------------------------------------------------------------------------------
# Concurrent first attempts with one key: one record, every caller gets the same answer.


def _send_together(app, path: str, body: dict, headers: dict, n: int) -> list:
    start = threading.Barrier(n, timeout=10)
    results: list = [None] * n

    def send(i: int) -> None:
        try:
            client = app.test_client()
            start.wait()
            resp = client.post(API + path, json=body, headers=headers)
            results[i] = (
                resp.status_code,
                resp.get_json(),
                resp.headers.get("Idempotent-Replayed"),
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, tuple) for r in results), results
    return results


def test_concurrent_retries_make_one_member_and_one_answer(app, world):
    headers = {**world, "Idempotency-Key": "race-member"}
    results = _send_together(app, "/members", member_body(2), headers, n=4)
    assert [r[0] for r in results] == [201] * 4, results
    assert all(r[1] == results[0][1] for r in results)
    assert sorted(str(r[2]) for r in results) == ["None", "true", "true", "true"]
    assert count(app, Member, Member.external_id == "m-2") == 1


def test_concurrent_retries_file_one_request_and_send_one_email(app, world, mailbox):
    headers = {**world, "Idempotency-Key": "race-request"}
    body = {"type": "access", "email": "racer@example.org"}
    results = _send_together(app, "/requests", body, headers, n=4)
    assert [r[0] for r in results] == [201] * 4, results
    assert all(r[1] == results[0][1] for r in results)
    assert count(app, RightsRequest) == 1
    deliver(app)
    assert len(mailbox.to("racer@example.org")) == 1


def test_loser_of_a_write_race_gets_the_winners_answer(app, world, monkeypatch, mailbox):
    """Force the race: both attempts pass the idempotency look-up before either writes, so the
    loser's own insert (inside the view, before commit) hits the winner's unique key.

    Attempts with one key are serialised by ``idempotency.claim`` before the look-up, so this
    race cannot happen any more; take the claim away (and record the key's last use in its own
    transaction, as it is now) so the race is real, and check that the second line of defence
    — the unique key — still makes the loser replay the winner's answer, not a 500.
    """
    real_authenticate = apikeys.authenticate

    def authenticate(key):
        row = real_authenticate(key)
        db.session.commit()  # last use recorded on its own: no lock held from here
        return row

    barrier = threading.Barrier(2, timeout=10)
    local = threading.local()
    real_lookup = idempotency.lookup

    def lookup(*args, **kwargs):
        found = real_lookup(*args, **kwargs)
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return found

    monkeypatch.setattr(apikeys, "authenticate", authenticate)
    monkeypatch.setattr(idempotency, "claim", lambda api_key_id, key: None)
    monkeypatch.setattr(idempotency, "lookup", lookup)
    headers = {**world, "Idempotency-Key": "forced-race"}
    body = {"type": "access", "member_id": "m-1"}
    results: list = [None, None]

    def send(i: int) -> None:
        try:
            resp = app.test_client().post(API + "/requests", json=body, headers=headers)
            results[i] = (
                resp.status_code,
                resp.get_json(),
                resp.headers.get("Idempotent-Replayed"),
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, tuple) for r in results), results
    assert [r[0] for r in results] == [201, 201]
    assert results[0][1] == results[1][1]
    assert sorted(str(r[2]) for r in results) == ["None", "true"]
    assert count(app, RightsRequest) == 1
    deliver(app)
    assert len(mailbox.to("person1@example.org")) == 1


def test_keys_are_stored_per_api_key_row(app, client, world):
    client.post(API + "/members", json=member_body(2), headers={**world, "Idempotency-Key": "x"})
    with app.app_context():
        row = db.session.execute(select(IdempotencyRecord)).scalar_one()
        key = apikeys.authenticate(world["Authorization"].removeprefix("Bearer "))
        assert (row.api_key_id, row.key, row.method, row.path) == (
            key.id,
            "x",
            "POST",
            API + "/members",
        )
        assert row.status_code == 201
        # Only a hash of the body is kept: never the personal data in it.
        assert "person2" not in (row.body_hash + str(row.response))
