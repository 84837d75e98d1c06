"""Ingest API: POST /api/v1/members, /perk-awards, /disclosures, /promotions, /consents.

Every record carries provenance and a history of its changes; bad input is a 422 with
field-level errors in the one error shape, never a 500; keys and scopes are enforced.
"""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from rights.ledger import apikeys
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    ApiKey,
    Consent,
    Disclosure,
    Member,
    PerkAward,
    Promotion,
    RecordHistory,
    Subject,
)
from tests.helpers import (
    API,
    T1,
    T2,
    assert_error,
    award_body,
    aware,
    consent_body,
    count,
    disclosure_body,
    member_body,
    promotion_body,
)

UPDATER = {"source": "crm", "actor": "ops:alice"}


def history(app, table: str, record_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.execute(
            select(RecordHistory)
            .where(RecordHistory.record_type == table, RecordHistory.record_id == record_id)
            .order_by(RecordHistory.id)
        ).scalars()
        return [
            {
                "action": h.action,
                "source": h.source,
                "actor": h.actor,
                "changed_at": h.changed_at,
                "changes": vault.decrypt_json(
                    h.subject_id, "record_history.changes_enc", h.changes_enc
                ),
            }
            for h in rows
        ]


def post(client, path: str, body, headers, **kwargs):
    return client.post(API + path, json=body, headers=headers, **kwargs)


@pytest.fixture
def world(client, api_key):
    """Member m-1 with award aw-1 and consent c-1; member m-2 with award aw-9."""
    for path, body in (
        ("/members", member_body(1)),
        ("/perk-awards", award_body(1)),
        ("/consents", consent_body(1)),
        ("/members", member_body(2)),
        ("/perk-awards", award_body(9, member=2)),
    ):
        resp = post(client, path, body, api_key)
        assert resp.status_code == 201, resp.get_json()
    return api_key


# kind -> (path, model, table, first body, update, expected changes of the update)
KINDS = {
    "member": (
        "/members",
        Member,
        "members",
        member_body(3, joined_at=T1),
        {"name": "P. Three"},
        {"name": ["Person 3", "P. Three"]},
    ),
    "perk_award": (
        "/perk-awards",
        PerkAward,
        "perk_awards",
        award_body(2, status_at=T1),
        {"status": "ineligible", "status_at": T2},
        {"status": ["offered", "ineligible"], "status_at": [T1, T2]},
    ),
    "disclosure": (
        "/disclosures",
        Disclosure,
        "disclosures",
        disclosure_body(1),
        {"status": "withdrawn"},
        {"status": ["required", "withdrawn"]},
    ),
    "promotion": (
        "/promotions",
        Promotion,
        "promotions",
        promotion_body(1),
        {"audience": "public"},
        {"audience": ["friends", "public"]},
    ),
    "consent": (
        "/consents",
        Consent,
        "consents",
        consent_body(2, purpose="email_marketing"),
        {"status": "withdrawn", "withdrawn_at": T2},
        {"status": ["granted", "withdrawn"], "withdrawn_at": [None, T2]},
    ),
}


ID_FIELD = {
    "member": "member_id",
    "perk_award": "award_id",
    "disclosure": "disclosure_id",
    "promotion": "promotion_id",
    "consent": "consent_id",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_create_then_update_keeps_provenance_and_history(app, client, world, kind):
    path, model, table, body, update, expected = KINDS[kind]
    before = count(app, model)

    resp = post(client, path, body, world)
    assert resp.status_code == 201
    created = resp.get_json()
    assert set(created) == {"id", "external_id", "kind", "source", "actor", "recorded_at"}
    assert created["kind"] == kind
    assert created["external_id"] == body[ID_FIELD[kind]]
    assert created["source"] == "test-suite" and created["actor"] == "pytest"
    first_recorded = aware(created["recorded_at"])
    assert count(app, model) == before + 1

    with app.app_context():
        row = db.session.get(model, created["id"])
        assert (row.source, row.actor, row.recorded_at) == ("test-suite", "pytest", first_recorded)
    (h1,) = history(app, table, created["id"])
    assert (h1["action"], h1["source"], h1["actor"]) == ("created", "test-suite", "pytest")
    assert h1["changed_at"] == first_recorded
    assert all(old is None for old, _ in h1["changes"].values())

    resp = post(client, path, {**body, **update, **UPDATER}, world)
    assert resp.status_code == 200
    updated = resp.get_json()
    assert updated["id"] == created["id"]
    assert updated["external_id"] == created["external_id"]
    assert (updated["source"], updated["actor"]) == ("crm", "ops:alice")
    assert aware(updated["recorded_at"]) >= first_recorded
    assert count(app, model) == before + 1

    with app.app_context():
        row = db.session.get(model, created["id"])
        assert (row.source, row.actor) == ("crm", "ops:alice")
        assert row.recorded_at == aware(updated["recorded_at"])
    h1_again, h2 = history(app, table, created["id"])
    assert h1_again == h1
    assert (h2["action"], h2["source"], h2["actor"]) == ("updated", "crm", "ops:alice")
    assert h2["changes"] == expected


@pytest.mark.parametrize("kind", list(KINDS))
def test_identical_resend_is_200_and_writes_no_history(app, client, world, kind):
    path, _, table, body, _, _ = KINDS[kind]
    first = post(client, path, body, world).get_json()
    resp = post(client, path, body, world)
    assert resp.status_code == 200
    assert resp.get_json() == first  # nothing changed: same provenance, same recorded_at
    assert len(history(app, table, first["id"])) == 1


def test_member_history_keeps_personal_data_encrypted_and_decryptable(app, client, world):
    resp = post(client, "/members", member_body(3, address="1 Main St"), world)
    member_id = resp.get_json()["id"]
    with app.app_context():
        raw = db.session.execute(
            select(RecordHistory.changes_enc).where(
                RecordHistory.record_type == "members", RecordHistory.record_id == member_id
            )
        ).scalar_one()
    assert b"person3@example.org" not in raw
    (created,) = history(app, "members", member_id)
    assert created["changes"]["email"] == [None, "person3@example.org"]
    assert created["changes"]["address"] == [None, "1 Main St"]


# Re-sending a record without one of its optional timestamps keeps the stored one (as the
# member ingest always did for ``joined_at``) instead of moving it to "now".
@pytest.mark.parametrize(
    ("path", "body", "update", "column", "model"),
    [
        pytest.param("/perk-awards", award_body(3), {}, "status_at", PerkAward, id="award"),
        pytest.param(
            "/perk-awards",
            award_body(3),
            {"shipped_at": T2},
            "status_at",
            PerkAward,
            id="award-same-status",
        ),
        pytest.param(
            "/disclosures",
            {k: v for k, v in disclosure_body(2).items() if k != "listed_at"},
            {"status": "disclosed"},
            "listed_at",
            Disclosure,
            id="disclosure",
        ),
        pytest.param(
            "/promotions",
            {k: v for k, v in promotion_body(2).items() if k != "shown_at"},
            {"audience": "public"},
            "shown_at",
            Promotion,
            id="promotion",
        ),
    ],
)
def test_omitted_timestamp_is_kept_on_resend(app, client, world, path, body, update, column, model):
    first = post(client, path, body, world)
    assert first.status_code == 201
    record_id = first.get_json()["id"]
    with app.app_context():
        original = getattr(db.session.get(model, record_id), column)
    assert post(client, path, {**body, **update}, world).status_code == 200
    with app.app_context():
        assert getattr(db.session.get(model, record_id), column) == original
    # An identical re-send changes nothing, so it adds no history either.
    before = len(history(app, model.__tablename__, record_id))
    assert post(client, path, {**body, **update}, world).status_code == 200
    assert len(history(app, model.__tablename__, record_id)) == before


def test_award_status_change_without_status_at_moves_status_at(app, client, world):
    created = post(client, "/perk-awards", award_body(3, status_at=T1), world).get_json()
    resp = post(client, "/perk-awards", award_body(3, status="ineligible"), world)
    assert resp.status_code == 200
    with app.app_context():
        award = db.session.get(PerkAward, created["id"])
        assert award.status == "ineligible"
        assert award.status_at > aware(T1)


def test_ingested_records_show_provenance_and_history_in_access_report(client, world):
    resp = post(client, "/members", member_body(1, name="P. One", **UPDATER), world)
    assert resp.status_code == 200
    resp = post(client, "/disclosures", disclosure_body(1), world)
    assert resp.status_code == 201

    filed = client.post(
        API + "/requests",
        json={"type": "access", "member_id": "m-1", "verified": True},
        headers=world,
    )
    assert filed.status_code == 201
    report_url = filed.get_json()["result"]["report_url"]
    report = client.get(report_url, headers=world).get_json()
    cats = {c["key"]: c["records"] for c in report["categories"]}

    (member,) = cats["profile"]
    assert member["email"] == "person1@example.org"
    assert member["name"] == "P. One"
    assert member["provenance"]["source"] == "crm"
    assert member["provenance"]["actor"] == "ops:alice"
    assert aware(member["provenance"]["recorded_at"])
    actions = [(h["action"], h["source"], h["actor"]) for h in member["history"]]
    assert actions == [("created", "test-suite", "pytest"), ("updated", "crm", "ops:alice")]
    assert member["history"][1]["changes"] == {"name": ["Person 1", "P. One"]}

    (disclosure,) = cats["disclosures"]
    assert disclosure["provenance"]["source"] == "test-suite"
    assert [h["action"] for h in disclosure["history"]] == ["created"]
    # Another member's award (aw-9) is not in this member's report.
    assert [a["award_id"] for a in cats["perk_awards"]] == ["aw-1"]


# ---------------------------------------------------------------------------------------
# Bad input: always 422 with field-level errors, never a 500, nothing written.

LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".org"  # valid syntax, > 254
NAIVE = "2024-03-01T10:00:00"

MEMBER_CASES = [
    ("missing member_id", {"member_id": None}, "member_id", True),
    ("missing email", {"email": None}, "email", True),
    ("missing source", {"source": None}, "source", True),
    ("missing actor", {"actor": None}, "actor", True),
    ("null member_id", {"member_id": None}, "member_id", False),
    ("member_id int", {"member_id": 42}, "member_id", False),
    ("member_id empty", {"member_id": ""}, "member_id", False),
    ("member_id too long", {"member_id": "m" * 81}, "member_id", False),
    ("email not an address", {"email": "not-an-email"}, "email", False),
    ("email a number", {"email": 123}, "email", False),
    ("email too long", {"email": LONG_EMAIL}, "email", False),
    ("name too long", {"name": "n" * 201}, "name", False),
    ("name a list", {"name": ["Person"]}, "name", False),
    ("handle too long", {"handle": "h" * 101}, "handle", False),
    ("address too long", {"address": "a" * 501}, "address", False),
    ("status unknown", {"status": "deleted"}, "status", False),
    ("status wrong case", {"status": "ACTIVE"}, "status", False),
    ("joined_at naive", {"joined_at": NAIVE}, "joined_at", False),
    ("joined_at words", {"joined_at": "yesterday"}, "joined_at", False),
    ("joined_at epoch", {"joined_at": 1700000000}, "joined_at", False),
    ("joined_at bad date", {"joined_at": "2024-02-30T00:00:00+00:00"}, "joined_at", False),
    ("closed_at naive", {"closed_at": NAIVE}, "closed_at", False),
    ("unknown field", {"password": "hunter2"}, "password", False),
    ("source empty", {"source": ""}, "source", False),
    ("source too long", {"source": "s" * 81}, "source", False),
    ("actor too long", {"actor": "a" * 121}, "actor", False),
    ("NUL in name", {"name": "Per\x00son"}, "name", False),
    ("NUL in member_id", {"member_id": "m-\x00"}, "member_id", False),
    ("NUL in source", {"source": "crm\x00"}, "source", False),
    ("lone surrogate in name", {"name": "\ud800"}, "name", False),
    ("lone surrogate in handle", {"handle": "@\udfff"}, "handle", False),
]
AWARD_CASES = [
    *[(f"missing {f}", {f: None}, f, True) for f in ("award_id", "member_id", "perk_id")],
    ("missing brand_id", {"brand_id": None}, "brand_id", True),
    ("missing status", {"status": None}, "status", True),
    ("status unknown", {"status": "won"}, "status", False),
    ("value negative", {"value_cents": -1}, "value_cents", False),
    ("value a word", {"value_cents": "ten"}, "value_cents", False),
    ("value fractional", {"value_cents": 1.5}, "value_cents", False),
    ("value a boolean", {"value_cents": True}, "value_cents", False),
    ("value too big", {"value_cents": 10**10}, "value_cents", False),
    ("currency lower case", {"currency": "usd"}, "currency", False),
    ("currency too short", {"currency": "US"}, "currency", False),
    ("currency too long", {"currency": "EURO"}, "currency", False),
    ("status_at naive", {"status_at": NAIVE}, "status_at", False),
    ("status_at overflows UTC", {"status_at": "9999-12-31T23:59:59-23:00"}, "status_at", False),
    ("status_at underflows UTC", {"status_at": "0001-01-01T00:00:00+05:00"}, "status_at", False),
    ("shipped_at naive", {"shipped_at": NAIVE}, "shipped_at", False),
    ("received_at month 13", {"received_at": "2024-13-01T00:00:00Z"}, "received_at", False),
    ("campaign_id empty", {"campaign_id": ""}, "campaign_id", False),
    ("perk_item too long", {"perk_item": "p" * 201}, "perk_item", False),
    ("brand_name too long", {"brand_name": "b" * 121}, "brand_name", False),
    ("unknown member", {"member_id": "m-404"}, "member_id", False),
    ("unknown field", {"received": True}, "received", False),
]
DISCLOSURE_CASES = [
    *[(f"missing {f}", {f: None}, f, True) for f in ("disclosure_id", "award_id", "status")],
    ("status unknown", {"status": "listed"}, "status", False),
    ("listed_at naive", {"listed_at": NAIVE}, "listed_at", False),
    ("listed_at a date only", {"listed_at": "2024-03-01"}, "listed_at", False),
    ("unknown award", {"award_id": "aw-404"}, "award_id", False),
    ("member_id is not a field", {"member_id": "m-1"}, "member_id", False),
]
PROMOTION_CASES = [
    *[(f"missing {f}", {f: None}, f, True) for f in ("promotion_id", "member_id", "audience")],
    ("audience empty", {"audience": ""}, "audience", False),
    ("audience too long", {"audience": "a" * 41}, "audience", False),
    ("uses_likeness not a boolean", {"uses_likeness": "maybe"}, "uses_likeness", False),
    ("message too long", {"message": "m" * 2001}, "message", False),
    ("shown_at naive", {"shown_at": NAIVE}, "shown_at", False),
    ("unknown member", {"member_id": "m-404"}, "member_id", False),
    ("unknown award", {"award_id": "aw-404"}, "award_id", False),
    ("another member's award", {"award_id": "aw-9"}, "award_id", False),
    ("unknown consent", {"consent_id": "c-404"}, "consent_id", False),
]
CONSENT_CASES = [
    *[
        (f"missing {f}", {f: None}, f, True)
        for f in ("consent_id", "member_id", "purpose", "status", "notice_version", "channel")
    ],
    ("status unknown", {"status": "revoked"}, "status", False),
    ("granted without granted_at", {"granted_at": None}, "granted_at", True),
    (
        "withdrawn without withdrawn_at",
        {"status": "withdrawn", "granted_at": None},
        "withdrawn_at",
        False,
    ),
    ("granted_at naive", {"granted_at": NAIVE}, "granted_at", False),
    ("purpose too long", {"purpose": "p" * 61}, "purpose", False),
    ("notice_version empty", {"notice_version": ""}, "notice_version", False),
    ("unknown member", {"member_id": "m-404"}, "member_id", False),
]
BAD = [
    ("/members", Member, lambda: member_body(3), MEMBER_CASES),
    ("/perk-awards", PerkAward, lambda: award_body(2), AWARD_CASES),
    ("/disclosures", Disclosure, lambda: disclosure_body(1), DISCLOSURE_CASES),
    ("/promotions", Promotion, lambda: promotion_body(1), PROMOTION_CASES),
    ("/consents", Consent, lambda: consent_body(2), CONSENT_CASES),
]


def _bad_cases():
    for path, model, make, cases in BAD:
        for label, change, field, remove in cases:
            yield pytest.param(path, model, make, change, field, remove, id=f"{path[1:]}:{label}")


@pytest.mark.parametrize(("path", "model", "make", "change", "field", "remove"), list(_bad_cases()))
def test_bad_field_is_422_naming_it(app, client, world, path, model, make, change, field, remove):
    body = make()
    if remove:
        for name in change:
            body.pop(name, None)
    else:
        body.update(change)
    before = count(app, model)
    resp = post(client, path, body, world)
    assert_error(resp, 422, "invalid", fields=[field])
    assert count(app, model) == before
    # The baseline body is valid: the change above is the only reason for the refusal.
    assert post(client, path, make(), world).status_code == 201


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param("[1, 2]", "application/json", id="list"),
        pytest.param('"a string"', "application/json", id="string"),
        pytest.param("42", "application/json", id="number"),
        pytest.param("null", "application/json", id="null"),
        pytest.param("true", "application/json", id="boolean"),
        pytest.param("not json at all", "application/json", id="invalid-json"),
        pytest.param('{"member_id": "m-3",', "application/json", id="truncated-json"),
        pytest.param("", "application/json", id="empty-body"),
        pytest.param(b"\xff\xfe\x00{", "application/json", id="not-utf8"),
        pytest.param("[" * 100_000 + "]" * 100_000, "application/json", id="deep-nesting"),
        pytest.param('{"a":' * 50_000 + "1" + "}" * 50_000, "application/json", id="deep-object"),
        pytest.param('{"member_id": "m-3"}', "text/plain", id="not-json-content-type"),
        pytest.param("", None, id="no-body"),
    ],
)
def test_non_object_body_is_422(app, client, world, data, content_type):
    kwargs = {"data": data}
    if content_type:
        kwargs["content_type"] = content_type
    for path in ("/members", "/perk-awards", "/disclosures", "/promotions", "/consents"):
        resp = client.post(API + path, headers=world, **kwargs)
        err = assert_error(resp, 422, "invalid", fields=["_schema"])
        assert "JSON object" in err["fields"]["_schema"][0], path


