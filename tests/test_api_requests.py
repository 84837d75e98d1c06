"""Rights requests through the API: POST /api/v1/requests, GET one, GET the list, downloads."""

import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from rights.lifecycle import requests as lifecycle
from storage.clock import add_months
from storage.db import db
from storage.models import OutboxMessage, RequestType, RightsRequest
from tests.helpers import API, assert_error, award_body, aware, count, deliver, member_body
from web.api.schemas import TYPE_FIELDS

SHAPE = {"id", "reference", "type", "status", "received_at", "due_at"}
REFERENCE = re.compile(r"^LR-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
# freezegun must leave the SMTP server's event loop on real time.
FREEZE = {"ignore": ["asyncio", "aiosmtpd"]}

# Sample values for every type-specific field; the test below checks they cover TYPE_FIELDS.
SAMPLES = {
    "records": ["perk_awards:aw-1", "disclosures:d-1"],
    "correction": "I never received the Nova X1 phone: the award was revoked.",
    "statement": "Please also tell the brand.",
    "reason": "I closed my account.",
    "grounds": "accuracy_contested",
    "purpose": "likeness",
    "grounds_text": "Do not show my face to my friends in ads.",
    "consent_purpose": "name_and_likeness",
}
ALL_FIELDS = sorted(SAMPLES)


def all_fields(type_: str) -> dict:
    return {name: SAMPLES[name] for name in TYPE_FIELDS[type_]}


def required_fields(type_: str) -> dict:
    return {name: SAMPLES[name] for name, required in TYPE_FIELDS[type_].items() if required}


@pytest.fixture
def member(client, api_key):
    """Member m-1 (person1@example.org) with an award, and the all-scopes key."""
    assert client.post(API + "/members", json=member_body(1), headers=api_key).status_code == 201
    assert client.post(API + "/perk-awards", json=award_body(1), headers=api_key).status_code == 201
    return api_key


def file(client, headers, **body):
    return client.post(API + "/requests", json=body, headers=headers)


# ---------------------------------------------------------------------------------------
# Shape and types


def test_samples_cover_every_type_and_field():
    assert set(TYPE_FIELDS) == {t.value for t in RequestType}
    assert {f for fields in TYPE_FIELDS.values() for f in fields} == set(SAMPLES)


def test_post_answers_201_with_the_contract_shape(app, client, api_key):
    with freeze_time("2024-01-31 09:30:00", **FREEZE):
        resp = file(client, api_key, type="access", email="someone@example.org")
    assert resp.status_code == 201
    body = resp.get_json()
    assert SHAPE <= set(body)
    assert body["type"] == "access"
    assert body["status"] == "awaiting_verification"
    assert body["channel"] == "api"
    assert REFERENCE.match(body["reference"]), body["reference"]
    # One calendar month, clamped to month end: 31 Jan 2024 -> 29 Feb 2024.
    assert aware(body["received_at"]) == datetime(2024, 1, 31, 9, 30, tzinfo=UTC)
    assert aware(body["due_at"]) == datetime(2024, 2, 29, 9, 30, tzinfo=UTC)
    assert "result" not in body
    with app.app_context():
        stored = db.session.get(RightsRequest, body["id"])
        assert stored.reference == body["reference"]
        assert stored.channel == "api"


def test_due_at_is_one_calendar_month_after_received_at(client, api_key):
    body = file(client, api_key, type="erasure", email="x@example.org").get_json()
    assert aware(body["due_at"]) == add_months(aware(body["received_at"]), 1)


@pytest.mark.parametrize("type_", list(TYPE_FIELDS))
def test_every_type_with_all_its_fields(app, client, member, type_):
    details = all_fields(type_)
    resp = file(client, member, type=type_, member_id="m-1", **details)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["type"] == type_
    assert body["status"] == "awaiting_verification"
    with app.app_context():
        assert lifecycle.details(db.session.get(RightsRequest, body["id"])) == details


@pytest.mark.parametrize("type_", list(TYPE_FIELDS))
def test_every_type_with_only_its_required_fields(app, client, api_key, type_):
    resp = file(client, api_key, type=type_, email="x@example.org", **required_fields(type_))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["type"] == type_


@pytest.mark.parametrize(
    ("type_", "field"),
    [(t, f) for t, fields in TYPE_FIELDS.items() for f, required in fields.items() if required],
)
def test_missing_required_type_field_is_422(app, client, api_key, type_, field):
    body = all_fields(type_)
    del body[field]
    resp = file(client, api_key, type=type_, email="x@example.org", **body)
    err = assert_error(resp, 422, "invalid", fields=[field])
    assert type_ in " ".join(err["fields"][field])
    assert count(app, RightsRequest) == 0


@pytest.mark.parametrize(
    ("type_", "field"),
    [(t, f) for t in TYPE_FIELDS for f in ALL_FIELDS if f not in TYPE_FIELDS[t]],
)
def test_field_of_another_type_is_422(app, client, api_key, type_, field):
    body = {**required_fields(type_), field: SAMPLES[field]}
    resp = file(client, api_key, type=type_, email="x@example.org", **body)
    assert_error(resp, 422, "invalid", fields=[field])
    assert count(app, RightsRequest) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "restriction", "grounds": "because"}, "grounds"),
        ({"type": "objection", "purpose": "spam"}, "purpose"),
        ({"type": "rectification", "correction": ""}, "correction"),
        ({"type": "rectification", "correction": "c" * 5001}, "correction"),
        ({"type": "rectification", "correction": "x", "statement": "s" * 5001}, "statement"),
        ({"type": "rectification", "correction": "x", "records": "aw-1"}, "records"),
        ({"type": "rectification", "correction": "x", "records": [1]}, "records.0"),
        ({"type": "rectification", "correction": "x", "records": ["r"] * 501}, "records"),
        ({"type": "rectification", "correction": "x", "records": ["r" * 121]}, "records.0"),
        ({"type": "erasure", "reason": "r" * 2001}, "reason"),
        ({"type": "erasure", "reason": None}, "reason"),
        ({"type": "consent_withdrawal", "consent_purpose": ""}, "consent_purpose"),
        ({"type": "consent_withdrawal", "consent_purpose": "p" * 61}, "consent_purpose"),
        ({"type": "objection", "purpose": "likeness", "grounds_text": 5}, "grounds_text"),
        ({"type": "Access"}, "type"),
        ({"type": "deletion"}, "type"),
        ({"type": None}, "type"),
        ({}, "type"),
        ({"type": "access", "verified": "perhaps"}, "verified"),
        ({"type": "access", "verified": None}, "verified"),
        ({"type": "access", "name": "Person"}, "name"),
        ({"type": "erasure", "reason": "NUL\x00inside"}, "reason"),
        ({"type": "erasure", "reason": "lone \udc00 surrogate"}, "reason"),
    ],
    ids=lambda v: repr(v)[:60] if not isinstance(v, str) else v,
)
def test_bad_request_bodies_are_422(app, client, api_key, body, field):
    resp = file(client, api_key, **{"email": "x@example.org", **body})
    assert_error(resp, 422, "invalid", fields=[field])
    assert count(app, RightsRequest) == 0


