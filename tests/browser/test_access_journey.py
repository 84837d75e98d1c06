"""A data subject asks to see their data, in a real browser, from the home page to the report."""

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import PROVENANCE, member_body, wait_for

pytestmark = pytest.mark.browser

# Fixed paths on purpose: a developer (or CI log reader) opens them to look at the pages.
SCREENSHOT = "/tmp/lethe-report.png"  # noqa: S108
FORM_SCREENSHOT = "/tmp/lethe-form-error.png"  # noqa: S108
EMAIL = "person1@example.org"


def verify_link(mailbox, address: str) -> str:
    msg = wait_for(lambda: mailbox.to(address), timeout=10)[-1]
    body = mailbox.body(msg)
    match = re.search(r"https?://\S+/verify/\S+", body)
    assert match, f"no /verify/ link in the email:\n{body}"
    return match.group(0)


def test_access_request_from_home_page_to_report(page, live_server, mailbox):
    status, member = live_server.api_post("/api/v1/members", member_body())
    assert status == 201, member

    page.goto("/")
    page.get_by_role("link", name="See my data").click()
    expect(page.get_by_role("heading", name="Make a request")).to_be_visible()
    access = page.get_by_label("See my data")
    if not access.is_checked():
        access.check()
    page.get_by_label("Your email address").fill(EMAIL)
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    link = verify_link(mailbox, EMAIL)
    assert link.startswith(live_server.url + "/verify/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your request")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name=re.compile(r"^Request "))).to_be_visible()
    expect(page.locator(".status")).to_have_text("completed")
    page.get_by_role("link", name="Read your report").click()

    expect(page.get_by_role("heading", name="Your data report")).to_be_visible()
    member_section = page.locator("section.category").filter(has_text="Person 1").first
    member_section.locator("summary").first.click()  # records are folded: open the first one
    expect(member_section.get_by_text("Person 1", exact=True)).to_be_visible()
    # How it got here: who wrote it, in words ("our test suite"), not the raw source and actor.
    provenance = member_section.locator("details.story").filter(has_text="How it got here").first
    provenance.locator("summary").click()
    expect(provenance).to_be_visible()
    expect(provenance).to_contain_text("our test suite")
    expect(provenance).not_to_contain_text(PROVENANCE["source"])
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_empty_email_shows_error_next_to_field_and_keeps_choice(page, live_server):
    page.goto("/requests/new")
    page.get_by_label("Delete my data").check()
    page.get_by_role("button", name="Send request").click()

    email = page.get_by_label("Your email address")
    expect(email).to_have_attribute("aria-invalid", "true")
    error = page.locator("#email-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("Enter your email address.")
    # The message is tied to the field (screen readers announce it) and sits in its block.
    expect(email).to_have_attribute("aria-describedby", re.compile(r"\bemail-error\b"))
    expect(page.locator(".field.has-error").filter(has=email)).to_contain_text(
        "Enter your email address."
    )
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address.")
    expect(page.get_by_label("Delete my data")).to_be_checked()
    expect(page.get_by_label("See my data")).not_to_be_checked()
    page.screenshot(path=FORM_SCREENSHOT, full_page=True)
