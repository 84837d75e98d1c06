"""The officers' work on the dashboard: the queue and its CSV, a request's page and records,
each action with its rules and its notice, the audit trail page and the home page's figures."""

import csv
import io
import re
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select, text, update

from rights.lifecycle import requests
from storage.clock import utcnow
from storage.db import db
from storage.models import AuditEvent, RequestEvent
from tests import factories
from tests.helpers import deliver


def _file(app, type_="restriction", n=1, *, days_ago=0, verified=True, email=None):
    """A request received ``days_ago`` days ago (filed under a frozen clock)."""
    with app.app_context(), freeze_time(utcnow() - timedelta(days=days_ago)):
        if email is None:
            if not db.session.execute(
                text("SELECT 1 FROM members WHERE external_id = :m"), {"m": f"m-{n}"}
            ).first():
                factories.member(n)
            req = requests.file(
                type=type_, member_id=f"m-{n}", channel="api", verified=verified, actor="test"
            )
        else:
            req = requests.file(type=type_, email=email, channel="web", actor="subject")
        db.session.commit()
        return req.id, req.reference


def _get(client, url):
    resp = client.get(url)
    body = resp.get_data(as_text=True)
    resp.close()
    return resp.status_code, body


def _status(app, rid):
    with app.app_context():
        return requests.get(rid).status


# --- the queue ---------------------------------------------------------------------------


def test_queue_shows_deadlines_and_flags_overdue_and_due_soon(app, login_as):
    _, overdue = _file(app, n=1, days_ago=40)
    _, soon = _file(app, n=2, days_ago=27)
    _, calm = _file(app, n=3, days_ago=1)
    officer = login_as("officer")
    status, page = _get(officer, "/dashboard/requests")
    assert status == 200
    rows = {
        ref: row for row in page.split("<tr")[1:] for ref in (overdue, soon, calm) if ref in row
    }
    assert 'class="row-overdue"' in rows[overdue] and "Overdue by" in rows[overdue]
    assert 'class="row-soon"' in rows[soon] and "due soon" in rows[soon]
    assert "row-" not in rows[calm].split(">")[0]
    # Soonest deadline first.
    assert page.index(overdue) < page.index(soon) < page.index(calm)


def test_queue_filters(app, login_as):
    _, erasure = _file(app, "erasure", email="someone@example.net")
    _, overdue = _file(app, "objection", n=2, days_ago=40)
    _, access = _file(app, "access", n=3)  # answered at once
    officer = login_as("officer")
    _, page = _get(officer, "/dashboard/requests?type=erasure")
    assert erasure in page and overdue not in page
    _, page = _get(officer, "/dashboard/requests?due=overdue")
    assert overdue in page and erasure not in page
    _, page = _get(officer, "/dashboard/requests?channel=web")
    assert erasure in page and overdue not in page
    _, page = _get(officer, "/dashboard/requests")  # default: what needs an answer
    assert access not in page
    _, page = _get(officer, "/dashboard/requests?status=completed")
    assert access in page and erasure not in page
    _, page = _get(officer, "/dashboard/requests?status=all&type=")  # a cleared select
    assert access in page and erasure in page
    status, page = _get(officer, "/dashboard/requests?status=bogus")
    assert status == 422 and "Some filters are not valid" in page


def test_search_by_email_goes_through_the_blind_index_and_not_the_url(app, login_as):
    _, ref = _file(app, "erasure", email="Sam.Rivera@Example.com")
    _, other = _file(app, "erasure", email="someone@example.net")
    officer = login_as("officer")
    resp = officer.post("/dashboard/requests/search", data={"email": "sam.rivera@example.com"})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert "sam" not in location.lower() and "subject=sub_" in location
    _, page = _get(officer, location)
    assert ref in page and other not in page
    unknown = officer.post("/dashboard/requests/search", data={"email": "nobody@example.org"})
    _, page = _get(officer, unknown.headers["Location"])
    assert "No requests match" in page
    bad = officer.post("/dashboard/requests/search", data={"email": "not an email"})
    assert bad.status_code == 422
    with app.app_context():
        trail = db.session.execute(select(AuditEvent.details, AuditEvent.target)).all()
        assert "sam.rivera" not in repr(trail).lower()


