"""A member asks to be erased, in a real browser: from the home page to the deletion receipt,
then comes back later, without cookies, with only the record key, for a signed statement of
what is still held."""

import re
import time

import pytest
from playwright.sync_api import expect

from rights.erasure import erasure
from rights.ledger import signing
from tests.helpers import award_body, disclosure_body, member_body, wait_for

pytestmark = pytest.mark.browser

# Fixed path on purpose: a developer (or CI log reader) opens it to look at the page.
SCREENSHOT = "/tmp/lethe-statement.png"  # noqa: S108
EMAIL = "person1@example.org"
ERASURE_TIMEOUT = 20.0
JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def mail_with(mailbox, address: str, subject_part: str):
    """The latest email to ``address`` whose subject contains ``subject_part`` (waits)."""
    found = wait_for(
        lambda: [m for m in mailbox.to(address) if subject_part in m["Subject"]], timeout=15
    )
    return mailbox.body(found[-1])


def reload_until_visible(page, locator, timeout: float = ERASURE_TIMEOUT) -> None:
    """Reload until ``locator`` is on the page: the worker thread answers in the background."""
    deadline = time.monotonic() + timeout
    while locator.count() == 0:
        assert time.monotonic() < deadline, f"not shown within {timeout}s: {locator}"
        time.sleep(0.2)
        page.reload()


def seed_member_with_retained_records(live_server) -> None:
    for path, body in (
        ("/api/v1/members", member_body()),
        ("/api/v1/perk-awards", award_body(1, status="received")),
        ("/api/v1/disclosures", disclosure_body(1)),
    ):
        status, created = live_server.api_post(path, body)
        assert status == 201, (path, created)


def receipt_file_jws(text: str) -> str:
    """The signed receipt at the end of the downloaded receipt page."""
    found = re.search(r'<pre id="receipt-jws">([^<]+)</pre>', text)
    assert found, text[-2000:]
    return found.group(1).strip()


