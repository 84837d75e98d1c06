"""The access report (Art. 15): the data, every Art. 15(1) item, provenance and history."""

import json
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import event

from demo import loader as demo
from rights.access import access
from rights.delivery import outbox
from rights.lifecycle import requests
from storage.datamap import CATEGORIES
from storage.db import db
from tests import factories
from tests.helpers import deliver
from tests.test_verification import _file, _link


def _complete_access(app, email="person1@example.org", type_="access"):
    with app.app_context():
        req = requests.file(type=type_, email=email, channel="api", verified=True, actor="test")
        db.session.commit()
        return req.id, req.reference


def _report(app, request_id):
    with app.app_context():
        req = requests.get(request_id)
        return json.loads("".join(access.stream_json(req)))


ART_15_KEYS = {
    "purposes",  # 15(1)(a)
    "recipients",  # 15(1)(c)
    "retention",  # 15(1)(d)
    "your_rights",  # 15(1)(e)
    "complaint",  # 15(1)(f)
    "sources",  # 15(1)(g)
    "automated_decision_making",  # 15(1)(h)
    "transfers",  # 15(2)
    "categories",  # 15(1)(b) and the data itself (15(3))
}


def test_every_art15_item_is_present(app):
    with app.app_context():
        factories.member(1)
        factories.commit()
    rid, _ = _complete_access(app)
    report = _report(app, rid)
    assert ART_15_KEYS <= set(report)
    assert {"rectification", "erasure", "restriction", "objection"} <= set(report["your_rights"])
    assert "supervisory authority" in report["complaint"]
    assert "judicial remedy" in report["complaint"]
    adm = report["automated_decision_making"]
    assert adm["exists"] is True and "influence score" in adm["logic"]
    assert adm["significance_and_consequences"]
    assert [c["key"] for c in report["categories"]] == [c.key for c in CATEGORIES]
    for cat in report["categories"]:
        for key in (
            "purposes",
            "legal_basis",
            "recipients",
            "retention",
            "source",
            "on_erasure",
            "records",
        ):
            assert cat[key] is not None, (cat["key"], key)
        assert cat["retention"]["period"]
        if cat["on_erasure"]["action"] == "retain":
            assert cat["on_erasure"]["exception"].startswith("Art. 17(3)")
            assert cat["retention"]["after_erasure"]


def test_story_member_sees_how_the_phone_record_got_there(app):
    with app.app_context():
        demo.load(extra_members=3)
        db.session.commit()
    rid, _ = _complete_access(app, demo.STORY_EMAIL)
    report = _report(app, rid)
    cats = {c["key"]: c for c in report["categories"]}
    assert cats["profile"]["records"][0]["name"] == "Sam Rivera"
    (award,) = cats["perk_awards"]["records"]
    assert award["status"] == "received" and award["shipped_at"] is None
    assert award["perk"]["item"] == "Nova X1 phone" and award["perk"]["brand"] == "Nova Mobile"
    assert award["provenance"]["source"] == "fulfilment-sync"
    steps = [
        (h["source"], h["actor"], h["changes"].get("status", [None, None])[1])
        for h in award["history"]
    ]
    assert steps == [
        ("award-engine", "campaign-draw-2026-08", "offered"),
        ("member-app", "member", "claimed"),
        ("eligibility-check", "geo-rule-v2", "ineligible"),
        ("fulfilment-sync", "sync-job-0817", "received"),
        ("lethe", "lethe", None),  # held back while his rectification is open (Art. 18)
    ]
    assert award["history"][-1]["action"] == "restricted"
    assert cats["disclosures"]["records"][0]["status"] == "disclosed"
    promo = cats["promotions"]["records"][0]
    assert promo["audience"] == "friends" and "Sam Rivera" in promo["message"]
    assert cats["feedback"]["records"][0]["rating"] is None
    assert cats["influence_scores"]["records"][0]["factors"]
    # This access request, and the rectification the demo's story filed before it.
    kinds = sorted(r["type"] for r in cats["rights_requests"]["records"])
    assert kinds == ["access", "rectification"]


def test_report_holds_only_this_subjects_records(app):
    with app.app_context():
        factories.member(1)
        factories.member(2)
        factories.award(1, member_n=1)
        factories.award(2, member_n=2)
        factories.commit()
    rid, _ = _complete_access(app, "person1@example.org")
    text = "".join(_report_text(app, rid))
    assert "person1@example.org" in text
    assert "person2@example.org" not in text and "aw-2" not in text


