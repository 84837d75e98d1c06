"""Incidents: find every member a fault touched, correct them all in resumable batches (a
second run changes nothing), tell each of them once, and show the incident in their report."""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from rights.access import access
from rights.contest import incidents
from rights.erasure import erasure
from rights.errors import Invalid
from rights.holdings import records
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
    # m-1's award is held back by their own request: decided there, not by the incident,
    # but m-1 is one of the members touched, shown with the request that decides it.
    assert "<strong>11</strong> award(s) still to correct" in page
    assert "m-12" in page and "m-13" not in page and "<td>m-1</td>" in page
    reference = _reference(app, rid)
    assert f'decided on <a href="/dashboard/requests/{rid}">{reference}</a>' in page
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


# --- Everyone the fault touched is counted and told (issue 15) ---------------------------

TITLE = "About your Nova X1 phone"
APOLOGY_SUBJECT = "About your {perk}"
APOLOGY_BODY = "Dear {name}, we are sorry about your {perk} ({incident})."


def _reference(app, request_id) -> str:
    with app.app_context():
        return requests.get(request_id).reference


def _rectify(app, n=1, *, approve=False) -> str:
    """Member ``n`` asks, through the platform, to correct their award; approved if asked."""
    with app.app_context():
        req = requests.file(
            type="rectification",
            member_id=f"m-{n}",
            channel="api",
            verified=True,
            actor="t",
            details={"records": [f"aw-{n}"], "correction": "Never received."},
        )
        if approve:
            requests.approve(req, actor="officer:1")
        db.session.commit()
        return req.id


def _apologise(app, incident_id):
    with app.app_context():
        incidents.set_apology(
            incidents.get(incident_id),
            subject=APOLOGY_SUBJECT,
            body=APOLOGY_BODY,
            actor="officer:1",
        )
        db.session.commit()


def _scope(app, incident_id):
    with app.app_context():
        return incidents.touched(incidents.get(incident_id))


def _apologies(mailbox, address) -> list:
    return [m for m in mailbox.to(address) if m["Subject"] == TITLE]


def _award_history(external_id) -> list[tuple]:
    award = records.by_external(PerkAward, external_id)
    return db.session.execute(
        select(RecordHistory.reason, RecordHistory.request_id)
        .where(RecordHistory.record_type == "perk_awards", RecordHistory.record_id == award.id)
        .order_by(RecordHistory.id)
    ).all()


def _incident_record(external_id) -> IncidentRecord:
    award = records.by_external(PerkAward, external_id)
    return db.session.execute(
        select(IncidentRecord).where(IncidentRecord.record_id == award.id)
    ).scalar_one()


