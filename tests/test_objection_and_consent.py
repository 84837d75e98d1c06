"""Objection (Art. 21) and consent withdrawal (Art. 7(3)): absolute objections act at once and
cannot be overridden; weighed ones restrict meanwhile; withdrawing is as easy as giving."""

import json

from sqlalchemy import select

from rights.holdings import records, restrictions
from rights.lifecycle import requests
from storage.clock import utcnow
from storage.db import db
from storage.models import Consent, InfluenceScore, OutboxMessage, Promotion
from tests import factories
from tests.helpers import API, PROVENANCE, T1


def _world(app):
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received")
        factories.consent(1, 1, purpose="name_and_likeness")
        factories.consent(2, 1, purpose="email_marketing")
        db.session.commit()


def _promotion(client, api_key, n):
    return client.post(
        API + "/promotions",
        json={
            "promotion_id": f"pr-{n}",
            "member_id": "m-1",
            "award_id": "aw-1",
            "consent_id": "con-1",
            "audience": "friends",
            "shown_at": T1,
            "message": "Person 1 won a Nova X1!",
            "uses_likeness": True,
            **PROVENANCE,
        },
        headers=api_key,
    )


def _file(app, type_, **details):
    with app.app_context():
        req = requests.file(
            type=type_, member_id="m-1", channel="api", verified=True, actor="t", details=details
        )
        db.session.commit()
        return req.id, req.status


def _consents(app):
    with app.app_context():
        return dict(db.session.execute(select(Consent.purpose, Consent.status)).all())


def test_objecting_to_likeness_stops_promotions_at_once_with_no_override(
    app, client, api_key, login_as
):
    _world(app)
    assert _promotion(client, api_key, 1).status_code == 201
    rid, status = _file(app, "objection", purpose="likeness")
    assert status == "completed"  # acted on at once: nothing for an officer to decide
    with app.app_context():
        promo = db.session.execute(select(Promotion)).scalar_one()
        assert promo.withdrawn_at is not None
    assert _consents(app)["name_and_likeness"] == "withdrawn"
    refused = _promotion(client, api_key, 2)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["fields"] == {"uses_likeness": ["no consent in force"]}
    # No officer path undoes it: the request is closed and offers no action.
    admin = login_as("admin")
    page = admin.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert "nothing is left to do" in page
    for action in ("refuse", "approve", "cancel"):
        assert (
            admin.post(f"/dashboard/requests/{rid}/{action}", data={"reason": "x"}).status_code
            == 303
        )
    assert _consents(app)["name_and_likeness"] == "withdrawn"
    with app.app_context():
        topics = (
            db.session.execute(select(OutboxMessage.topic).where(OutboxMessage.kind == "event"))
            .scalars()
            .all()
        )
        assert "subject.objected" in topics and "consent.withdrawn" in topics


def test_a_new_consent_given_by_the_member_is_theirs_to_give(app, client, api_key):
    _world(app)
    _file(app, "objection", purpose="likeness")
    # Only the subject giving consent again (through the platform) brings promotions back.
    body = {
        "consent_id": "con-3",
        "member_id": "m-1",
        "purpose": "name_and_likeness",
        "status": "granted",
        "notice_version": "2026-12",
        "channel": "web",
        "granted_at": "2026-12-01T00:00:00+00:00",
        **PROVENANCE,
    }
    assert client.post(API + "/consents", json=body, headers=api_key).status_code == 201
    assert _promotion(client, api_key, 2).status_code == 201


def test_objecting_to_profiling_is_weighed_with_the_scores_held_back_meanwhile(app, login_as):
    _world(app)
    with app.app_context():
        member = factories.member(1)
        records.apply_changes(
            InfluenceScore(subject_id=member.subject_id),
            {"score": 71.0, "model_version": "v3", "computed_at": utcnow(), "factors": {}},
            subject_id=member.subject_id,
            source="scoring",
            actor="model-v3",
        )
        db.session.commit()
    rid, status = _file(app, "objection", purpose="profiling")
    assert status == "open"  # an officer weighs it (Art. 21(1))…
    with app.app_context():
        score = db.session.execute(select(InfluenceScore)).scalar_one()
        assert restrictions.is_restricted(score)  # …with the scoring held back meanwhile
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/approve", data={}).status_code == 303
    with app.app_context():
        assert requests.get(rid).status == "completed"
        assert restrictions.is_restricted(db.session.execute(select(InfluenceScore)).scalar_one())


def test_withdrawing_consent_is_as_easy_as_giving_it(app, client, api_key):
    _world(app)
    rid, status = _file(app, "consent_withdrawal", consent_purpose="email_marketing")
    assert status == "completed"  # one step, no officer
    assert _consents(app) == {"name_and_likeness": "granted", "email_marketing": "withdrawn"}
    with app.app_context():
        consent = db.session.execute(
            select(Consent).where(Consent.purpose == "email_marketing")
        ).scalar_one()
        assert consent.withdrawn_at is not None and consent.granted_at is not None  # from now on
        event = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.topic == "consent.withdrawn")
        ).scalar_one()
        body = json.loads(event.payload_enc)
        assert body["records"] == [{"type": "consents", "id": "con-2"}]
        assert "person1" not in event.payload_enc.decode()