def test_all_errors_of_a_body_are_reported_together(client, world):
    resp = post(
        client,
        "/members",
        {"email": "nope", "status": "x", "extra": 1, "source": "s"},
        world,
    )
    err = assert_error(resp, 422, "invalid")
    assert set(err["fields"]) == {"member_id", "email", "status", "extra", "actor"}


def test_json_nan_is_refused_as_unknown_field_not_crash(client, world):
    resp = client.post(
        API + "/members",
        data='{"member_id": "m-3", "email": "p3@example.org", "source": "s", "actor": "a", '
        '"score": NaN}',
        content_type="application/json",
        headers=world,
    )
    assert_error(resp, 422, "invalid", fields=["score"])


def test_validation_errors_do_not_echo_personal_data(client, world):
    resp = post(client, "/members", member_body(3, email="secret.person@", name="N" * 201), world)
    assert_error(resp, 422, fields=["email", "name"])
    assert "secret.person" not in resp.get_data(as_text=True)


# ---------------------------------------------------------------------------------------
# Conflicts


def test_duplicate_email_for_another_member_is_409(app, client, world):
    before = count(app, Member)
    # The blind index normalises case, so a re-cased address is the same address.
    for email in ("person1@example.org", "PERSON1@Example.ORG"):
        resp = post(client, "/members", member_body(3, email=email), world)
        assert_error(resp, 409, "conflict", fields=["email"])
        assert "person1" not in resp.get_data(as_text=True).lower()
    assert count(app, Member) == before