@pytest.mark.parametrize(
    "who",
    [
        {"email": "person1@example.org", "member_id": "m-1"},
        {},
        {"email": None, "member_id": None},
        {"email": ""},
        {"member_id": ""},
    ],
    ids=["both", "neither", "both-null", "empty-email", "empty-member_id"],
)
def test_email_xor_member_id(app, client, member, who):
    resp = file(client, member, type="access", **who)
    err = assert_error(resp, 422, "invalid")
    assert {"email", "member_id"} & set(err["fields"])
    assert count(app, RightsRequest) == 0


@pytest.mark.parametrize(
    ("who", "field"),
    [
        ({"member_id": "m-404"}, "member_id"),
        ({"member_id": "m" * 81}, "member_id"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a" * 250 + "@example.org"}, "email"),
    ],
)
def test_bad_identity_is_422(app, client, member, who, field):
    assert_error(file(client, member, type="access", **who), 422, "invalid", fields=[field])
    assert count(app, RightsRequest) == 0


@pytest.mark.parametrize(
    "data", ["[]", '"access"', "null", "{", ""], ids=["list", "string", "null", "broken", "empty"]
)
def test_non_object_body_is_422(client, api_key, data):
    resp = client.post(
        API + "/requests", data=data, content_type="application/json", headers=api_key
    )
    assert_error(resp, 422, "invalid", fields=["_schema"])


# ---------------------------------------------------------------------------------------
# Keys, scopes and `verified`


def test_verified_without_the_scope_is_a_clear_json_error(app, client, member, key_with):
    headers = key_with("requests:write", "requests:read")
    resp = file(client, headers, type="access", member_id="m-1", verified=True)
    err = assert_error(resp, 403, "forbidden", fields=["verified"])
    assert "requests:verified" in err["message"]
    assert count(app, RightsRequest) == 0
    assert count(app, OutboxMessage) == 0
    # The same key may file it unverified.
    resp = file(client, headers, type="access", member_id="m-1")
    assert resp.status_code == 201
    assert resp.get_json()["status"] == "awaiting_verification"


def test_verified_with_the_scope_skips_verification(client, member, key_with, mailbox):
    headers = key_with("requests:write", "requests:verified", "requests:read")
    resp = file(
        client,
        headers,
        type="restriction",
        member_id="m-1",
        verified=True,
        grounds="accuracy_contested",
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "open"  # verified, now waiting for an officer's decision
    assert "result" not in body
    got = client.get(f"{API}/requests/{body['id']}", headers=headers).get_json()
    assert got["status"] == "open" and "result" not in got


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("post", "/requests", ("requests:read", "records:write")),
        ("get", "/requests", ("requests:write", "requests:verified")),
        ("get", "/requests/{id}", ("requests:write",)),
        ("get", "/requests/{id}/report", ("records:write", "requests:write")),
    ],
)
def test_wrong_scope_is_403_and_no_key_is_401(app, client, member, key_with, method, path, scopes):
    filed = file(client, member, type="access", member_id="m-1", verified=True).get_json()
    url = API + path.format(id=filed["id"])
    before = count(app, RightsRequest)
    kwargs = {"json": {"type": "access", "member_id": "m-1"}} if method == "post" else {}
    resp = getattr(client, method)(url, headers=key_with(*scopes), **kwargs)
    assert_error(resp, 403, "forbidden")
    resp = getattr(client, method)(url, **kwargs)
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(app, RightsRequest) == before


