"""Notices that say what happened (issue 15): a completion email names each record that changed
by what it is (the perk and its brand) and says how, in plain words before the legal detail;
an erasure's last email says what was kept, until when and why; the link in a completion
email opens the request's page at once (no second email), once; a spent or expired link gets
the invalid-link page with a way to a fresh one; a page whose work is still running refreshes
itself without a script."""

import re
from datetime import datetime
from email.header import decode_header, make_header

from freezegun import freeze_time
from sqlalchemy import select

from demo import loader as demo
from rights.erasure import erasure
from rights.ledger import signing
from rights.lifecycle import notices, requests
from storage.db import db
from storage.models import ErasureRun, Member, RightsRequest
from tests import factories
from tests.helpers import deliver

SAM = demo.STORY_EMAIL
REFRESH = '<meta http-equiv="refresh" content="5">'
LINK = re.compile(r"http://lethe\.test(/resume/[A-Za-z0-9_\-]+)")
RAW = ("aw-0001", "dl-0001", "pr-0001", "not_received", "perk_awards", "m-0001")


def _story(app) -> str:
    """The demo (Sam's correction filed by the platform, his award held back); its id."""
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        sam = db.session.execute(
            select(Member).where(Member.external_id == demo.STORY_MEMBER)
        ).scalar_one()
        return db.session.execute(
            select(RightsRequest.id).where(
                RightsRequest.subject_id == sam.subject_id, RightsRequest.type == "rectification"
            )
        ).scalar_one()


def _approve(app, request_id: str) -> str:
    with app.app_context():
        req = requests.get(request_id)
        requests.approve(req, actor="officer:1")
        db.session.commit()
        return req.reference


def _last(mailbox, address: str, title: str) -> str:
    found = [m for m in mailbox.to(address) if m["Subject"].endswith(title)]
    assert found, [m["Subject"] for m in mailbox.to(address)]
    return mailbox.body(found[-1]).replace("\r\n", "\n")


def test_a_completed_correction_says_which_records_changed_and_how(app, mailbox):
    reference = _approve(app, _story(app))
    deliver(app)
    body = _last(mailbox, SAM, "We have done what you asked")
    assert body.startswith("We have completed your request for correction of your data.\n")
    changed = body.split("What changed:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert changed == [
        "- Your Nova X1 phone award from Nova Mobile now says not received.",
        "- Your entry on the disclosure list for it was withdrawn.",
        "- The promotion that told your friends you had won it was withdrawn.",
    ]
    # Plain words first, the law after: the remedies come last, after the link.
    assert body.index("What changed") < body.index("/resume/") < body.index("Arts. 77")
    for raw in RAW:
        assert raw not in body, raw
    assert f"Your request reference: {reference}" in body


def test_the_officer_sees_the_notice_but_never_its_link(app, mailbox):
    request_id = _story(app)
    _approve(app, request_id)
    with app.app_context():
        done = [
            n for n in notices.history(requests.get(request_id)) if n["topic"] == "notice.completed"
        ]
        assert len(done) == 1
        assert "now says not received" in done[0]["body"]
        assert "/resume/[the subject's personal link, not shown]" in done[0]["body"]
        assert not LINK.search(done[0]["body"])


def test_a_corrected_profile_names_the_fields_never_their_values(app, mailbox):
    with app.app_context():
        factories.member(1, address="1 Old Road")
        req = requests.file(
            type="rectification",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="platform",
            details={"records": ["profile.name", "profile.address"], "correction": "moved"},
        )
        requests.approve(
            req, actor="officer:1", profile={"name": "Pat Doe", "address": "2 New Street"}
        )
        db.session.commit()
    deliver(app)
    body = _last(mailbox, "person1@example.org", "We have done what you asked")
    assert "What changed:\n- Your name and postal address were corrected.\n\n" in body
    assert "Pat Doe" not in body and "New Street" not in body


def test_a_completed_restriction_names_what_it_holds_back(app, mailbox):
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received")
        req = requests.file(
            type="restriction",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="platform",
            details={"records": ["aw-1"]},
        )
        requests.approve(req, actor="officer:1")
        db.session.commit()
    deliver(app)
    body = _last(mailbox, "person1@example.org", "We have done what you asked")
    assert "- Your Nova X1 phone award from Nova Mobile is held back.\n" in body
    assert "Held back means we keep these records but do not use them or pass them on" in body
    assert "aw-1" not in body