def test_changing_email_to_another_members_address_is_409(client, world):
    resp = post(client, "/members", member_body(2, email="person1@example.org"), world)
    assert_error(resp, 409, "conflict", fields=["email"])


def test_changing_email_moves_the_blind_index(app, client, world):
    resp = post(client, "/members", member_body(2, email="new2@example.org"), world)
    assert resp.status_code == 200
    with app.app_context():
        member = db.session.execute(select(Member).where(Member.external_id == "m-2")).scalar_one()
        subject = db.session.get(Subject, member.subject_id)
        assert subject.email_index == vault.blind_index("new2@example.org")
    # The old address is free again for a new member; the new one is taken.
    assert (
        post(client, "/members", member_body(3, email="person2@example.org"), world).status_code
        == 201
    )
    resp = post(client, "/members", member_body(4, email="NEW2@example.org"), world)
    assert_error(resp, 409, "conflict", fields=["email"])


def test_award_resent_for_another_member_is_409(app, client, world):
    resp = post(client, "/perk-awards", award_body(1, member=2), world)
    assert_error(resp, 409, "conflict", fields=["member_id"])
    with app.app_context():
        award = db.session.execute(
            select(PerkAward).where(PerkAward.external_id == "aw-1")
        ).scalar_one()
        member = db.session.execute(select(Member).where(Member.external_id == "m-1")).scalar_one()
        assert award.subject_id == member.subject_id


