"""Per-object rules on the API's request actions (outside test, issue 12 items 1 and 5): a key
acts on and reads only the requests it filed; web-filed requests are the subject's alone; an
erasure, once verified, is withdrawn by nobody but the subject; `requests:read:all` reads any
request's metadata, never its free text or its result."""

import re

import pytest
from sqlalchemy import select

from rights.lifecycle import requests as lifecycle
from storage.db import db
from storage.models import RequestEvent, RightsRequest
from tests.helpers import API, assert_error, award_body, deliver, member_body


@pytest.fixture
def platform(client, api_key):
    """Member m-1 (person1@example.org) with an award; the all-scopes key that filed nothing
    yet."""
    assert client.post(API + "/members", json=member_body(1), headers=api_key).status_code == 201
    assert client.post(API + "/perk-awards", json=award_body(1), headers=api_key).status_code == 201
    return api_key


def _file(client, headers, **body):
    resp = client.post(API + "/requests", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _status(app, request_id: str) -> str:
    with app.app_context():
        return db.session.get(RightsRequest, request_id).status


def _web_request(app, client, mailbox, type_: str = "erasure") -> str:
    """A request filed on the public form and confirmed from the emailed link."""
    data = {"type": type_, "email": "person1@example.org"}
    if type_ == "rectification":
        data["correction"] = "I never received the phone."
    resp = client.post("/requests/new", data=data)
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    path = re.search(r"http://lethe\.test(/verify/\S+)", body).group(1)
    assert client.post(path).status_code in (302, 303)
    with app.app_context():
        return db.session.execute(
            select(RightsRequest.id).where(RightsRequest.channel == "web")
        ).scalar_one()


def test_a_key_cannot_withdraw_another_services_request(app, client, platform, key_with):
    filed = _file(
        client,
        platform,
        type="rectification",
        member_id="m-1",
        verified=True,
        correction="I never got the phone.",
        records=["perk_awards:aw-1"],
    )
    other = key_with("requests:write", "requests:read")
    resp = client.post(f"{API}/requests/{filed['id']}/withdraw", headers=other)
    assert_error(resp, 404, "not_found")
    assert _status(app, filed["id"]) == "open"
    # The key that filed it still can.
    resp = client.post(f"{API}/requests/{filed['id']}/withdraw", headers=platform)
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"


def test_no_key_withdraws_a_web_request(app, client, platform, mailbox):
    request_id = _web_request(app, client, mailbox, "rectification")
    resp = client.post(f"{API}/requests/{request_id}/withdraw", headers=platform)
    assert_error(resp, 404, "not_found")
    assert _status(app, request_id) == "open"
    with app.app_context():
        kinds = db.session.execute(
            select(RequestEvent.kind).where(RequestEvent.request_id == request_id)
        ).scalars()
        assert "withdrawn" not in set(kinds)


def test_a_verified_erasure_is_not_withdrawn_through_the_api(app, client, platform):
    filed = _file(client, platform, type="erasure", member_id="m-1", verified=True)
    assert _status(app, filed["id"]) == "in_progress"  # queued, not yet picked up
    resp = client.post(f"{API}/requests/{filed['id']}/withdraw", headers=platform)
    err = assert_error(resp, 409, "invalid_transition")
    assert "subject" in err["message"] or "person" in err["message"]
    assert _status(app, filed["id"]) == "in_progress"


def test_an_unverified_erasure_the_key_filed_can_be_withdrawn(app, client, platform):
    filed = _file(client, platform, type="erasure", member_id="m-1")
    assert filed["status"] == "awaiting_verification"
    resp = client.post(f"{API}/requests/{filed['id']}/withdraw", headers=platform)
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"


def test_the_subject_still_withdraws_a_verified_erasure_before_it_starts(
    app, client, platform, mailbox
):
    request_id = _web_request(app, client, mailbox, "erasure")
    assert _status(app, request_id) == "in_progress"
    with app.app_context():
        reference = db.session.get(RightsRequest, request_id).reference
    resp = client.post(f"/requests/{reference}/withdraw")
    assert resp.status_code in (302, 303)
    assert _status(app, request_id) == "withdrawn"


def test_a_read_key_reads_only_what_it_filed(app, client, platform, key_with):
    filed = _file(client, platform, type="access", member_id="m-1", verified=True)
    reader = key_with("requests:read")
    assert_error(client.get(f"{API}/requests/{filed['id']}", headers=reader), 404, "not_found")
    listing = client.get(f"{API}/requests", headers=reader).get_json()
    assert listing["items"] == [] and listing["total"] == 0
    own = client.get(f"{API}/requests", headers=platform).get_json()
    assert [item["id"] for item in own["items"]] == [filed["id"]]


def test_read_all_gives_metadata_without_free_text(app, client, platform, key_with):
    filed = _file(
        client,
        platform,
        type="restriction",
        member_id="m-1",
        verified=True,
        grounds="accuracy_contested",
    )
    with app.app_context():
        req = db.session.get(RightsRequest, filed["id"])
        lifecycle.extend(
            req, months=1, reason="Secret reason about the member's family", actor="test"
        )
        db.session.commit()
    auditor = key_with("requests:read", "requests:read:all")
    seen = client.get(f"{API}/requests/{filed['id']}", headers=auditor).get_json()
    assert seen["id"] == filed["id"] and seen["type"] == "restriction"
    assert seen["extended"]["months"] == 1
    assert "reason" not in seen["extended"]
    assert "Secret" not in str(seen)
    listed = client.get(f"{API}/requests", headers=auditor).get_json()
    assert [item["id"] for item in listed["items"]] == [filed["id"]]
    assert "Secret" not in str(listed)
    # The filer reads its own request whole.
    own = client.get(f"{API}/requests/{filed['id']}", headers=platform).get_json()
    assert own["extended"]["reason"].startswith("Secret reason")


def test_read_all_is_a_scope_a_key_can_be_given(app, runner):
    result = runner.invoke(
        args=["apikeys", "create", "auditor", "--scopes", "requests:read requests:read:all"]
    )
    assert result.exit_code == 0, result.output


def test_a_list_never_shows_or_spends_a_record_key(app, client, platform):
    """The one-time record key is shown by GET /requests/<id> alone: a list read first neither
    shows it nor uses it up (it committed once per listed item, as a side effect)."""
    filed = _file(client, platform, type="erasure", member_id="m-1", verified=True)
    deliver(app)
    listed = client.get(f"{API}/requests", headers=platform).get_json()
    (item,) = listed["items"]
    assert item["status"] == "completed"
    assert item["result"]["receipt"].count(".") == 2
    assert "record_key" not in item["result"]
    first = client.get(f"{API}/requests/{filed['id']}", headers=platform).get_json()
    assert first["result"]["record_key"]
    again = client.get(f"{API}/requests/{filed['id']}", headers=platform).get_json()
    assert "record_key" not in again["result"]