def test_queue_paginates(app, login_as):
    for n in range(1, 56):
        _file(app, n=n)
    officer = login_as("officer")
    _, first = _get(officer, "/dashboard/requests?type=restriction")
    assert "Page 1 of 2" in first and "55 requests" in first
    link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "type=restriction" in link and "page=2" in link
    _, second = _get(officer, link)
    assert "Page 2 of 2" in second and second.count('class="status status-open"') == 5


def test_csv_export_of_the_queue_is_complete_safe_and_audited(app, login_as):
    rid, ref = _file(app, n=1)
    _file(app, n=2, days_ago=3)
    officer = login_as("officer")
    refuse = officer.post(
        f"/dashboard/requests/{rid}/refuse",
        data={"reason": '=HYPERLINK("http://evil") repeated request within a month'},
    )
    assert refuse.status_code == 303
    auditor = login_as("auditor")
    resp = auditor.get("/dashboard/requests.csv?status=all")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    resp.close()
    assert len(rows) == 2
    refused = next(r for r in rows if r["reference"] == ref)
    assert refused["status"] == "refused" and refused["decision"] == "refused"
    assert refused["reason"].startswith("'=HYPERLINK")  # never run as a formula
    assert refused["decided_by"].startswith("Officer ")  # the officer's name, not an id
    assert refused["deadline"] and refused["received"] and refused["completed"] == ""
    with app.app_context():
        entry = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "queue.exported")
        ).scalar_one()
        assert entry.details == {"rows": 2, "status": "all"}
        assert entry.actor == f"officer:{auditor.officer_id}"


# --- a request ----------------------------------------------------------------------------


def test_request_page_shows_timeline_notices_and_records_with_provenance(app, login_as):
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="offered")
        factories.award(1, 1, status="received", source="fulfilment-sync")
        db.session.commit()
    rid, ref = _file(app, "rectification", n=1)
    officer = login_as("officer")
    _, page = _get(officer, f"/dashboard/requests/{rid}")
    assert ref in page and "person1@example.org" in page and "m-1" in page
    assert "verified" in page and "received" in page  # timeline
    assert "We received your request" in page  # the notice, readable by officers
    status, records = _get(officer, f"/dashboard/requests/{rid}/records")
    assert status == 200
    assert "Nova X1 phone" in records and "How this got here" in records
    assert "fulfilment-sync" in records and "award-engine" in records
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
        assert "request.viewed" in actions and "request.records_viewed" in actions


def test_evidence_is_served_to_officers_as_an_attachment_and_audited(app, login_as):
    from storage import vault
    from storage.models import EvidenceAttachment

    rid, _ = _file(app, "rectification", n=1)
    with app.app_context():
        req = requests.get(rid)
        item = EvidenceAttachment(
            request_id=rid,
            subject_id=req.subject_id,
            media_type="image/png",
            content_enc=vault.encrypt(req.subject_id, "evidence_attachments.content_enc", b"PNG"),
        )
        db.session.add(item)
        db.session.commit()
        att = item.id
    other_rid, _ = _file(app, "rectification", n=2)
    officer = login_as("officer")
    resp = officer.get(f"/dashboard/requests/{rid}/evidence/{att}")
    assert resp.status_code == 200 and resp.data == b"PNG"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.headers["Cache-Control"] == "no-store"
    # Per object: the attachment belongs to its own request only.
    assert officer.get(f"/dashboard/requests/{other_rid}/evidence/{att}").status_code == 404
    with app.app_context():
        assert db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "evidence.viewed")
        ).scalar_one()


def test_refusal_needs_a_reason_and_tells_the_subject_how_to_complain(app, login_as, mailbox):
    rid, ref = _file(app, n=1)
    officer = login_as("officer")
    empty = officer.post(f"/dashboard/requests/{rid}/refuse", data={"reason": "   "})
    assert empty.status_code == 422
    assert "Why is the request refused?" in empty.get_data(as_text=True)
    assert _status(app, rid) == "open"
    done = officer.post(
        f"/dashboard/requests/{rid}/refuse", data={"reason": "We hold no such records."}
    )
    assert done.status_code == 303
    assert _status(app, rid) == "refused"
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    assert "We hold no such records." in body and "lodge a complaint" in body
    assert "judicial remedy" in body
    again = officer.get(f"/dashboard/requests/{rid}/refuse", follow_redirects=True)
    assert "not possible for a request that is refused" in again.get_data(as_text=True)