# ---------------------------------------------------------------------------------------
# Keys and scopes

INGEST = [
    ("/members", lambda: member_body(3)),
    ("/perk-awards", lambda: award_body(2)),
    ("/disclosures", lambda: disclosure_body(1)),
    ("/promotions", lambda: promotion_body(1)),
    ("/consents", lambda: consent_body(2)),
]
INGEST_IDS = [p for p, _ in INGEST]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-key",
        "Bearer lethe_000000000000_" + "x" * 43,
        "Basic dGVzdDp0ZXN0",
        "Token lethe_a_b",
        "Bearer lethe__",
        "Bearer lethe_\x00_x",
    ],
    ids=lambda a: repr(a),
)
def test_missing_or_bad_key_is_401(app, client, world, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    before = count(app, RecordHistory)
    for path, make in INGEST:
        resp = client.post(API + path, json=make(), headers=headers)
        err = assert_error(resp, 401, "unauthorized")
        assert err["fields"] == {}
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), path
    assert count(app, RecordHistory) == before


def test_real_key_without_bearer_prefix_is_401(client, world):
    key = world["Authorization"].removeprefix("Bearer ")
    resp = client.post(API + "/members", json=member_body(3), headers={"Authorization": key})
    assert_error(resp, 401, "unauthorized")