# ---------------------------------------------------------------------------------------
# Self-service completion and downloads


def test_verified_access_by_member_id_completes_and_links_the_report(app, client, member):
    resp = file(client, member, type="access", member_id="m-1", verified=True)
    assert resp.status_code == 201
    filed = resp.get_json()
    assert filed["status"] == "completed"

    got = client.get(f"{API}/requests/{filed['id']}", headers=member)
    assert got.status_code == 200
    body = got.get_json()
    assert SHAPE <= set(body)
    assert body["status"] == "completed"
    result = body["result"]
    assert result["report_url"] == f"{API}/requests/{filed['id']}/report"
    completed = aware(result["completed_at"])
    assert aware(body["completed_at"]) == completed
    assert aware(result["expires_at"]) == completed + timedelta(
        days=app.config["DOWNLOAD_TTL_DAYS"]
    )

    report = client.get(result["report_url"], headers=member)
    assert report.status_code == 200
    assert report.mimetype == "application/json"
    assert report.headers["Cache-Control"] == "no-store"
    data = report.get_json()
    assert data["report"] == "access"
    assert data["request"]["reference"] == filed["reference"]
    cats = {c["key"]: c for c in data["categories"]}
    (profile,) = cats["profile"]["records"]
    assert profile["email"] == "person1@example.org"
    assert profile["name"] == "Person 1"
    (award,) = cats["perk_awards"]["records"]
    assert award["award_id"] == "aw-1"
    assert award["provenance"]["source"] == "test-suite"
    # Art. 15(1): purposes, recipients, retention and the right to complain come with it.
    assert data["purposes"] and data["recipients"] and data["retention"]
    assert "supervisory authority" in data["complaint"]