def test_extension_rules(app, login_as, mailbox):
    rid, _ = _file(app, n=1, days_ago=10)
    late_rid, _ = _file(app, n=2, days_ago=35)
    officer = login_as("officer")
    no_reason = officer.post(f"/dashboard/requests/{rid}/extend", data={"months": "1"})
    assert no_reason.status_code == 422
    three = officer.post(f"/dashboard/requests/{rid}/extend", data={"months": "3", "reason": "x"})
    assert three.status_code == 422  # one or two months only
    with app.app_context():
        due_before = requests.get(rid).due_at
    ok = officer.post(
        f"/dashboard/requests/{rid}/extend", data={"months": "2", "reason": "Twelve years of data"}
    )
    assert ok.status_code == 303
    with app.app_context():
        req = requests.get(rid)
        assert req.extension_months == 2 and req.due_at > due_before + timedelta(days=55)
    twice = officer.post(f"/dashboard/requests/{rid}/extend", data={"months": "1", "reason": "y"})
    assert twice.status_code == 303  # the action is no longer offered…
    with app.app_context():
        assert requests.get(rid).extension_months == 2  # …and nothing changed
    _, page = _get(officer, f"/dashboard/requests/{rid}")
    assert f'/dashboard/requests/{rid}/extend"' not in page
    # After the first month, too late to extend.
    late = officer.post(
        f"/dashboard/requests/{late_rid}/extend", data={"months": "1", "reason": "z"}
    )
    assert late.status_code == 303
    with app.app_context():
        assert requests.get(late_rid).extended_at is None
    deliver(app)
    assert "Twelve years of data" in mailbox.body(mailbox.last_to("person1@example.org"))


def test_manual_verification_records_the_reason_under_the_subjects_key(app, login_as, mailbox):
    rid, ref = _file(app, "erasure", email="caller@example.net")
    officer = login_as("officer")
    bad = officer.post(f"/dashboard/requests/{rid}/verify", data={"reason": ""})
    assert bad.status_code == 422
    reason = "Called back on the number on file; they read out the reference."
    assert (
        officer.post(f"/dashboard/requests/{rid}/verify", data={"reason": reason}).status_code
        == 303
    )
    with app.app_context():
        req = requests.get(rid)
        assert req.status == "in_progress"  # an erasure starts at once
        assert req.verification_method == "checked by an officer"
        event = db.session.execute(
            select(RequestEvent).where(
                RequestEvent.request_id == rid, RequestEvent.kind == "verified"
            )
        ).scalar_one()
        assert reason.encode() not in event.note_enc and event.note is not None
        assert requests.event_text(req, event) == reason
    _, page = _get(officer, f"/dashboard/requests/{rid}")
    assert reason in page


def test_approving_a_restriction_completes_it_and_tells_the_subject(app, login_as, mailbox):
    rid, _ = _file(app, n=1)
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/approve", data={"note": ""}).status_code == 303
    with app.app_context():
        req = requests.get(rid)
        assert req.status == "completed" and req.decided_by == f"officer:{officer.officer_id}"
    deliver(app)
    assert "We have done what you asked" in mailbox.last_to("person1@example.org")["Subject"]


def test_asking_for_information_and_the_subjects_answer(app, login_as, mailbox):
    rid, ref = _file(app, "rectification", n=1)
    officer = login_as("officer")
    question = "Which award do you mean? Please give its date."
    assert (
        officer.post(f"/dashboard/requests/{rid}/ask", data={"question": question}).status_code
        == 303
    )
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    assert question in body
    link = re.search(r"http://lethe.test(/resume/\S+)", body).group(1)
    subject = app.test_client()
    assert subject.post(link, data={}).status_code == 303
    _, page = _get(subject, f"/requests/{ref}")
    assert question in page and "Send my answer" in page
    empty = subject.post(f"/requests/{ref}/answer", data={"answer": ""})
    assert empty.status_code == 422 and "Write your answer." in empty.get_data(as_text=True)
    answer = "The one from August, the Nova X1."
    assert subject.post(f"/requests/{ref}/answer", data={"answer": answer}).status_code == 303
    _, page = _get(subject, f"/requests/{ref}")
    assert "Send my answer" not in page  # answered
    _, officer_page = _get(officer, f"/dashboard/requests/{rid}")
    assert answer in officer_page and "information received" in officer_page
    # Nobody else can answer: the page needs the subject's link.
    assert (
        app.test_client().post(f"/requests/{ref}/answer", data={"answer": "x"}).status_code == 404
    )


