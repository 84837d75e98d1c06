"""Rectification (Art. 16) with restriction while contested (Art. 18(1)(a)): contested records
vanish from the disclosure list and promotions the moment the request stands, come back only
if it is refused (after the subject is told), and accepted corrections leave a history and an
event for downstream recipients (Art. 19)."""

import json
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select

from rights.holdings import records
from rights.lifecycle import requests, verification
from storage.db import db
from storage.models import (
    Disclosure,
    OutboxMessage,
    PerkAward,
    Promotion,
    RecordHistory,
    RequestEvent,
)
from tests import factories
from tests.helpers import API, deliver

STORY = {"records": ["aw-1"], "correction": "I never received the Nova X1 phone."}


def _world(app):
    with app.app_context():
        for n in (1, 2):
            factories.member(n)
            factories.award(n, n, status="received")
            records.upsert_disclosure(
                {"disclosure_id": f"dl-{n}", "award_id": f"aw-{n}", "status": "disclosed"},
                source="test",
                actor="t",
            )
        factories.consent(1, 1)  # name and likeness, granted
        records.upsert_promotion(
            {
                "promotion_id": "pr-1",
                "member_id": "m-1",
                "award_id": "aw-1",
                "audience": "friends",
                "message": "Person 1 just won a Nova X1!",
                "uses_likeness": True,
            },
            source="test",
            actor="t",
        )
        db.session.commit()


def _listed(client, key_with):
    resp = client.get(API + "/disclosures/export", headers=key_with("disclosures:read"))
    ids = [e["disclosure_id"] for e in resp.get_json()["entries"]]
    resp.close()
    return ids


def _file(app, **details):
    with app.app_context():
        req = requests.file(
            type="rectification",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="t",
            details=details or STORY,
        )
        db.session.commit()
        return req.id


def _promote(client, api_key):
    body = {
        "promotion_id": "pr-new",
        "member_id": "m-1",
        "award_id": "aw-1",
        "audience": "public",
        "message": "Rate your Nova X1!",
        "source": "promo-service",
        "actor": "t",
    }
    return client.post(API + "/promotions", json=body, headers=api_key)


def _events(app, topic):
    with app.app_context():
        return [
            json.loads(m.payload_enc)
            for m in db.session.execute(
                select(OutboxMessage).where(OutboxMessage.topic == topic)
            ).scalars()
        ]


def test_contested_records_vanish_the_moment_the_request_stands(app, client, key_with, api_key):
    _world(app)
    assert _listed(client, key_with) == ["dl-1", "dl-2"]
    rid = _file(app)
    assert _listed(client, key_with) == ["dl-2"]
    resp = _promote(client, api_key)
    assert resp.status_code == 409 and resp.get_json()["error"]["fields"] == {
        "award_id": ["held back"]
    }
    held = _events(app, "subject.restricted")
    assert held and held[0]["records"] == [{"type": "perk_awards", "id": "aw-1"}]
    assert "Person" not in json.dumps(held) and "@" not in json.dumps(held)
    with app.app_context():
        kinds = [e.kind for e in requests.events(requests.get(rid))]
        assert "records_held" in kinds


def test_an_unverified_request_holds_nothing_back(app, client, key_with, mailbox):
    _world(app)
    with app.app_context():
        req = requests.file(
            type="rectification",
            email="person1@example.org",
            channel="web",
            actor="subject",
            details=STORY,
        )
        token = verification.issue(req, "verify")
        db.session.commit()
    # Anyone can type an address: nothing is restricted until the owner confirms.
    assert _listed(client, key_with) == ["dl-1", "dl-2"]
    with app.app_context():
        requests.confirm(token)
        db.session.commit()
    assert _listed(client, key_with) == ["dl-2"]


def test_records_not_the_subjects_are_not_held(app, client, key_with):
    _world(app)
    rid = _file(app, records=["aw-2", "aw-nope"], correction="x")
    assert _listed(client, key_with) == ["dl-1", "dl-2"]
    with app.app_context():
        notes = [e.note for e in requests.events(requests.get(rid)) if e.kind == "records_held"]
        assert notes == ["0 record(s) held back; 2 named record(s) not found among the subject's"]


