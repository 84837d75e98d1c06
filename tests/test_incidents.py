"""Incidents: find every member a fault touched, correct them all in resumable batches (a
second run changes nothing), tell each of them once, and show the incident in their report."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from rights.access import access
from rights.contest import incidents
from rights.errors import Invalid
from rights.lifecycle import requests
from rights.recipients import webhooks
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    AuditEvent,
    Delivery,
    Disclosure,
    IncidentRecord,
    Member,
    OutboxMessage,
    Perk,
    PerkAward,
    RecordHistory,
    Subject,
    Subscriber,
)
from tests import factories
from tests.helpers import deliver

FAULT = {"perk": "p-phone", "source": "fulfilment-sync", "no_shipment": True}


def _story(app, faulty=12, fine=5):
    """``faulty`` members whose award the sync job marked received with no shipment, and
    ``fine`` whose award really shipped and arrived."""
    with app.app_context():
        for n in range(1, faulty + fine + 1):
            factories.member(n)
            factories.award(n, n, status="offered", source="award-engine")
            if n <= faulty:
                factories.award(n, n, status="received", source="fulfilment-sync")
            else:
                factories.award(n, n, status="received", source="carrier", shipped_at=utcnow())
        from rights.holdings import records

        records.upsert_disclosure(
            {"disclosure_id": "dl-1", "award_id": "aw-1", "status": "disclosed"},
            source="t",
            actor="t",
        )
        db.session.commit()


def _open(app, **extra):
    with app.app_context():
        incident = incidents.open_incident(
            title="Fulfilment sync marked undelivered phones received",
            root_cause="sync-job-0817 treated 'ineligible' as 'delivered'.",
            record_filter={**FAULT, **extra},
            actor="officer:1",
            request_id=None,
        )
        db.session.commit()
        return incident.id


def _run(app, incident_id, step, limit=None):
    done = 0
    runs = 0
    with app.app_context():
        while limit is None or runs < limit:
            incident = incidents.get(incident_id)
            n = step(incident, actor="officer:1")
            db.session.commit()
            runs += 1
            if not n:
                break
            done += n
    return done, runs


def test_the_filter_finds_exactly_the_members_the_fault_touched(app):
    _story(app)
    with app.app_context():
        f = incidents.Filter.load(FAULT)
        assert incidents.matches(f) == 12
        assert {p["member"] for p in incidents.preview(f)} == {f"m-{n}" for n in range(1, 13)}
        assert incidents.matches(incidents.Filter.load({**FAULT, "source": "carrier"})) == 0
        later = incidents.Filter.load(
            {**FAULT, "since": (utcnow() + timedelta(days=1)).isoformat()}
        )
        assert incidents.matches(later) == 0


def test_bad_filters_are_refused(app):
    _story(app, 1, 0)
    with app.app_context():
        for data, field in (
            ({}, "perk"),
            ({"perk": "p-unknown"}, "perk"),
            ({**FAULT, "since": "yesterday"}, "since"),
            ({**FAULT, "since": "2026-05-02", "until": "2026-05-01"}, "until"),
        ):
            with pytest.raises(Invalid) as err:
                incidents.open_incident(
                    title="x", root_cause="", record_filter=data, actor="t", request_id=None
                )
            assert field in err.value.fields


def test_correction_applies_with_history_and_shows_in_the_report(app):
    _story(app)
    incident_id = _open(app)
    done, _ = _run(app, incident_id, incidents.correct_batch)
    assert done == 12
    with app.app_context():
        statuses = dict(db.session.execute(select(PerkAward.external_id, PerkAward.status)).all())
        assert [statuses[f"aw-{n}"] for n in range(1, 13)] == ["not_received"] * 12
        assert [statuses[f"aw-{n}"] for n in range(13, 18)] == ["received"] * 5
        assert (
            db.session.execute(
                select(Disclosure.status).where(Disclosure.external_id == "dl-1")
            ).scalar_one()
            == "withdrawn"
        )
        incident = incidents.get(incident_id)
        assert incident.status == "corrected" and incident.corrected == 12
        # Sam's (m-1's) access report shows the incident on his award.
        req = requests.file(type="access", member_id="m-1", channel="api", verified=True, actor="t")
        db.session.commit()
        report = json.loads("".join(access.stream_json(req)))
        awards = next(c for c in report["categories"] if c["key"] == "perk_awards")
        reasons = [h["reason"] for h in awards["records"][0]["history"]]
        assert any(incident.reference in (r or "") for r in reasons)


def test_ten_thousand_awards_in_batches_resumable_and_idempotent(app):
    n_subjects, per_subject = 100, 100
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="offered")  # creates perk p-phone
        perk_id = db.session.execute(
            select(Perk.id).where(Perk.external_id == "p-phone")
        ).scalar_one()
        now = utcnow()
        subjects = []
        for i in range(n_subjects):
            s = Subject(ref=f"sub_bulk{i:04d}", email_index=vault.blind_index(f"b{i}@x.org"))
            db.session.add(s)
            subjects.append(s)
        db.session.flush()
        for s in subjects:
            vault.create_subject_key(s.id)
        db.session.execute(
            insert(Member),
            [
                {
                    "subject_id": s.id,
                    "external_id": f"m-bulk-{i}",
                    "email_enc": vault.encrypt(s.id, "members.email_enc", f"b{i}@x.org"),
                    "name_enc": vault.encrypt(s.id, "members.name_enc", f"Bulk {i}"),
                    "status": "active",
                    "joined_at": now,
                    "source": "t",
                    "actor": "t",
                    "recorded_at": now,
                }
                for i, s in enumerate(subjects)
            ],
        )
        db.session.execute(
            insert(PerkAward),
            [
                {
                    "external_id": f"aw-bulk-{i}-{j}",
                    "subject_id": s.id,
                    "perk_id": perk_id,
                    "status": "received",
                    "status_at": now,
                    "source": "fulfilment-sync",
                    "actor": "sync-job-0817",
                    "recorded_at": now,
                }
                for i, s in enumerate(subjects)
                for j in range(per_subject)
            ],
        )
        ids = db.session.execute(
            select(PerkAward.id, PerkAward.subject_id).where(PerkAward.status == "received")
        ).all()
        db.session.execute(
            insert(RecordHistory),
            [
                {
                    "subject_id": s,
                    "record_type": "perk_awards",
                    "record_id": a,
                    "action": "updated",
                    "changed_at": now,
                    "source": "fulfilment-sync",
                    "actor": "sync-job-0817",
                }
                for a, s in ids
            ],
        )
        db.session.commit()
    total = n_subjects * per_subject
    incident_id = _open(app)
    # Stopped after three batches (a crash, a deploy)…
    done, runs = _run(app, incident_id, incidents.correct_batch, limit=3)
    assert done == 3 * incidents.BATCH and runs == 3
    # …and resumed where it stopped.
    done, runs = _run(app, incident_id, incidents.correct_batch)
    assert done == total - 3 * incidents.BATCH
    assert runs == (total - 3 * incidents.BATCH) // incidents.BATCH + 1
    with app.app_context():
        count = db.session.execute(
            select(func.count()).where(PerkAward.status == "not_received")
        ).scalar_one()
        assert count == total
        history = db.session.execute(
            select(func.count()).where(RecordHistory.reason.like("incident %"))
        ).scalar_one()
        assert history == total
        records_count = db.session.execute(select(func.count(IncidentRecord.id))).scalar_one()
        assert records_count == total
        # A second run from the start finds nothing left to correct.
        incident = incidents.get(incident_id)
        incident.corrected_through = 0
        db.session.commit()
        before = db.session.execute(select(func.count(RecordHistory.id))).scalar_one()
    done, _ = _run(app, incident_id, incidents.correct_batch)
    assert done == 0
    with app.app_context():
        assert db.session.execute(select(func.count(RecordHistory.id))).scalar_one() == before
        batches = db.session.execute(
            select(func.count()).where(AuditEvent.action == "incident.batch_corrected")
        ).scalar_one()
        assert batches == total // incidents.BATCH


def test_each_member_is_told_once_with_the_apology_written_once(app, mailbox):
    _story(app)
    incident_id = _open(app)
    _run(app, incident_id, incidents.correct_batch)
    with app.app_context():
        incident = incidents.get(incident_id)
        with pytest.raises(Invalid):
            incidents.notify_batch(incident, actor="officer:1")  # no apology yet
        with pytest.raises(Invalid) as err:
            incidents.set_apology(incident, subject="Sorry", body="Dear {nmae}", actor="officer:1")
        assert "unknown placeholder" in err.value.fields["apology_body"][0]
        incidents.set_apology(
            incident,
            subject="We got your {perk} wrong",
            body="Dear {name},\n\nOur records said you received a {perk}. You did not, and "
            "we have corrected every record that said so ({incident}). We are sorry.",
            actor="officer:1",
        )
        db.session.commit()
    sent, _ = _run(app, incident_id, incidents.notify_batch)
    assert sent == 12
    again, _ = _run(app, incident_id, incidents.notify_batch)
    assert again == 0
    deliver(app)
    body = mailbox.body(mailbox.last_to("person3@example.org"))
    assert body.startswith("Dear Person 3,") and "Nova X1 phone" in body and "INC-" in body
    assert len(mailbox.to("person3@example.org")) == 1
    assert not mailbox.to("person15@example.org")  # not touched by the fault
    with app.app_context():
        assert (
            db.session.execute(
                select(func.count()).where(OutboxMessage.topic == "notice.incident")
            ).scalar_one()
            == 12
        )


def test_the_dashboard_finds_corrects_and_tells_the_others(app, login_as, mailbox):
    _story(app)
    with app.app_context():
        req = requests.file(
            type="rectification",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="t",
            details={"records": ["aw-1"], "correction": "Never received."},
        )
        db.session.commit()
        rid = req.id
    officer = login_as("officer")
    page = officer.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert "How many others?" in page
    form = officer.get(f"/dashboard/incidents/new?from={rid}").get_data(as_text=True)
    assert 'value="p-phone"' in form and 'value="fulfilment-sync"' in form  # from the award
    bad = officer.post(f"/dashboard/incidents/new?from={rid}", data={"title": "", "perk": "p-x"})
    assert bad.status_code == 422
    opened = officer.post(
        f"/dashboard/incidents/new?from={rid}",
        data={
            "title": "Sync marked phones received",
            "perk": "p-phone",
            "source": "fulfilment-sync",
            "status": "received",
            "no_shipment": "y",
        },
    )
    assert opened.status_code == 303
    url = opened.headers["Location"]
    page = officer.get(url).get_data(as_text=True)
    # m-1's award is held back by their own request: decided there, not by the incident.
    assert "<strong>11</strong> award(s) still to correct" in page
    assert "m-12" in page and "m-13" not in page and "<td>m-1</td>" not in page
    assert officer.post(url + "/correct", data={}).status_code == 303
    page = officer.get(url).get_data(as_text=True)
    assert "<strong>0</strong> award(s) still to correct" in page
    assert "incident.batch_corrected" in page  # the timeline
    assert officer.post(url + "/apology", data={"apology_subject": "Sorry"}).status_code == 422
    saved = officer.post(
        url + "/apology",
        data={"apology_subject": "About your {perk}", "apology_body": "Dear {name}, sorry."},
    )
    assert saved.status_code == 303
    assert officer.post(url + "/notify", data={}).status_code == 303
    # Sent: the apology stays as the members received it.
    changed = officer.post(
        url + "/apology", data={"apology_subject": "Other", "apology_body": "Other text"}
    )
    assert changed.status_code == 303
    page = officer.get(url).get_data(as_text=True)
    assert "it stays as the members received it" in page and "Other text" not in page
    deliver(app)
    assert mailbox.body(mailbox.last_to("person12@example.org")).startswith(
        "Dear Person 12, sorry."
    )
    auditor = login_as("auditor")
    assert auditor.post(url + "/correct", data={}).status_code == 403


def test_each_corrected_batch_reaches_the_subscribed_recipients(app):
    """The batch's subject.rectified event gets its deliveries with it, naming records only."""
    _story(app)
    with app.app_context():
        sub = Subscriber(name="Nova", url="https://93.184.216.34/h", events=["subject.rectified"])
        db.session.add(sub)
        db.session.commit()
    _run(app, _open(app), incidents.correct_batch)
    with app.app_context():
        (delivery,) = db.session.execute(select(Delivery)).scalars().all()
        body = json.loads(webhooks.body_of(delivery))
        assert body["type"] == "subject.rectified" and body["incident"].startswith("INC-")
        assert len(body["records"]) == 12 and "subject" not in body
