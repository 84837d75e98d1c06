"""Art. 12(3) deadline arithmetic, with a frozen clock for anything that depends on now."""

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from rights.errors import Invalid, InvalidTransition
from rights.lifecycle import requests
from rights.lifecycle.deadlines import due_date, extended_due_date
from tests.helpers import deliver


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (utc(2027, 1, 31, 9, 30), utc(2027, 2, 28, 9, 30)),
        (utc(2028, 1, 31, 9, 30), utc(2028, 2, 29, 9, 30)),  # leap year
        (utc(2026, 3, 31), utc(2026, 4, 30)),
        (utc(2026, 12, 15), utc(2027, 1, 15)),
        (utc(2026, 12, 31, 23, 59), utc(2027, 1, 31, 23, 59)),
        (utc(2026, 2, 28), utc(2026, 3, 28)),
    ],
)
def test_due_is_one_calendar_month_clamped_to_month_end(received, due):
    assert due_date(received) == due


def test_extension_adds_at_most_two_months_from_receipt():
    received = utc(2027, 1, 31)
    original = due_date(received)
    assert extended_due_date(received, original, 1, utc(2027, 2, 1)) == utc(2027, 3, 31)
    assert extended_due_date(received, original, 2, utc(2027, 2, 1)) == utc(2027, 4, 30)
    with pytest.raises(Invalid, match="at most two"):
        extended_due_date(received, original, 3, utc(2027, 2, 1))
    with pytest.raises(Invalid):
        extended_due_date(received, original, 0, utc(2027, 2, 1))


def test_extension_after_the_first_month_is_refused():
    received = utc(2027, 1, 31)
    original = due_date(received)
    assert extended_due_date(received, original, 2, original) == utc(2027, 4, 30)
    with pytest.raises(Invalid, match="within the first month"):
        extended_due_date(received, original, 1, utc(2027, 3, 1))


def _api_request(client, api_key, **extra):
    member = {"member_id": "m-9", "email": "someone@example.org", "source": "t", "actor": "t"}
    client.post("/api/v1/members", json=member, headers=api_key)
    body = {
        "type": "restriction",
        "grounds": "accuracy_contested",
        "member_id": "m-9",
        "verified": True,
        **extra,
    }
    resp = client.post("/api/v1/requests", json=body, headers=api_key)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_filed_request_gets_due_at_from_frozen_clock(client, api_key):
    with freeze_time("2027-01-31T12:00:00Z"):
        out = _api_request(client, api_key)
    assert out["received_at"].startswith("2027-01-31T12:00:00")
    assert out["due_at"].startswith("2027-02-28T12:00:00")


def test_extend_once_with_reason_notifies_subject(app, client, api_key, mailbox):
    with freeze_time("2027-01-31T12:00:00Z"):
        out = _api_request(client, api_key)
    with freeze_time("2027-02-20T12:00:00Z"), app.app_context():
        req = requests.get(out["id"])
        with pytest.raises(Invalid, match="reason"):
            requests.extend(req, months=1, reason="  ", actor="officer:1")
        requests.extend(req, months=2, reason="Records held by three brands", actor="officer:1")
        requests.db.session.commit()
        assert req.due_at == utc(2027, 4, 30, 12)
        assert req.original_due_at == utc(2027, 2, 28, 12)
        with pytest.raises(Invalid, match="already extended"):
            requests.extend(req, months=1, reason="again", actor="officer:1")
        kinds = [e.kind for e in requests.events(req)]
        assert kinds.count("extended") == 1
        deliver(app)
    body = mailbox.body(mailbox.last_to("someone@example.org"))
    assert "Records held by three brands" in body
    assert "30 April 2027" in body


def test_extension_after_first_month_refused_on_a_real_request(app, client, api_key):
    with freeze_time("2027-01-31T12:00:00Z"):
        out = _api_request(client, api_key)
    with freeze_time("2027-03-01T00:00:00Z"), app.app_context():
        req = requests.get(out["id"])
        with pytest.raises(Invalid, match="within the first month"):
            requests.extend(req, months=1, reason="late", actor="officer:1")
        assert req.extended_at is None


def test_terminal_requests_cannot_be_extended_or_refused(app, client, api_key):
    out = _api_request(client, api_key)
    with app.app_context():
        req = requests.get(out["id"])
        requests.withdraw(req)
        with pytest.raises(InvalidTransition):
            requests.extend(req, months=1, reason="x", actor="officer:1")
        with pytest.raises(InvalidTransition):
            requests.refuse(req, reason="x", actor="officer:1")