def test_cancel_at_the_subjects_request(app, login_as, mailbox):
    rid, _ = _file(app, n=1)
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/cancel", data={"reason": ""}).status_code == 422
    resp = officer.post(
        f"/dashboard/requests/{rid}/cancel", data={"reason": "Phoned on 3 March to cancel."}
    )
    assert resp.status_code == 303
    assert _status(app, rid) == "withdrawn"
    deliver(app)
    assert "withdrawn" in mailbox.last_to("person1@example.org")["Subject"]


def test_every_action_is_in_the_audit_trail_with_no_personal_data(app, login_as):
    rid, _ = _file(app, n=1)
    officer = login_as("officer")
    officer.post(f"/dashboard/requests/{rid}/ask", data={"question": "Is person1 you?"})
    officer.post(f"/dashboard/requests/{rid}/extend", data={"months": "1", "reason": "person1"})
    officer.post(f"/dashboard/requests/{rid}/refuse", data={"reason": "person1@example.org"})
    with app.app_context():
        entries = db.session.execute(select(AuditEvent)).scalars().all()
        actions = [e.action for e in entries if e.actor == f"officer:{officer.officer_id}"]
        for expected in (
            "officer.login",
            "request.assigned",
            "request.information_requested",
            "request.extended",
            "request.refused",
        ):
            assert expected in actions
        dump = repr([(e.actor, e.action, e.subject_ref, e.target, e.details) for e in entries])
        assert "person1" not in dump


# --- the audit trail page ----------------------------------------------------------------------


def test_audit_page_verifies_the_chain_and_shows_tampering(app, login_as):
    _file(app, n=1)
    auditor = login_as("auditor")
    ok = auditor.post("/dashboard/audit/verify", data={}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "The chain is intact" in ok
    with app.app_context():
        first = db.session.execute(select(AuditEvent.id).order_by(AuditEvent.id).limit(1))
        target = first.scalar_one()
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == target).values(actor="someone-else")
        )
        db.session.commit()
    bad = auditor.post("/dashboard/audit/verify", data={}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "has been tampered with" in bad and f"from id {target}" in bad
    _, listing = _get(auditor, "/dashboard/audit?action=officer.login")
    assert "officer.login" in listing and "request.received" not in listing


# --- home -----------------------------------------------------------------------------------


def test_home_figures(app, login_as):
    _file(app, "access", n=1, days_ago=2)  # closed at once, on time
    _file(app, n=2, days_ago=40)  # overdue
    _file(app, n=3, days_ago=27)  # due within 7 days
    rid, _ = _file(app, n=4, days_ago=3)
    officer = login_as("officer")
    officer.post(f"/dashboard/requests/{rid}/ask", data={"question": "Which one?"})  # takes it
    status, page = _get(officer, "/dashboard/")
    assert status == 200
    tiles = re.sub(r"\s+", " ", page)
    assert "<strong>1</strong> overdue" in tiles
    assert "<strong>1</strong> due within 7 days" in tiles
    assert "<strong>3</strong> waiting for an answer" in tiles
    assert "<strong>100%</strong> closed on time (1 of 1" in tiles
    assert "<svg" in page and "<script" not in page and "https://" not in page.split("<footer")[0]
    # The chart's table: 4 requests in the last weeks, one of them access.
    table = page.split("Requests received per week (week starting)")[1].split("</table>")[0]
    access_row = re.search(r"<th scope=\"row\">access</th>(.*?)</tr>", table).group(1)
    assert sum(int(n) for n in re.findall(r"<td>(\d+)</td>", access_row)) == 1
    assert "Your requests" in page and page.count("/dashboard/requests/" + rid) >= 1


def test_downloads_are_audited(app, client, api_key):
    with app.app_context():
        factories.member(1)
        db.session.commit()
    filed = client.post(
        "/api/v1/requests",
        json={"type": "access", "member_id": "m-1", "verified": True},
        headers=api_key,
    ).get_json()
    resp = client.get(filed["result"]["report_url"], headers=api_key)
    assert resp.status_code == 200 and resp.get_json()["request"]["reference"]
    resp.close()
    with app.app_context():
        entry = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "request.downloaded")
        ).scalar_one()
        assert entry.actor == "apikey:test-platform" and entry.details["what"].startswith("access")
        assert entry.subject_ref.startswith("sub_")


