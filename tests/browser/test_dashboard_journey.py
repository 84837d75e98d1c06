"""A privacy officer works the queue in a real browser: signs in with a password and a TOTP
code, finds the demo story's request by the subject's email, reads the subject's records with
their provenance, extends the deadline, refuses another request (after the form says what is
missing), and reads the notices the subject was sent, which the worker delivers by SMTP."""

import re

import pytest
from playwright.sync_api import expect

from demo import loader as demo
from rights.lifecycle import requests as rights_requests
from storage.clock import utcnow
from storage.db import db
from tests.helpers import wait_for

pytestmark = pytest.mark.browser

# Fixed path on purpose: a developer (or CI log reader) opens it to look at the page.
SCREENSHOT = "/tmp/lethe-dashboard-request.png"  # noqa: S108
OFFICER_EMAIL, _, OFFICER_ROLE, OFFICER_SECRET = demo.DEMO_OFFICERS[1]
assert OFFICER_ROLE == "officer"
REFERENCE = re.compile(r"^LR-[0-9A-Z]{4}-[0-9A-Z]{4}$")
EXTEND_REASON = "The correction touches the award, the disclosure list and a promotion."
REFUSE_REASON = "The objection names no grounds about your particular situation."
COMPLAINT = "You have the right to lodge a complaint with a supervisory authority"


def fact(page, term: str):
    """The <dd> of a <dt> in the request's facts (the first list that has it)."""
    return page.locator(f"dl.facts dt:text-is('{term}') + dd").first


def open_notice(page, title: str):
    """Expand the notice whose summary has ``title``; returns its <details>."""
    section = page.locator("section").filter(
        has=page.get_by_role("heading", name="Notices to the subject")
    )
    notice = section.locator("details").filter(has=page.locator("summary", has_text=title))
    expect(notice).to_have_count(1)
    notice.locator("summary").click()
    expect(notice).to_have_attribute("open", "")
    return notice


def mail_to(mailbox, address: str, subject_part: str) -> str:
    found = wait_for(
        lambda: [m for m in mailbox.to(address) if subject_part in m["Subject"]], timeout=10
    )
    assert len(found) == 1, [m["Subject"] for m in found]
    return mailbox.body(found[0])