def test_an_absolute_objection_says_what_it_withdrew(app, mailbox):
    with app.app_context():
        factories.member(1)
        factories.consent(1, 1, purpose="email_marketing")
        requests.file(
            type="objection",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="platform",
            details={"purpose": "direct_marketing"},
        )
        db.session.commit()
    deliver(app)
    body = _last(mailbox, "person1@example.org", "We have done what you asked")
    assert "- Your consent to marketing emails was withdrawn.\n" in body


def test_the_erasure_email_says_what_was_kept_until_when_and_why(app, mailbox):
    request_id = _story(app)
    with app.app_context():
        req = requests.file(
            type="erasure", member_id=demo.STORY_MEMBER, channel="api", verified=True, actor="t"
        )
        db.session.commit()
        receipt = erasure.run(req.id)
        kept = {
            c["category"]: f"{(d := datetime.fromisoformat(c['retain_until'])).day} {d:%B %Y}"
            for c in signing.claims_of(receipt.jws)["categories"]
            if c["action"] == "retained"
        }
        assert requests.get(request_id).status == "withdrawn"  # superseded by the erasure
    deliver(app)
    body = _last(mailbox, SAM, "Your data has been erased")
    assert body.startswith("We have erased your data.\n\nWhat we kept, until when, and why")
    assert (
        f"- Your Nova X1 phone award from Nova Mobile: kept until {kept['perk_awards']}, "
        "because the law requires us to keep it (Art. 17(3)(b) GDPR: compliance with a legal "
        "obligation (FTC Endorsement Guides, 16 CFR 255.5: records of material connections))."
    ) in body
    assert (
        "- Your entry on the disclosure list for the Nova X1 phone from Nova Mobile: kept until "
        f"{kept['disclosures']}, because the law requires us to keep it (Art. 17(3)(b)"
    ) in body
    assert (
        f"- Your requests to us: kept until {kept['rights_requests']}, because we may need it "
        "to show what happened if there is ever a legal claim (Art. 17(3)(e)"
    ) in body
    assert (
        "- Your record of consent to the use of your name and picture in promotions; your "
        "record of consent to marketing emails: kept until"
    ) in body
    # The answer first, then the record key and the link; the receipt itself last.
    assert body.index("kept until") < body.index("Your record key") < body.index("/resume/")
    for raw in RAW:
        assert raw not in body.split("Your signed deletion receipt")[0], raw


def test_the_link_in_a_completion_email_opens_the_page_once(app, client, mailbox):
    reference = _approve(app, _story(app))
    deliver(app)
    sent = len(mailbox.to(SAM))
    path = LINK.search(_last(mailbox, SAM, "We have done what you asked")).group(1)
    # One GET (mail scanners follow it: it changes nothing), one POST: the page is open.
    page = client.get(path)
    assert page.status_code == 200 and "Continue" in page.get_data(as_text=True)
    opened = client.post(path)
    assert opened.status_code == 303
    assert opened.headers["Location"] == f"/requests/{reference}"
    status = client.get(f"/requests/{reference}").get_data(as_text=True)
    assert "completed" in status and "Email me a new link" not in status
    deliver(app)
    assert len(mailbox.to(SAM)) == sent  # no second email was needed
    # Spent: another browser with the same link gets the invalid-link page, and a way on.
    again = app.test_client().post(path)
    assert again.status_code == 400
    text = again.get_data(as_text=True)
    assert "not valid any more" in text
    assert f'action="/requests/{reference}/link"' in text and reference in text


def test_a_spent_or_expired_link_offers_a_fresh_one(app, client, mailbox):
    with freeze_time("2026-11-01T10:00:00Z"):
        reference = _approve(app, _story(app))
        deliver(app)
    path = LINK.search(_last(mailbox, SAM, "We have done what you asked")).group(1)
    with freeze_time("2026-11-02T10:00:01Z"):  # VERIFICATION_TTL_HOURS (24) later
        for answer in (client.get(path), client.post(path)):
            assert answer.status_code == 400
            assert f'action="/requests/{reference}/link"' in answer.get_data(as_text=True)
        mailbox.clear()
        assert client.post(f"/requests/{reference}/link").status_code == 303
        deliver(app)
        fresh = LINK.search(_last(mailbox, SAM, "Your link to your request")).group(1)
        assert client.post(fresh).headers["Location"] == f"/requests/{reference}"
    # A link that was never issued says nothing about any request.
    unknown = client.get("/resume/" + "x" * 43).get_data(as_text=True)
    assert "not valid any more" in unknown and "/link" not in unknown


