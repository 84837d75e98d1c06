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
    # The right's own form: its heading and address, and none of the other rights' questions.
    expect(page.get_by_role("heading", name="See my data", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/requests/new/access$"))
    expect(page.get_by_role("radio")).to_have_count(0)
    expect(page.get_by_text("What is wrong, and what is right?")).to_have_count(0)
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
    # Chosen on the chooser (no script): the right's own form opens.
    page.goto("/requests/new")
    page.get_by_label("Delete my data").check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/requests/new/erasure$"))
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
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Enter your email address.")
    # The title says there is an error, and the summary has the focus (no script needed).
    expect(page).to_have_title(re.compile(r"^Error: Delete my data"))
    expect(summary).to_be_focused()
    # The choice is kept: still the form for deleting, not another right's.
    expect(page.get_by_role("heading", name="Delete my data", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/requests/new/erasure$"))
    summary.get_by_role("link", name="Enter your email address.").click()
    expect(email).to_be_focused()
    # And undone: back to the chooser, where nothing is chosen.
    page.get_by_role("link", name="Choose another right").click()
    expect(page.get_by_role("heading", name="Make a request")).to_be_visible()
    expect(page.get_by_label("See my data")).not_to_be_checked()
    expect(page.get_by_label("Delete my data")).not_to_be_checked()
    page.goto("/requests/new/erasure")
    page.get_by_role("button", name="Send request").click()
    page.screenshot(path=FORM_SCREENSHOT, full_page=True)


def form_height(page, path: str, width: int) -> float:
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(path)
    return page.locator("main form").last.bounding_box()["height"]


# Issue 16: "See my data" on the old one-form-for-all (/requests/new?type=access) measured
# 1,982 px tall at 1280 px wide (the page 2,269 px) and 2,711 px at 375 px (the page 3,087 px).
# Its own form asks an address and an optional note: a few hundred pixels.
def test_see_my_data_is_a_short_form(page, live_server):
    heights = {w: form_height(page, "/requests/new?type=access", w) for w in (1280, 375)}
    print(f"'See my data' form height: {heights}")
    assert page.url.endswith("/requests/new/access")
    assert heights[1280] < 600 and heights[375] < 700, heights