def test_verified_portability_gives_json_and_zip_exports(app, client, member):
    filed = file(client, member, type="portability", member_id="m-1", verified=True).get_json()
    assert filed["status"] == "completed"
    result = client.get(f"{API}/requests/{filed['id']}", headers=member).get_json()["result"]
    assert result["export_json_url"] == f"{API}/requests/{filed['id']}/export"
    assert result["export_zip_url"] == f"{API}/requests/{filed['id']}/export.zip"
    assert "report_url" not in result

    exported = client.get(result["export_json_url"], headers=member)
    assert exported.status_code == 200
    assert exported.headers["Cache-Control"] == "no-store"
    data = exported.get_json()
    assert data["export"] == "portability"
    assert data["request"] == filed["reference"]
    (profile,) = data["categories"]["profile"]
    assert profile["email"] == "person1@example.org"
    # Portability is what the subject provided: not the platform's inferences.
    assert "influence_scores" not in data["categories"]

    resp = client.get(result["export_zip_url"], headers=member)
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    assert f"{filed['reference']}.zip" in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert "README.txt" in names
        assert {"profile.csv", "consents.csv"} <= names
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("profile.csv"), encoding="utf-8")))
    assert len(rows) == 1
    assert rows[0]["email"] == "person1@example.org"
    assert rows[0]["name"] == "Person 1"
    assert "member_id" not in rows[0]  # assigned by the platform, not provided by the subject


@pytest.mark.parametrize(
    ("type_", "suffix"),
    [
        ("erasure", "/report"),  # not an access request
        ("portability", "/report"),
        ("access", "/export"),
        ("access", "/export.zip"),
    ],
)
def test_downloads_of_the_wrong_kind_are_404(client, member, type_, suffix):
    extra = required_fields(type_)
    filed = file(client, member, type=type_, member_id="m-1", verified=True, **extra).get_json()
    resp = client.get(f"{API}/requests/{filed['id']}{suffix}", headers=member)
    assert_error(resp, 404, "not_found")


def test_report_of_an_unverified_request_is_404(client, member):
    filed = file(client, member, type="access", member_id="m-1").get_json()
    resp = client.get(f"{API}/requests/{filed['id']}/report", headers=member)
    assert_error(resp, 404, "not_found")


def test_downloads_expire(app, client, member):
    filed = file(client, member, type="access", member_id="m-1", verified=True).get_json()
    result = client.get(f"{API}/requests/{filed['id']}", headers=member).get_json()["result"]
    expires = aware(result["expires_at"])
    with freeze_time(expires - timedelta(minutes=1), **FREEZE):
        assert client.get(result["report_url"], headers=member).status_code == 200
    with freeze_time(expires + timedelta(seconds=1), **FREEZE):
        assert_error(client.get(result["report_url"], headers=member), 404, "not_found")


# ---------------------------------------------------------------------------------------
# Unverified requests: a verification email, sent by the worker after commit


def test_unverified_request_by_email_waits_and_mails_a_link(app, client, member, mailbox):
    resp = file(client, member, type="access", email="person1@example.org")
    assert resp.status_code == 201
    filed = resp.get_json()
    assert filed["status"] == "awaiting_verification"
    got = client.get(f"{API}/requests/{filed['id']}", headers=member).get_json()
    assert got["status"] == "awaiting_verification"
    assert "result" not in got

    assert mailbox.messages == []  # queued in the outbox, never sent inline
    deliver(app)
    (msg,) = mailbox.to("person1@example.org")
    assert filed["reference"] in msg["Subject"]
    text = mailbox.body(msg)
    link = re.search(r"http://lethe\.test(/verify/\S+)", text)
    assert link, text
    assert deliver(app)["sent"] == 0  # nothing sent twice

    # Confirming the link (a POST) completes the access request.
    path = link.group(1)
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 303
    done = client.get(f"{API}/requests/{filed['id']}", headers=member).get_json()
    assert done["status"] == "completed"
    assert client.get(done["result"]["report_url"], headers=member).status_code == 200


def test_unknown_address_gets_the_same_answer_as_a_member(app, client, member, mailbox):
    known = file(client, member, type="erasure", email="person1@example.org").get_json()
    unknown = file(client, member, type="erasure", email="stranger@example.org").get_json()
    assert set(known) == set(unknown)
    assert known["status"] == unknown["status"] == "awaiting_verification"
    deliver(app)
    assert len(mailbox.to("person1@example.org")) == 1
    assert len(mailbox.to("stranger@example.org")) == 1


# ---------------------------------------------------------------------------------------
# GET one, GET the list


@pytest.mark.parametrize(
    "request_id",
    ["00000000-0000-0000-0000-000000000000", "nope", "x" * 300, "%00", "LR-0000-0000"],
)
def test_unknown_request_is_404_json(client, api_key, request_id):
    for suffix in ("", "/report", "/export", "/export.zip"):
        resp = client.get(f"{API}/requests/{request_id}{suffix}", headers=api_key)
        assert_error(resp, 404, "not_found")