def test_erasure_from_home_page_to_receipt_and_statement(page, browser, live_server, mailbox):
    seed_member_with_retained_records(live_server)

    # Ask for deletion from the home page.
    page.goto("/")
    page.get_by_role("link", name="Delete my data").click()
    # The right's own form, chosen by the link: its heading, its address, its one question.
    expect(page.get_by_role("heading", name="Delete my data", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/requests/new/erasure$"))
    page.get_by_label("Your email address").fill(EMAIL)
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    body = mail_with(mailbox, EMAIL, "Please confirm your request")
    match = re.search(r"https?://\S+/verify/\S+", body)
    assert match, f"no /verify/ link in the email:\n{body}"
    assert match.group(0).startswith(live_server.url + "/verify/"), match.group(0)
    page.goto(match.group(0))
    expect(page.get_by_role("heading", name="Confirm your request")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()

    # The status page: the worker thread runs the erasure job; the receipt appears when done.
    status_heading = page.get_by_role("heading", name=re.compile(r"^Request LR-"))
    expect(status_heading).to_be_visible()
    status_url = page.url
    reload_until_visible(page, page.get_by_role("heading", name="Your deletion receipt"))

    # The record key, shown once, and the receipt file to keep.
    key_box = page.locator(".record-key")
    expect(key_box).to_be_visible()
    record_key = key_box.text_content().strip()
    assert erasure.normalise_record_key(record_key) is not None, record_key
    # Crockford's Base32 with a check symbol: no I, L, O or U (issue 16).
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){6}", record_key), record_key
    receipt_jws = page.locator("#receipt-jws").input_value().strip()
    assert JWS.match(receipt_jws), receipt_jws

    with page.expect_download() as info:
        page.get_by_role("button", name="Download my receipt file").click()
    download = info.value
    # A page a person reads (issue 16): the words, the key and where to use it, the JWS last.
    assert re.fullmatch(r"deletion-receipt-[0-9a-f]{8}\.html", download.suggested_filename)
    with open(download.path(), encoding="utf-8") as fh:
        receipt_file = fh.read()
    assert receipt_file_jws(receipt_file) == receipt_jws
    assert record_key in receipt_file
    assert "/verify-receipt" in receipt_file and "flask receipts verify" not in receipt_file

    # Shown once: after a reload only the receipt is there. The job finishes the request.
    assert page.url == status_url
    deadline = time.monotonic() + ERASURE_TIMEOUT
    while True:
        page.reload()
        if page.locator(".status").text_content() == "completed":  # CSS capitalises it
            break
        assert time.monotonic() < deadline, "the erasure request did not complete"
        time.sleep(0.2)
    expect(page.get_by_role("heading", name="Your deletion receipt")).to_be_visible()
    expect(page.locator(".record-key")).to_have_count(0)
    expect(page.get_by_role("button", name="Download my receipt file")).to_have_count(0)
    expect(page.get_by_text("Your record key was shown once")).to_be_visible()
    expect(page.locator("#receipt-jws")).to_have_value(receipt_jws)
    assert record_key not in page.content()
    assert erasure.normalise_record_key(record_key) not in page.content()

    # The last email to the person carries the same key and receipt.
    erased = mail_with(mailbox, EMAIL, "Your data has been erased")
    key_match = re.search(r"Your record key: (\S+)", erased)
    assert key_match, erased
    assert key_match.group(1) == record_key
    assert receipt_jws in erased

    # Come back later: a fresh browser (no cookies), only the record key.
    later = browser.new_context(base_url=live_server.url, viewport={"width": 1000, "height": 800})
    later.set_default_timeout(10_000)
    try:
        former = later.new_page()
        former.goto("/")
        former.get_by_role("link", name="what we still hold about you").click()
        expect(former.get_by_role("heading", name="What is still held about me?")).to_be_visible()
        typed = record_key.lower().replace("-", " ")  # normalised by the server
        former.get_by_label("Your record key").fill(typed)
        former.get_by_role("button", name="Show what is held").click()

        expect(former.get_by_role("heading", name="What we still hold about you")).to_be_visible()
        awards = former.locator("section.category").filter(
            has=former.get_by_role("heading", name="Perk awards")
        )
        expect(awards).to_contain_text("Award number")
        expect(awards).to_contain_text("aw-1")
        expect(awards).to_contain_text("Nova X1 phone from Nova Mobile")
        expect(awards).to_contain_text("Kept until")
        expect(awards).to_contain_text("Art. 17(3)(b)")
        disclosures = former.locator("section.category").filter(
            has=former.get_by_role("heading", name="Disclosure-list entries")
        )
        expect(disclosures).to_contain_text("Entry number")
        expect(disclosures).to_contain_text("d-1")
        expect(disclosures).to_contain_text("aw-1")  # the award's own number, not an internal id
        expect(disclosures).to_contain_text("Kept until")
        statement_jws = former.locator("#statement-jws").input_value().strip()
        assert JWS.match(statement_jws), statement_jws
        former.screenshot(path=SCREENSHOT, full_page=True)

        with former.expect_download() as info:
            former.get_by_role("button", name="Download this statement (signed)").click()
        download = info.value
        assert re.fullmatch(r"statement-[0-9a-f]{8}\.jws", download.suggested_filename)
        with open(download.path(), encoding="utf-8") as fh:
            token = fh.read().strip()
        assert token == statement_jws  # the file is the statement on screen, not a new one
        with live_server.app.app_context():
            claims = signing.verify(token, signing.STATEMENT_TYP)
            shown = signing.verify(statement_jws, signing.STATEMENT_TYP)
            receipt_claims = signing.verify(receipt_jws, signing.RECEIPT_TYP)
        assert claims["receipt_id"] == receipt_claims["receipt_id"] == shown["receipt_id"]
        assert claims["held"] == shown["held"]
        assert claims["holds_nothing"] is False
        held = {group["category"]: group["records"] for group in claims["held"]}
        assert [r["award_id"] for r in held["perk_awards"]] == ["aw-1"]
        assert [r["disclosure_id"] for r in held["disclosures"]] == ["d-1"]
        assert all(r["retain_until"] and r["restricted"] for rs in held.values() for r in rs)

        with former.expect_download() as info:
            former.get_by_role("button", name="Download my deletion receipt").click()
        with open(info.value.path(), encoding="utf-8") as fh:
            again = fh.read()
        assert receipt_file_jws(again) == receipt_jws
        assert record_key in again  # printed canonically, however it was typed

        # A wrong key: the same answer for any unknown key. The box keeps what was typed, to
        # be corrected rather than typed again (issue 16); the key never goes in the address.
        former.goto("/records")
        wrong = erasure.new_record_key()
        former.get_by_label("Your record key").fill(wrong)
        former.get_by_role("button", name="Show what is held").click()
        alert = former.get_by_role("alert")
        expect(alert).to_contain_text("No record matches this key")
        expect(former.get_by_label("Your record key")).to_have_value(wrong)
        assert former.url == live_server.url + "/records"
        # One wrong character: refused as a typo before anything is looked up, box kept.
        typo = ("0" if wrong[0] != "0" else "1") + wrong[1:]
        former.get_by_label("Your record key").fill(typo)
        former.get_by_role("button", name="Show what is held").click()
        expect(former.get_by_role("alert")).to_contain_text("This key has a typo in it")
        expect(former.get_by_label("Your record key")).to_have_value(typo)
        assert former.url == live_server.url + "/records"
    finally:
        later.close()