def test_bearer_scheme_is_case_insensitive(client, world):
    key = world["Authorization"].removeprefix("Bearer ")
    resp = client.post(
        API + "/members", json=member_body(3), headers={"Authorization": f"bearer {key}"}
    )
    assert resp.status_code == 201


def test_revoked_key_is_401(app, client, world):
    with app.app_context():
        row, key = apikeys.create("revoked", ["records:write"], actor="test")
        db.session.commit()
        key_id = row.id
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post(API + "/members", json=member_body(3), headers=headers).status_code == 201
    with app.app_context():
        db.session.get(ApiKey, key_id).revoked_at = utcnow()
        db.session.commit()
    resp = client.post(API + "/members", json=member_body(4), headers=headers)
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("path", "make"), INGEST, ids=INGEST_IDS)
@pytest.mark.parametrize(
    "scopes",
    [
        ("requests:read",),
        ("requests:write", "requests:verified", "requests:read", "disclosures:read"),
    ],
    ids=["read-only", "all-but-records-write"],
)
def test_key_without_records_write_is_403(app, client, world, key_with, path, make, scopes):
    before = count(app, RecordHistory)
    resp = client.post(API + path, json=make(), headers=key_with(*scopes))
    err = assert_error(resp, 403, "forbidden")
    assert "records:write" in err["message"]
    assert "WWW-Authenticate" not in resp.headers
    assert count(app, RecordHistory) == before