def test_get_by_reference_is_not_get_by_id(client, member):
    filed = file(client, member, type="access", member_id="m-1").get_json()
    assert_error(client.get(f"{API}/requests/{filed['reference']}", headers=member), 404)
    assert client.get(f"{API}/requests/{filed['id']}", headers=member).status_code == 200


@pytest.fixture
def filed(app, client, member):
    """Five requests at known times, through every channel.

    name -> (id, type, status, channel, due_at)
    """
    made = {}

    def api(name, when, **body):
        with freeze_time(when, **FREEZE):
            resp = file(client, member, **body)
        assert resp.status_code == 201, resp.get_json()
        made[name] = resp.get_json()["id"]

    api("jan_access", "2024-01-10 12:00:00", type="access", email="a@example.org")
    with freeze_time("2024-02-10 12:00:00", **FREEZE):
        resp = client.post("/requests/new", data={"type": "access", "email": "web@example.org"})
        assert resp.status_code == 303
    api(
        "mar_restriction",
        "2024-03-10 12:00:00",
        type="restriction",
        member_id="m-1",
        verified=True,
        grounds="accuracy_contested",
    )
    api("may_access", "2024-05-10 12:00:00", type="access", member_id="m-1", verified=True)
    with freeze_time("2024-06-10 12:00:00", **FREEZE), app.app_context():
        req = lifecycle.file(
            type="objection",
            email="officer-filed@example.org",
            details={"purpose": "profiling"},
            channel="officer",
            actor="officer:test",
        )
        db.session.commit()
        made["jun_officer"] = req.id
    with app.app_context():
        web = db.session.execute(
            select(RightsRequest).where(RightsRequest.channel == "web")
        ).scalar_one()
        made["feb_web"] = web.id
    return made


def listing(client, headers, **query):
    resp = client.get(API + "/requests", headers=headers, query_string=query)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def ids(page) -> set:
    return {item["id"] for item in page["items"]}


def test_list_without_filters_is_newest_first(client, member, filed):
    page = listing(client, member)
    assert page["total"] == 5 and page["page"] == 1 and page["per_page"] == 50
    order = [
        filed[n] for n in ("jun_officer", "may_access", "mar_restriction", "feb_web", "jan_access")
    ]
    assert [item["id"] for item in page["items"]] == order
    for item in page["items"]:
        assert SHAPE <= set(item)
    completed = next(i for i in page["items"] if i["id"] == filed["may_access"])
    # Filed in May 2024: its 30-day download window closed long ago, so no dead link is given.
    assert completed["result"]["downloads"] == "expired"
    assert "report_url" not in completed["result"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "awaiting_verification"}, {"jan_access", "feb_web", "jun_officer"}),
        ({"status": "open"}, {"mar_restriction"}),
        ({"status": "completed"}, {"may_access"}),
        ({"status": "refused"}, set()),
        ({"type": "access"}, {"jan_access", "feb_web", "may_access"}),
        ({"type": "restriction"}, {"mar_restriction"}),
        ({"type": "objection"}, {"jun_officer"}),
        ({"channel": "api"}, {"jan_access", "mar_restriction", "may_access"}),
        ({"channel": "web"}, {"feb_web"}),
        ({"channel": "officer"}, {"jun_officer"}),
        ({"type": "access", "status": "completed"}, {"may_access"}),
        ({"type": "access", "channel": "web"}, {"feb_web"}),
        ({"due_before": "2024-03-01T00:00:00Z"}, {"jan_access"}),
        ({"due_before": "2024-03-10T12:00:00+00:00"}, {"jan_access"}),  # exclusive
        ({"due_before": "2024-03-10T13:00:00+01:00"}, {"jan_access"}),  # same instant
        ({"due_before": "2024-03-10T12:00:01+00:00"}, {"jan_access", "feb_web"}),
        ({"due_after": "2024-06-10T12:00:00+00:00"}, {"may_access", "jun_officer"}),  # inclusive
        ({"due_after": "2024-06-10T14:00:00+02:00"}, {"may_access", "jun_officer"}),
        ({"due_after": "2024-07-01T00:00:00Z"}, {"jun_officer"}),
        (
            {"due_after": "2024-03-01T00:00:00Z", "due_before": "2024-05-01T00:00:00Z"},
            {"feb_web", "mar_restriction"},
        ),
        ({"due_after": "2024-03-01T00:00:00Z", "type": "access"}, {"feb_web", "may_access"}),
    ],
)
def test_list_filters_filter(client, member, filed, query, expected):
    page = listing(client, member, **query)
    assert ids(page) == {filed[name] for name in expected}
    assert page["total"] == len(expected)