def test_accepting_corrects_with_history_and_an_event(app, client, key_with, login_as):
    _world(app)
    rid = _file(app)
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/approve", data={}).status_code == 303
    with app.app_context():
        award = db.session.execute(
            select(PerkAward).where(PerkAward.external_id == "aw-1")
        ).scalar_one()
        assert award.status == "not_received" and award.received_at is None
        disclosure = db.session.execute(
            select(Disclosure).where(Disclosure.external_id == "dl-1")
        ).scalar_one()
        assert disclosure.status == "withdrawn"
        promo = db.session.execute(
            select(Promotion).where(Promotion.external_id == "pr-1")
        ).scalar_one()
        assert promo.withdrawn_at is not None
        history = (
            db.session.execute(
                select(RecordHistory).where(
                    RecordHistory.request_id == rid, RecordHistory.action == "updated"
                )
            )
            .scalars()
            .all()
        )
        assert {h.record_type for h in history} == {"perk_awards", "disclosures", "promotions"}
        assert all(h.actor == f"officer:{officer.officer_id}" for h in history)
        assert all("accepted" in h.reason for h in history)
        assert requests.get(rid).status == "completed"
    event = _events(app, "subject.rectified")[0]
    assert {"type": "perk_awards", "id": "aw-1"} in event["records"]
    assert event["action"].startswith("correct")
    assert _listed(client, key_with) == ["dl-2"]  # corrected: still not on the list


def test_refusing_brings_the_records_back_only_after_telling_the_subject(
    app, client, key_with, login_as, mailbox
):
    _world(app)
    rid = _file(app)
    officer = login_as("officer")
    resp = officer.post(
        f"/dashboard/requests/{rid}/refuse", data={"reason": "The carrier confirmed delivery."}
    )
    assert resp.status_code == 303
    assert _listed(client, key_with) == ["dl-2"]  # still held: the subject is told first
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    assert "That hold ends on" in body and "carrier confirmed" in body
    with app.app_context():
        award = db.session.execute(
            select(PerkAward).where(PerkAward.external_id == "aw-1")
        ).scalar_one()
        assert award.status == "received"  # unchanged
    later = app.config["RESTRICTION_LIFT_NOTICE_HOURS"] + 1
    with freeze_time(timedelta(hours=later), tick=True):
        assert _listed(client, key_with) == ["dl-1", "dl-2"]
    assert _events(app, "subject.restriction_lifted")


def test_events_go_to_no_one_when_nobody_subscribed_and_do_not_block_the_worker(app):
    _world(app)
    _file(app)
    counts = deliver(app)
    assert counts["dead"] == 0
    with app.app_context():
        from storage.models import Delivery

        statuses = (
            db.session.execute(select(OutboxMessage.status).where(OutboxMessage.kind == "event"))
            .scalars()
            .all()
        )
        assert statuses and set(statuses) == {"sent"}  # fanned out…
        assert db.session.execute(select(Delivery)).first() is None  # …to no subscriber
        assert db.session.execute(
            select(RequestEvent).where(RequestEvent.kind == "records_held")
        ).first()


def test_the_officer_sees_what_is_held_back(app, login_as):
    _world(app)
    with app.app_context():
        from storage.models import Feedback

        award = db.session.execute(
            select(PerkAward).where(PerkAward.external_id == "aw-1")
        ).scalar_one()
        feedback = Feedback(subject_id=award.subject_id, award_id=award.id)
        records.apply_changes(
            feedback, {"rating": None}, subject_id=award.subject_id, source="t", actor="bot"
        )
        db.session.commit()
        feedback_id = feedback.id
    rid = _file(app)
    with app.app_context():
        from rights.holdings import restrictions
        from storage.models import Feedback

        assert restrictions.is_restricted(db.session.get(Feedback, feedback_id))
    page = login_as("auditor").get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert "Records held back" in page
    for name in ("perk awards aw-1", "disclosures dl-1", "promotions pr-1", "feedback"):
        assert name in page