def _text(page: str) -> str:
    """A page's text, tags dropped and white space collapsed (what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_a_member_whose_own_request_holds_the_award_back_is_counted_decided_and_told(app, mailbox):
    _story(app)
    rid = _rectify(app, 1)
    reference = _reference(app, rid)
    incident_id = _open(app)
    scope = _scope(app, incident_id)
    assert (scope.members, scope.decided, scope.to_correct, scope.to_correct_awards) == (
        12,
        1,
        11,
        11,
    )
    (sam,) = [r for r in scope.rows if r["member"] == "m-1"]
    assert sam["state"] == "decided" and sam["request_reference"] == reference
    _run(app, incident_id, incidents.correct_batch)
    with app.app_context():
        assert incidents.get(incident_id).corrected == 11
        # Sam's award is his request's to decide: the incident did not touch it.
        assert records.by_external(PerkAward, "aw-1").status == "received"
        assert not any("incident" in (reason or "") for reason, _ in _award_history("aw-1"))
        record = _incident_record("aw-1")
        assert record.decided_by_request_id == rid and record.corrected_at is None
        (batch,) = db.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "incident.batch_corrected")
        ).scalars()
        assert batch["awards"] == 11 and batch["decided"] == 1
    scope = _scope(app, incident_id)
    assert (scope.members, scope.corrected, scope.decided, scope.to_correct) == (12, 11, 1, 0)
    assert scope.to_tell == 12
    _apologise(app, incident_id)
    sent, _ = _run(app, incident_id, incidents.notify_batch)
    assert sent == 12
    assert _run(app, incident_id, incidents.notify_batch) == (0, 1)
    deliver(app)
    (apology,) = _apologies(mailbox, "person1@example.org")
    assert mailbox.body(apology).startswith("Dear Person 1, we are sorry about your Nova X1")
    assert all(len(_apologies(mailbox, f"person{n}@example.org")) == 1 for n in range(1, 13))
    assert _scope(app, incident_id).to_tell == 0


@pytest.mark.parametrize("opened", ["before", "after"])
def test_a_member_whose_own_approved_request_corrected_the_award_is_counted_decided(
    app, mailbox, opened
):
    _story(app)
    if opened == "before":
        incident_id = _open(app)
    rid = _rectify(app, 1, approve=True)
    if opened == "after":
        incident_id = _open(app)
    reference = _reference(app, rid)
    scope = _scope(app, incident_id)
    assert (scope.members, scope.decided, scope.to_correct_awards) == (12, 1, 11)
    (sam,) = [r for r in scope.rows if r["member"] == "m-1"]
    assert sam["state"] == "decided" and sam["request_reference"] == reference
    _run(app, incident_id, incidents.correct_batch)
    with app.app_context():
        assert incidents.get(incident_id).corrected == 11
        # Corrected once, by his request; the incident wrote nothing on it.
        history = _award_history("aw-1")
        assert [r for r in history if r[1] == rid and "accepted" in r[0]]
        assert not any("incident" in (reason or "") for reason, _ in history)
        assert _incident_record("aw-1").decided_by_request_id == rid
    _apologise(app, incident_id)
    assert _run(app, incident_id, incidents.notify_batch)[0] == 12
    deliver(app)
    assert len(_apologies(mailbox, "person1@example.org")) == 1


def test_a_member_with_two_matching_awards_is_told_once(app, mailbox):
    _story(app)
    with app.app_context():
        factories.award(100, 3, status="received", source="fulfilment-sync")
        db.session.commit()
    incident_id = _open(app)
    scope = _scope(app, incident_id)
    assert (scope.members, scope.awards, scope.to_correct_awards) == (12, 13, 13)
    _run(app, incident_id, incidents.correct_batch)
    with app.app_context():
        assert incidents.get(incident_id).corrected == 13
    _apologise(app, incident_id)
    assert _scope(app, incident_id).to_tell == 12
    sent, _ = _run(app, incident_id, incidents.notify_batch)
    assert sent == 12
    assert _run(app, incident_id, incidents.notify_batch)[0] == 0
    deliver(app)
    assert len(_apologies(mailbox, "person3@example.org")) == 1
    with app.app_context():
        queued = select(func.count()).where(OutboxMessage.topic == "notice.incident")
        assert db.session.execute(queued).scalar_one() == 12
        assert incidents.get(incident_id).notified == 12


def test_the_list_of_people_touched_outlives_the_correction(app, login_as):
    _story(app)
    rid = _rectify(app, 1)
    reference = _reference(app, rid)
    incident_id = _open(app)
    officer = login_as("officer")
    url = f"/dashboard/incidents/{incident_id}"
    assert "12 members touched" in _text(officer.get(url).get_data(as_text=True))
    assert officer.post(url + "/correct", data={}).status_code == 303
    page = officer.get(url).get_data(as_text=True)
    assert "No award matches any more" not in page
    assert re.findall(r"<td>(m-\d+)</td>", page) == [f"m-{n}" for n in range(1, 13)]
    assert f'decided on <a href="/dashboard/requests/{rid}">{reference}</a>' in page
    assert page.count("corrected by this incident") == 11
    text = _text(page)
    assert "12 members touched" in text
    assert "Corrected by this incident 11 members (11 awards)" in text
    assert "Decided on their own request 1 member" in text
    assert "0 award(s) still to correct (0 members)" in text
    assert "Send to 12 member(s)" not in page  # no apology written yet


def test_the_touched_list_shows_the_first_fifty_with_the_total(app, login_as):
    _story(app, faulty=53, fine=0)
    incident_id = _open(app)
    page = login_as("auditor").get(f"/dashboard/incidents/{incident_id}").get_data(as_text=True)
    assert len(re.findall(r"<td>m-\d+</td>", page)) == 50
    assert "first 50 of 53 awards" in _text(page)


def test_correcting_and_sending_each_ask_for_confirmation_first(app, login_as):
    _story(app)
    rid = _rectify(app, 1)
    reference = _reference(app, rid)
    incident_id = _open(app)
    officer = login_as("officer")
    url = f"/dashboard/incidents/{incident_id}"
    page = officer.get(url).get_data(as_text=True)
    assert f'<form method="get" action="{url}/correct">' in page  # a page first, not a POST
    confirm = officer.get(url + "/correct")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    text = _text(page)
    assert "12 members touched" in text
    assert "11 awards of 11 members" in text and "1 member decided on their own request" in text
    assert reference in page
    assert f'<form method="post" action="{url}/correct">' in page
    assert "Correct all 11" in page
    with app.app_context():  # looking changed nothing
        assert incidents.get(incident_id).corrected == 0
    assert officer.post(url + "/correct", data={}).status_code == 303
    # Before the apology is written there is nothing to send.
    page = officer.get(url + "/notify").get_data(as_text=True)
    assert "Write the apology first" in page and f'action="{url}/notify"' not in page
    saved = officer.post(
        url + "/apology",
        data={"apology_subject": APOLOGY_SUBJECT, "apology_body": APOLOGY_BODY},
    )
    assert saved.status_code == 303
    page = officer.get(url).get_data(as_text=True)
    assert f'<form method="get" action="{url}/notify">' in page and "Send to 12 member(s)" in page
    confirm = officer.get(url + "/notify")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    text = _text(page)
    assert "12 members to tell" in text and "1 decided on their own request" in text
    with app.app_context():
        incident_ref = incidents.get(incident_id).reference
    # The preview is one member's own email, and says whose.
    shown = re.search(
        r"Dear Person (\d+), we are sorry about your Nova X1 phone \((INC-\w+)\)", page
    )
    assert shown and shown.group(2) == incident_ref, text
    assert f"as m-{shown.group(1)} (Person {shown.group(1)}) will receive it" in text
    assert TITLE in page and "{name}" not in page.split("will receive it")[1]
    assert f'<form method="post" action="{url}/notify">' in page
    with app.app_context():  # looking sent nothing
        queued = select(func.count()).where(OutboxMessage.topic == "notice.incident")
        assert db.session.execute(queued).scalar_one() == 0
    assert officer.post(url + "/notify", data={}).status_code == 303
    with app.app_context():
        assert db.session.execute(queued).scalar_one() == 12
    page = officer.get(url).get_data(as_text=True)
    assert "Send to" not in page
    assert "Everyone touched has been told" in _text(officer.get(url + "/notify").get_data(True))


def test_erased_members_are_counted_but_never_written_to(app, mailbox):
    _story(app)
    incident_id = _open(app)
    _run(app, incident_id, incidents.correct_batch)
    with app.app_context():
        req = requests.file(
            type="erasure", member_id="m-2", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        erasure.run(req.id)
        db.session.commit()
    scope = _scope(app, incident_id)
    assert (scope.members, scope.erased, scope.to_tell) == (12, 1, 11)
    (gone,) = [r for r in scope.rows if r["erased"]]
    assert gone["award"] == "aw-2" and gone["state"] == "corrected" and not gone["told"]
    _apologise(app, incident_id)
    sent, _ = _run(app, incident_id, incidents.notify_batch)
    assert sent == 11
    deliver(app)
    assert not _apologies(mailbox, "person2@example.org")
    assert len(_apologies(mailbox, "person3@example.org")) == 1
    with app.app_context():
        queued = select(func.count()).where(OutboxMessage.topic == "notice.incident")
        assert db.session.execute(queued).scalar_one() == 11