def _report_text(app, rid):
    with app.app_context():
        yield from access.stream_json(requests.get(rid))


def test_stranger_gets_a_report_saying_nothing_is_held(app):
    rid, _ = _complete_access(app, "stranger@example.org")
    report = _report(app, rid)
    cats = {c["key"]: c for c in report["categories"]}
    # Nothing about perks or profiles; only the request itself and what we wrote to them,
    # including the address we hold for them.
    assert all(not c["records"] for k, c in cats.items() if k not in ("rights_requests", "notices"))
    assert cats["rights_requests"]["records"][0]["contact"] == "stranger@example.org"
    assert cats["notices"]["records"][0]["message"]["to"] == "stranger@example.org"


def test_report_reads_in_batches_without_per_record_queries(app, monkeypatch):
    with app.app_context():
        factories.member(1)
        for n in range(1, 1201):
            factories.award(n, member_n=1)
        factories.commit()
    rid, _ = _complete_access(app)
    monkeypatch.setattr(access, "BATCH", 500)
    with app.app_context():
        statements = []
        engine = db.engines[None]

        def count(*args, **kwargs):
            statements.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            body = "".join(access.stream_json(requests.get(rid)))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert body.count('"award_id"') >= 1200
    # 1,200 awards in 3 batches: a handful of queries per batch, not one per record.
    assert len(statements) < 80, len(statements)


@pytest.mark.parametrize("fmt", ["report", "report.json"])
def test_downloads_expire_and_are_not_cached(app, client, mailbox, fmt):
    with freeze_time("2026-11-01T10:00:00Z"):
        _file(client)
        deliver(app)
        ref = client.post(_link(mailbox, "person1@example.org")).headers["Location"]
        ref = ref.rsplit("/", 1)[1]
        resp = client.get(f"/requests/{ref}/{fmt}")
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "no-store"
    with app.app_context():
        expires = requests.by_reference(ref).downloads_expire_at
    assert expires == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with freeze_time("2026-11-01T11:00:00Z"):
        # The browser grant lasts two hours; within it the download still works.
        assert client.get(f"/requests/{ref}/{fmt}").status_code == 200
    with freeze_time("2026-12-01T10:00:01Z"):
        client.post(f"/requests/{ref}/link")
        deliver(app)
        client.post(_link(mailbox, "person1@example.org", "resume"))
        assert client.get(f"/requests/{ref}/{fmt}").status_code == 404
        assert "expired" in client.get(f"/requests/{ref}").get_data(as_text=True)


def test_report_opens_with_a_summary_and_keeps_every_field(app):
    """The JSON report gains ``summary`` (the same content as the page's, as data and as
    sentences); every Art. 15 item and every stored value stays as it was."""
    with app.app_context():
        factories.member(1)
        factories.award(1, status="offered")
        factories.award(1, status="received", source="fulfilment-sync")
        factories.commit()
    rid, _ = _complete_access(app)
    report = _report(app, rid)
    assert ART_15_KEYS <= set(report)
    s = report["summary"]
    assert {"held", "recipients", "held_back", "being_corrected", "troubled", "in_words"} <= set(s)
    assert {"category": "perk_awards", "title": "Perk awards", "count": 1} | {
        "words": "1 perk award"
    } in s["held"]
    assert [part["heading"] for part in s["in_words"]][:2] == ["What we hold", "Who we gave it to"]
    (troubled,) = s["troubled"]
    assert troubled["reference"] == "aw-1"
    assert troubled["changes"][-1]["sentence"].endswith("No shipment was recorded.")
    cats = {c["key"]: c for c in report["categories"]}
    (award,) = cats["perk_awards"]["records"]
    assert set(award) == {
        "award_id",
        "perk",
        "status",
        "status_at",
        "shipped_at",
        "received_at",
        "provenance",
        "history",
    }
    assert award["status"] == "received" and award["perk"]["item"] == "Nova X1 phone"


def test_messages_we_sent_are_the_emails_only(app):
    """The outbox also carries jobs: the report's "Messages we sent you" are its emails, as
    the data map says (a job is no message to the person)."""
    rid, _ = _complete_access(app)
    with app.app_context():
        outbox.enqueue_job("some.job", subject_id=requests.get(rid).subject_id)
        db.session.commit()
    report = _report(app, rid)
    (notices,) = [c for c in report["categories"] if c["key"] == "notices"]
    assert notices["records"] and all(r["message"]["to"] for r in notices["records"])
    assert "some.job" not in {r["topic"] for r in notices["records"]}