def test_the_subject_points_at_their_records_on_the_request_page(app, client, key_with, mailbox):
    import re

    _world(app)
    resp = client.post(
        "/requests/new",
        data={
            "type": "rectification",
            "email": "person1@example.org",
            "correction": "The phone never came.",
        },
    )
    assert resp.status_code == 303
    deliver(app)
    link = re.search(r"http://lethe.test(/verify/\S+)", mailbox.body(mailbox.messages[-1])).group(1)
    page = client.post(link, data={}, follow_redirects=True).get_data(as_text=True)
    assert "Which of your records are wrong?" in page
    assert "aw-1" in page and "dl-1" in page and "aw-2" not in page  # their own only
    assert _listed(client, key_with) == ["dl-1", "dl-2"]
    ref = re.search(r"Request (LR-[0-9A-Z]{4}-[0-9A-Z]{4})", page).group(1)
    none = client.post(f"/requests/{ref}/records", data={"record": ["aw-2"]}, follow_redirects=True)
    assert "Choose at least one of your records." in none.get_data(as_text=True)
    done = client.post(f"/requests/{ref}/records", data={"record": ["aw-1"]}, follow_redirects=True)
    assert "held back" in done.get_data(as_text=True)
    assert _listed(client, key_with) == ["dl-2"]
    with app.app_context():
        req = requests.by_reference(ref)
        assert requests.details(req)["records"] == ["aw-1"]
    # Nobody else can point at records on this request.
    assert (
        app.test_client().post(f"/requests/{ref}/records", data={"record": ["aw-1"]}).status_code
        == 404
    )


def test_a_granted_restriction_is_lifted_only_after_telling_the_subject(
    app, client, key_with, login_as, mailbox
):
    _world(app)
    with app.app_context():
        req = requests.file(
            type="restriction",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="t",
            details={"records": ["dl-1"], "grounds": "legal_claims"},
        )
        db.session.commit()
        rid = req.id
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/approve", data={}).status_code == 303
    assert _listed(client, key_with) == ["dl-2"]  # granted: held until lifted
    page = officer.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert f"/dashboard/requests/{rid}/lift" in page
    assert officer.post(f"/dashboard/requests/{rid}/lift", data={"reason": ""}).status_code == 422
    resp = officer.post(f"/dashboard/requests/{rid}/lift", data={"reason": "Claim settled."})
    assert resp.status_code == 303
    assert _listed(client, key_with) == ["dl-2"]  # not yet: the subject is told first
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    assert "will be used again from" in body and "Claim settled." in body
    hours = app.config["RESTRICTION_LIFT_NOTICE_HOURS"] + 1
    with freeze_time(timedelta(hours=hours), tick=True):
        assert _listed(client, key_with) == ["dl-1", "dl-2"]
    page = officer.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert f"/dashboard/requests/{rid}/lift" not in page  # nothing left to lift


def test_a_wrong_profile_field_is_held_back_then_corrected_by_the_officer(
    app, client, key_with, login_as
):
    _world(app)
    rid = _file(app, records=["profile.name"], correction="My name is Person One, not Person 1.")
    assert _listed(client, key_with) == ["dl-2"]  # the list would show the contested name
    officer = login_as("officer")
    page = officer.get(f"/dashboard/requests/{rid}/approve").get_data(as_text=True)
    assert 'name="profile.name"' in page and "Person One" in page
    resp = officer.post(
        f"/dashboard/requests/{rid}/approve", data={"profile.name": "Person One", "note": ""}
    )
    assert resp.status_code == 303
    entries = client.get(API + "/disclosures/export", headers=key_with("disclosures:read"))
    names = {e["disclosure_id"]: e["name"] for e in entries.get_json()["entries"]}
    assert names == {"dl-1": "Person One", "dl-2": "Person 2"}
    with app.app_context():
        from storage.models import Member

        member = db.session.execute(select(Member).where(Member.external_id == "m-1")).scalar_one()
        history = db.session.execute(
            select(RecordHistory).where(
                RecordHistory.record_type == "members",
                RecordHistory.request_id == rid,
                RecordHistory.action == "updated",
            )
        ).scalar_one()
        assert history.actor == f"officer:{officer.officer_id}"
        assert member.subject_id == history.subject_id