def test_a_running_erasure_page_refreshes_itself_until_it_is_done(app, client, mailbox):
    with app.app_context():
        factories.member(1)
        factories.commit()
    client.post("/requests/new", data={"type": "erasure", "email": "person1@example.org"})
    deliver(app)
    verify = re.search(
        r"http://lethe\.test(/verify/\S+)", mailbox.body(mailbox.last_to("person1@example.org"))
    ).group(1)
    page_url = client.post(verify).headers["Location"]
    running = client.get(page_url).get_data(as_text=True)
    assert "in progress" in running
    assert running.count(REFRESH) == 1 and running.index(REFRESH) < running.index("</head>")
    deliver(app)  # the worker carries the erasure out
    done = client.get(page_url).get_data(as_text=True)
    assert "completed" in done and "Your deletion receipt" in done
    assert "http-equiv" not in done


def test_a_page_showing_the_record_key_never_refreshes_it_away(app, client, mailbox):
    """The receipt (and the record key, shown once) comes before the erasure completes: that
    page must not reload itself, or the key would be gone before it is written down."""
    with app.app_context():
        factories.member(1)
        factories.commit()
    client.post("/requests/new", data={"type": "erasure", "email": "person1@example.org"})
    deliver(app)
    verify = re.search(
        r"http://lethe\.test(/verify/\S+)", mailbox.body(mailbox.last_to("person1@example.org"))
    ).group(1)
    page_url = client.post(verify).headers["Location"]
    with app.app_context():
        request_id = requests.by_reference(page_url.rsplit("/", 1)[1]).id
        for _ in erasure.erase_steps(request_id):  # the worker's steps, up to the receipt
            db.session.commit()
            if db.session.get(ErasureRun, request_id).step == "receipt":
                break
    shown = client.get(page_url).get_data(as_text=True)
    assert "in progress" in shown and "Your record key:" in shown
    assert "http-equiv" not in shown
    assert REFRESH in client.get(page_url).get_data(as_text=True)  # key gone: until it is done


def test_a_page_waiting_for_an_officer_does_not_refresh(app, client, mailbox):
    with app.app_context():
        factories.member(1)
        factories.commit()
    client.post(
        "/requests/new",
        data={"type": "restriction", "email": "person1@example.org", "grounds": "legal_claims"},
    )
    deliver(app)
    verify = re.search(
        r"http://lethe\.test(/verify/\S+)", mailbox.body(mailbox.last_to("person1@example.org"))
    ).group(1)
    page = client.get(client.post(verify).headers["Location"]).get_data(as_text=True)
    assert "open" in page and "http-equiv" not in page


def test_a_request_filed_in_german_gets_its_emails_in_german(app, client, mailbox):
    """Every email about a request is written in the language it was filed in (issue 16),
    whatever the language of the page that moves it on: the link is confirmed here from a page
    in English, and the request's emails stay German."""

    def title(msg) -> str:
        return str(make_header(decode_header(msg["Subject"])))

    with app.app_context():
        factories.member(1)
        factories.commit()
    with freeze_time("2026-03-05T10:00:00Z"):
        client.post(
            "/requests/new",
            data={"type": "access", "email": "person1@example.org"},
            headers={"Accept-Language": "de"},
        )
        deliver(app)
        with app.app_context():
            req = db.session.execute(select(RightsRequest)).scalar_one()
            assert req.locale == "de"
            reference = req.reference
        (sent,) = mailbox.to("person1@example.org")
        assert title(sent) == f"[{reference}] Bitte bestätigen Sie Ihre Anfrage"
        body = mailbox.body(sent)
        assert body.startswith("Wir haben eine Anfrage „Auskunft über Ihre Daten“ erhalten.")
        assert "auf „Bestätigen“" in body and f"Vorgangsnummer Ihrer Anfrage: {reference}" in body
        path = re.search(r"http://lethe\.test(/verify/[A-Za-z0-9_\-]+)", body).group(1)
        assert client.post(path, headers={"Accept-Language": "en"}).status_code == 303
        deliver(app)
    by_title = {
        title(m).split("] ", 1)[1]: mailbox.body(m) for m in mailbox.to("person1@example.org")
    }
    assert by_title["Wir haben Ihre Anfrage erhalten"].startswith(
        "Wir haben Ihre Anfrage „Auskunft über Ihre Daten“ am 5. März 2026 erhalten. "
        "Wir antworten bis zum 5. April 2026."
    )
    assert "Ihr Bericht ist fertig" in by_title
    assert not any("We received" in body for body in by_title.values())