def test_list_pagination(client, member, filed):
    everything = [i["id"] for i in listing(client, member)["items"]]
    pages = [listing(client, member, per_page=2, page=n) for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert all(p["total"] == 5 and p["per_page"] == 2 for p in pages)
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert [i["id"] for p in pages for i in p["items"]] == everything
    beyond = listing(client, member, per_page=2, page=4)
    assert beyond["items"] == [] and beyond["total"] == 5
    filtered = listing(client, member, type="access", per_page=1, page=2)
    assert filtered["total"] == 3
    assert [i["id"] for i in filtered["items"]] == [filed["feb_web"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"type": "deletion"}, "type"),
        ({"channel": "email"}, "channel"),
        ({"due_before": "2024-03-01"}, "due_before"),
        ({"due_before": "2024-03-01T00:00:00"}, "due_before"),
        ({"due_after": "soon"}, "due_after"),
        ({"due_after": "9999-12-31T23:59:59-23:00"}, "due_after"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": str(10**20)}, "page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "201"}, "per_page"),
        ({"sort": "due_at"}, "sort"),
        ({"email": "person1@example.org"}, "email"),
    ],
)
def test_list_bad_filters_are_422(client, api_key, query, field):
    resp = client.get(API + "/requests", headers=api_key, query_string=query)
    assert_error(resp, 422, "invalid", fields=[field])


def test_list_largest_page_is_fine(client, api_key):
    page = listing(client, api_key, page=10**6, per_page=200)
    assert page["items"] == [] and page["total"] == 0


def test_platform_can_withdraw_a_request_once(client, member, mailbox, app):
    api_key = member
    # Not an erasure: once confirmed, only the person can withdraw that (test_api_object_rules).
    filed = client.post(
        "/api/v1/requests",
        json={
            "type": "restriction",
            "member_id": "m-1",
            "verified": True,
            "grounds": "accuracy_contested",
        },
        headers=api_key,
    ).get_json()
    resp = client.post(f"/api/v1/requests/{filed['id']}/withdraw", headers=api_key)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "withdrawn"
    again = client.post(f"/api/v1/requests/{filed['id']}/withdraw", headers=api_key)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "invalid_transition"
    deliver(app)
    assert "withdrawn" in mailbox.last_to("person1@example.org")["Subject"]
    missing = client.post("/api/v1/requests/nope/withdraw", headers=api_key)
    assert missing.status_code == 404


def test_only_the_filing_key_gets_the_data(app, client, member, key_with):
    filed = client.post(
        "/api/v1/requests",
        json={"type": "access", "member_id": "m-1", "verified": True},
        headers=member,
    ).get_json()
    # Only a key that reads every request's metadata sees another key's request at all.
    other = key_with("requests:read", "requests:read:all")
    seen = client.get(f"/api/v1/requests/{filed['id']}", headers=other).get_json()
    assert seen["status"] == "completed"
    assert "report_url" not in seen["result"]
    assert client.get(f"/api/v1/requests/{filed['id']}/report", headers=other).status_code == 404
    own = client.get(f"/api/v1/requests/{filed['id']}", headers=member).get_json()
    assert client.get(own["result"]["report_url"], headers=member).status_code == 200


def test_web_requests_never_leave_through_the_api(app, client, member, mailbox):
    client.post("/requests/new", data={"type": "access", "email": "person1@example.org"})
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    path = re.search(r"http://lethe\.test(/verify/\S+)", body).group(1)
    client.post(path)
    listing = client.get("/api/v1/requests?channel=web", headers=member).get_json()
    (web_request,) = listing["items"]
    assert "report_url" not in web_request["result"]
    resp = client.get(f"/api/v1/requests/{web_request['id']}/report", headers=member)
    assert resp.status_code == 404


def test_verified_only_for_a_member_id(client, member):
    resp = client.post(
        "/api/v1/requests",
        json={"type": "access", "email": "anyone@example.org", "verified": True},
        headers=member,
    )
    assert resp.status_code == 422
    assert "verified" in resp.get_json()["error"]["fields"]