def test_officer_extends_one_request_and_refuses_another(page, live_server, mailbox, sign_in):
    with live_server.app.app_context():
        demo.load(extra_members=20)
        db.session.commit()

    sign_in(page, OFFICER_EMAIL, demo.DEMO_PASSWORD, OFFICER_SECRET)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Queue").click()
    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()

    # Find the story's request by the subject's email: posted, never put in the URL.
    page.get_by_label("Subject's email").fill(demo.STORY_EMAIL)
    with page.expect_request(lambda r: r.url.endswith("/dashboard/requests/search")) as sent:
        page.get_by_role("button", name="Find their requests").click()
    assert sent.value.method == "POST", sent.value.method
    assert "sam.rivera%40example.com" in (sent.value.post_data or ""), "email not in the body"
    page.wait_for_url(re.compile(r"/dashboard/requests\?.*subject="))
    for form in (demo.STORY_EMAIL, demo.STORY_EMAIL.replace("@", "%40"), "sam.rivera"):
        assert form not in page.url, page.url
    expect(page.get_by_text(re.compile(r"^1 request for subject"))).to_be_visible()
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("rectification")
    expect(rows).to_contain_text("open")
    story_link = rows.get_by_role("link", name=REFERENCE)
    reference = story_link.text_content().strip()
    story_link.click()
    expect(page.get_by_role("heading", name=f"{reference} · Rectification")).to_be_visible()
    story_url = page.url
    expect(fact(page, "Contact")).to_have_text(demo.STORY_EMAIL)
    due_before = fact(page, "Due").locator("time").get_attribute("datetime")

    # The subject's records: the Nova X1 award, and how it got into its state.
    page.get_by_role("link", name="Their records, with provenance and history").click()
    expect(
        page.get_by_role("heading", name=f"Records of the subject of {reference}")
    ).to_be_visible()
    awards = page.locator("section.category").filter(
        has=page.get_by_role("heading", name="Perk awards")
    )
    award = awards.locator(".record").filter(has_text="aw-0001-nova")
    expect(award).to_have_count(1)
    expect(award).to_contain_text("Nova X1 phone")
    provenance = award.locator("details.provenance")
    expect(provenance.locator(".history")).not_to_be_visible()  # folded until asked for
    provenance.get_by_text("How this got here").click()
    expect(provenance.locator(".history")).to_be_visible()
    for source in ("award-engine", "member-app", "eligibility-check", "fulfilment-sync"):
        expect(provenance).to_contain_text(source)
    expect(provenance).to_contain_text("ineligible → received")  # the sync fault, in history
    page.go_back()
    assert page.url == story_url

    # Extend the deadline by two months, with a reason.
    page.get_by_role("link", name="Extend the deadline").click()
    expect(page.get_by_role("heading", name="Extend the deadline")).to_be_visible()
    page.get_by_label("Extend by").select_option(label="2 months")
    page.get_by_label("Why is more time needed?").fill(EXTEND_REASON)
    page.get_by_role("button", name="Extend", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Deadline extended")).to_be_visible()
    assert page.url == story_url
    due = fact(page, "Due").locator("time")
    due_after = due.get_attribute("datetime")
    assert due_after > due_before, (due_before, due_after)
    with live_server.app.app_context():
        story = rights_requests.by_reference(reference)
        assert story.extension_months == 2
        expected_due = story.due_at
    assert due_after == expected_due.isoformat()
    new_due_text = f"{expected_due.day} {expected_due:%B %Y}"  # "9 September 2026"
    expect(due).to_have_text(new_due_text)
    # Two months and more away (30 days are left of the first month at most).
    assert (expected_due - utcnow()).days >= 55, expected_due
    expect(fact(page, "Extended")).to_contain_text("by 2 month(s) on")
    expect(fact(page, "Extended")).to_contain_text(EXTEND_REASON)
    expect(page.get_by_role("link", name="Extend the deadline")).to_have_count(0)  # once only

    # Another open request: the objection in the queue. Refuse it.
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Queue").click()
    objection = page.locator("table.queue tbody tr").filter(has_text="objection")
    expect(objection).to_have_count(1)
    expect(objection).to_contain_text("open")
    objection.get_by_role("link", name=REFERENCE).click()
    expect(page.get_by_role("heading", name=re.compile(r"· Objection$"))).to_be_visible()
    refused_url = page.url
    refused_to = fact(page, "Contact").text_content().strip()
    assert "@" in refused_to and refused_to != demo.STORY_EMAIL, refused_to

    page.get_by_role("link", name="Refuse", exact=True).click()
    expect(page.get_by_role("heading", name="Refuse")).to_be_visible()
    expect(page.get_by_text(COMPLAINT)).to_be_visible()  # the notice's ending, shown first
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Refuse the request").click()
    assert answer.value.status == 422
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Check the form")
    expect(
        summary.get_by_role("link", name=re.compile(r"^Why is the request refused\?"))
    ).to_be_visible()
    reason = page.get_by_label("Why is the request refused?")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field.has-error").filter(has=reason).locator(".error")).to_be_visible()

    reason.fill(REFUSE_REASON)
    page.get_by_role("button", name="Refuse the request").click()
    expect(page.get_by_role("status").filter(has_text="Refused")).to_be_visible()
    assert page.url == refused_url
    expect(fact(page, "Status")).to_have_text("refused")
    expect(fact(page, "Decision")).to_contain_text(REFUSE_REASON)
    expect(page.get_by_role("link", name="Refuse", exact=True)).to_have_count(0)

    # The notices, as the officer reads them on each request's page.
    refusal = open_notice(page, "We cannot do what you asked")
    expect(refusal.locator("pre.mail")).to_contain_text(REFUSE_REASON)
    expect(refusal.locator("pre.mail")).to_contain_text(COMPLAINT)
    page.goto(story_url)
    extension = open_notice(page, "We need more time to answer your request")
    expect(extension.locator("pre.mail")).to_contain_text(EXTEND_REASON)
    expect(extension.locator("pre.mail")).to_contain_text(f"We will now answer by {new_due_text}")
    page.screenshot(path=SCREENSHOT, full_page=True)

    # And as the subjects got them: the worker delivered both by SMTP.
    extended = mail_to(mailbox, demo.STORY_EMAIL, "We need more time to answer your request")
    assert EXTEND_REASON in extended
    assert f"We will now answer by {new_due_text}" in extended
    assert reference in extended
    refused = mail_to(mailbox, refused_to, "We cannot do what you asked")
    assert REFUSE_REASON in refused
    assert COMPLAINT in refused
    assert not [m for m in mailbox.to(refused_to) if "more time" in m["Subject"]]

    # Once sent, each request's page says so.
    page.reload()
    sent = open_notice(page, "We need more time to answer your request")
    expect(sent.locator("summary")).to_contain_text("sent")