def test_key_with_only_records_write_may_ingest(client, world, key_with):
    resp = client.post(API + "/members", json=member_body(3), headers=key_with("records:write"))
    assert resp.status_code == 201


@pytest.mark.parametrize("path", ["/members", "/perk-awards", "/consents"])
def test_wrong_method_and_unknown_path_are_json_errors(client, world, path):
    assert_error(client.get(API + path, headers=world), 405)
    assert_error(client.post(API + path + "/nope", json={}, headers=world), 404)


# ---------------------------------------------------------------------------------------
# Personal data never reaches the database in clear


def test_no_plaintext_personal_data_in_the_sqlite_files(app, client, world):
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if make_url(uri).get_backend_name() != "sqlite":
        pytest.skip("byte-level check of the database file needs SQLite")
    secrets_ = {
        "email": "mary.plaintext@example.org",
        "name": "Mary Plaintextova",
        "handle": "@maryplaintext",
        "address": "17 Plaintext Lane, Springfield",
        "message": "Mary Plaintextova won a Nova X1",
        "contact": "stranger.plaintext@example.org",
        "correction": "Plaintextova never got the phone",
    }
    body = member_body(
        7,
        email=secrets_["email"],
        name=secrets_["name"],
        handle=secrets_["handle"],
        address=secrets_["address"],
    )
    assert post(client, "/members", body, world).status_code == 201
    # An update keeps old and new values in history: both must be encrypted.
    assert post(client, "/members", {**body, "name": "Mary P."}, world).status_code == 200
    assert post(client, "/consents", consent_body(7, member=7), world).status_code == 201
    promo = promotion_body(
        7, member=7, award_id=None, consent_id="c-7", message=secrets_["message"]
    )
    assert post(client, "/promotions", promo, world).status_code == 201
    for req in (
        {"type": "access", "email": secrets_["contact"]},
        {"type": "rectification", "member_id": "m-7", "correction": secrets_["correction"]},
    ):
        assert client.post(API + "/requests", json=req, headers=world).status_code == 201

    files = []
    for key in ("SQLALCHEMY_DATABASE_URI", "KEYSTORE_URL"):
        path = Path(make_url(app.config[key]).database)
        files += [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert files

    def scan():
        # Every file there is: the database, and while it is open its write-ahead log.
        for file in [f for f in files if f.exists()]:
            data = file.read_bytes().lower()
            for what, value in secrets_.items():
                assert value.lower().encode() not in data, f"{what} in clear in {file.name}"
            # The updated name too, and the local part of the address on its own.
            assert b"mary p." not in data
            assert b"mary.plaintext" not in data

    scan()
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    scan()