def test_overview_figures_are_counted_in_the_database(app):
    from rights.reports import reporting

    start = utcnow() - timedelta(days=60)
    # Closed after 2, 4, 10 and 40 days (the last one late): median 7, 3 of 4 on time.
    for n, days in enumerate((2, 4, 10, 40), start=1):
        rid, _ = _file(app, n=n, days_ago=(utcnow() - start).days)
        with app.app_context(), freeze_time(start + timedelta(days=days)):
            requests.approve(requests.get(rid), actor="test")
            db.session.commit()
    _file(app, "erasure", email="someone@example.net")  # open, due in a month
    with app.app_context():
        figures = reporting.overview()
    assert figures.closed == 4 and figures.closed_on_time == 3
    assert figures.median_days_to_close == 7.0
    assert dict(figures.open_by_days_left)["30+ days"] == 0
    assert dict(figures.open_by_days_left)["14–29 days"] == 1 and figures.open_total == 1
    assert sum(figures.received["restriction"]) == 4 and sum(figures.received["erasure"]) == 1


def test_officers_never_see_the_subjects_links_or_record_key(app, login_as):
    from rights.erasure import erasure

    rid, _ = _file(app, "erasure", email="person9@example.org")  # a verify link is mailed
    with app.app_context():
        factories.member(5)
        db.session.commit()
        done = requests.file(
            type="erasure", member_id="m-5", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        done_id = done.id
        erasure.run(done_id)  # the last message carries the record key
    auditor = login_as("auditor")
    for request_id in (rid, done_id):
        _, page = _get(auditor, f"/dashboard/requests/{request_id}")
        assert not re.search(r"/(verify|resume)/[A-Za-z0-9_-]{20,}", page)
        # No receipt or key: no JWS (a CSRF token may happen to contain "eyJ" somewhere).
        assert "Your record key" not in page
        assert not re.search(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.", page)
    _, page = _get(auditor, f"/dashboard/requests/{rid}")
    assert "personal link, not shown]" in page
    _, page = _get(auditor, f"/dashboard/requests/{done_id}")
    assert "Not shown: it carries the subject" in page


def test_a_running_erasure_can_only_be_carried_through(app, login_as):
    from rights.erasure import erasure

    with app.app_context():
        factories.member(1)
        db.session.commit()
        req = requests.file(
            type="erasure", member_id="m-1", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        rid = req.id
        erasure._plan(requests.get(rid))  # the worker has begun
        db.session.commit()
    officer = login_as("officer")
    _, page = _get(officer, f"/dashboard/requests/{rid}")
    for action in ("refuse", "cancel", "approve"):
        assert f"/dashboard/requests/{rid}/{action}" not in page
    resp = officer.post(f"/dashboard/requests/{rid}/refuse", data={"reason": "no"})
    assert resp.status_code == 303
    assert _status(app, rid) == "in_progress"
    with app.app_context():
        from rights.errors import InvalidTransition

        try:
            requests.refuse(requests.get(rid), reason="no", actor="t")
        except InvalidTransition:
            db.session.rollback()
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("a started erasure was refused")


def test_closed_requests_are_not_reassigned(app, login_as):
    rid, _ = _file(app, "access", n=1)  # completed at once
    admin = login_as("admin")
    _, page = _get(admin, f"/dashboard/requests/{rid}")
    assert "Reassign" not in page and "Take this request" not in page
    resp = admin.post(f"/dashboard/requests/{rid}/assign", data={"officer": admin.officer_id})
    assert resp.status_code == 303
    with app.app_context():
        assert requests.get(rid).assignee_id is None
