"""The story of DESIGN.md, end to end in a real browser.

Sam Rivera was told he had received a Nova X1 phone he never got. He asks, on the public form,
to correct it, with a picture (after a first try with a file that is no picture); he confirms
from the emailed link, and from then on the award, its disclosure-list entry and its promotion
are held back. An officer reads his request and its evidence, asks "how many others?" and opens
an incident from it (the filter prefilled from the contested award), approves Sam's
correction, corrects the eleven other members the same sync fault touched in one step, writes
one apology and sends it. The worker delivers it to each of them by SMTP, and the disclosure
list the brands get no longer names any of the twelve.
"""

import io
import json
import re
import urllib.request

import pytest
from PIL import Image
from playwright.sync_api import expect

from demo import loader as demo
from rights.holdings import records
from rights.ledger import apikeys
from storage import vault
from storage.db import db
from storage.models import Disclosure, Member, PerkAward, Promotion
from tests.helpers import wait_for

pytestmark = pytest.mark.browser

# Fixed path on purpose: a developer (or CI log reader) opens it to look at the page.
SCREENSHOT = "/tmp/lethe-incident.png"  # noqa: S108
OFFICER_EMAIL, _, OFFICER_ROLE, OFFICER_SECRET = demo.DEMO_OFFICERS[1]
assert OFFICER_ROLE == "officer"
REFERENCE = re.compile(r"^LR-[0-9A-Z]{4}-[0-9A-Z]{4}$")
INCIDENT = re.compile(r"INC-[0-9A-Z]{6}")

CORRECTION = "I never received the Nova X1 phone: nothing was shipped. The award is wrong."
STATEMENT = "I did not win or receive this phone; please stop saying I did."
TITLE = "Fulfilment sync marked unshipped Nova X1 phones as received"
APOLOGY_SUBJECT = "About your {perk} ({incident})"
APOLOGY = (
    "Dear {name},\n\nOur records said you had received a {perk}, but nothing was shipped to "
    "you. We have corrected this and withdrawn your name from the lists that said so.\n\n"
    "We are sorry. Reference: {incident}."
)
# The eleven members the demo's sync fault touched besides Sam (their awards, list entries).
OTHERS = range(2, 13)
OTHER_MEMBERS = [f"m-{n:04d}" for n in OTHERS]
OTHER_DISCLOSURES = [f"dl-{n:04d}" for n in OTHERS]
OTHER_EMAILS = [f"member{n:04d}@example.com" for n in OTHERS]
STORY_DISCLOSURE = "dl-0001-nova"
UNTOUCHED = "dl-0013"  # an ordinary member's entry, listed throughout


def picture_with_location() -> bytes:
    """A JPEG carrying the camera's make and a GPS position, as phones write them."""
    out = io.BytesIO()
    tags = Image.Exif()
    tags[0x010F] = "SnoopCam"  # Make
    tags[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", exif=tags.tobytes())
    return out.getvalue()


def listed(live, headers: dict) -> list[str]:
    """The disclosure list as a brand's system fetches it from the API."""
    req = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 server
        live.url + "/api/v1/disclosures/export", headers=headers
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
        return [entry["disclosure_id"] for entry in json.loads(resp.read())["entries"]]


def fact(page, term: str):
    """The <dd> of a <dt> in the page's facts (the first list that has it)."""
    return page.locator(f"dl.facts dt:text-is('{term}') + dd").first


def flash(page, text: str):
    return page.get_by_role("status").filter(has_text=text)


def verify_link(mailbox, address: str) -> str:
    found = wait_for(
        lambda: [m for m in mailbox.to(address) if "/verify/" in mailbox.body(m)], timeout=10
    )
    assert len(found) == 1, [m["Subject"] for m in found]
    match = re.search(r"https?://\S+/verify/\S+", mailbox.body(found[0]))
    assert match, mailbox.body(found[0])
    return match.group(0)


def test_story_from_the_subjects_form_to_the_incidents_apology(
    page, new_page, live_server, mailbox, sign_in
):
    app = live_server.app
    with app.app_context():
        demo.load(extra_members=20)
        _, key = apikeys.create("brand-portal", ["disclosures:read"], actor="test")
        db.session.commit()
        member = records.by_external(Member, OTHER_MEMBERS[0])
        first_name = vault.decrypt(member.subject_id, "members.name_enc", member.name_enc)
    brand = {"Authorization": f"Bearer {key}"}
    before = listed(live_server, brand)
    assert set(OTHER_DISCLOSURES) <= set(before), before  # the fault, as brands are told it
    assert UNTOUCHED in before

    # --- Sam, on the public form: a file that is no picture first, then a real one. ---
    page.goto("/")
    page.get_by_role("link", name="Correct my data").click()
    expect(page.get_by_role("heading", name="Make a request")).to_be_visible()
    expect(page.get_by_label("Correct my data")).to_be_checked()  # preselected by the link
    page.get_by_label("Your email address").fill(demo.STORY_EMAIL)
    page.get_by_label("Which records? (optional)").fill("aw-0001-nova")
    page.get_by_label("What is wrong, and what is right?").fill(CORRECTION)
    page.get_by_label("A statement to add to your records (optional)").fill(STATEMENT)
    pictures = page.get_by_label("Pictures that show what is right (optional)")
    pictures.set_input_files(
        {"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a picture"}
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Send request").click()
    assert answer.value.status == 422
    refused = "x.jpg is not a JPEG, PNG or WebP picture we can read"
    expect(page.get_by_role("alert")).to_contain_text(refused)
    pictures = page.get_by_label("Pictures that show what is right (optional)")
    expect(pictures).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field.has-error").filter(has=pictures)).to_contain_text(refused)
    expect(page.get_by_text("choose the pictures again")).to_be_visible()
    # Everything typed is kept; only the file must be chosen again.
    expect(page.get_by_label("Correct my data")).to_be_checked()
    expect(page.get_by_label("Your email address")).to_have_value(demo.STORY_EMAIL)
    expect(page.get_by_label("Which records? (optional)")).to_have_value("aw-0001-nova")
    expect(page.get_by_label("What is wrong, and what is right?")).to_have_value(CORRECTION)
    expect(page.get_by_label("A statement to add to your records (optional)")).to_have_value(
        STATEMENT
    )
    pictures.set_input_files(
        {"name": "IMG_0042.jpg", "mimeType": "image/jpeg", "buffer": picture_with_location()}
    )
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert listed(live_server, brand) == before  # not confirmed yet: nothing changes

    # --- Sam confirms from the emailed link: his request page shows his picture. ---
    link = verify_link(mailbox, demo.STORY_EMAIL)
    assert link.startswith(live_server.url + "/verify/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your request")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    heading = page.get_by_role("heading", name=re.compile(r"^Request LR-"))
    expect(heading).to_be_visible()
    reference = heading.text_content().strip().removeprefix("Request ")
    assert REFERENCE.match(reference), reference
    assert page.url.endswith(f"/requests/{reference}"), page.url
    sent = page.get_by_role("region", name="Pictures you sent")
    expect(sent.get_by_role("link")).to_have_text(["Picture 1 (image/jpeg)"])

    # --- The officer finds Sam's web request by his email. ---
    officer = new_page()
    sign_in(officer, OFFICER_EMAIL, demo.DEMO_PASSWORD, OFFICER_SECRET)
    officer.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Queue").click()
    officer.get_by_label("Subject's email").fill(demo.STORY_EMAIL)
    officer.get_by_role("button", name="Find their requests").click()
    # The demo's own rectification (through the platform) and the one Sam just sent.
    expect(officer.get_by_text(re.compile(r"^2 requests for subject"))).to_be_visible()
    officer.locator("table.queue tbody tr").get_by_role("link", name=reference).click()
    expect(officer.get_by_role("heading", name=f"{reference} · Rectification")).to_be_visible()
    request_url = officer.url
    request_id = request_url.rsplit("/", 1)[-1]
    expect(fact(officer, "Status")).to_have_text("open")
    expect(fact(officer, "Received")).to_contain_text("via web")
    expect(fact(officer, "Identity")).to_contain_text("emailed link")
    subject = officer.get_by_role("region", name="The subject", exact=True)
    expect(subject).to_contain_text(CORRECTION)
    expect(subject).to_contain_text(STATEMENT)

    # What his request holds back (Art. 18): the award and what is built on it — the list
    # entry, the promotion, and the "rate your phone" feedback request (a solicitation).
    held = officer.get_by_role("region", name="Records held back (Art. 18)")
    expect(held.locator("li")).to_have_count(4)
    expect(held.locator("li").filter(has_text="feedback")).to_contain_text("contested")
    for record in ("aw-0001-nova", STORY_DISCLOSURE, "pr-0001-nova"):
        expect(held.locator("li").filter(has_text=record)).to_contain_text("contested")

    # The evidence: his picture, as re-encoded on arrival (no camera, no position).
    # ("\/": Playwright passes the pattern on as /…/ without escaping a slash in it.)
    evidence = officer.get_by_role("link", name=re.compile(r"^Attachment 1: image\/jpeg,"))
    expect(evidence).to_have_count(1)
    with officer.expect_download() as download:
        evidence.click()
    with Image.open(download.value.path()) as stored:
        assert stored.format == "JPEG" and stored.size == (64, 48)
        assert not stored.getexif(), dict(stored.getexif())

    # --- "How many others?": an incident from this request, its filter prefilled. ---
    officer.get_by_role("link", name="How many others? Open an incident from this request").click()
    expect(officer.get_by_role("heading", name="Open an incident")).to_be_visible()
    assert officer.url.endswith(f"/dashboard/incidents/new?from={request_id}"), officer.url
    expect(officer.get_by_role("link", name=reference)).to_be_visible()  # where it came from
    expect(officer.get_by_label("Perk", exact=True)).to_have_value("p-nova-x1")
    expect(officer.get_by_label("Written by (source process)")).to_have_value("fulfilment-sync")
    expect(officer.get_by_label("Marked as")).to_have_value("received")
    expect(officer.get_by_label("Only where no shipment was recorded")).to_be_checked()
    officer.get_by_label("Title").fill(TITLE)
    officer.get_by_role("button", name="Open the incident").click()
    heading = officer.get_by_role("heading", name=re.compile(rf"^INC-\w+: {TITLE}$"))
    expect(heading).to_be_visible()
    incident_ref = INCIDENT.search(heading.text_content()).group(0)
    incident_url = officer.url
    # The eleven others. Sam's own award is held back by his request: it is decided there,
    # never changed behind his request's back by an incident.
    expect(fact(officer, "Matching now")).to_have_text("11 award(s) still to correct")
    expect(fact(officer, "Records")).to_contain_text("written by fulfilment-sync")
    touched = officer.locator("table tbody tr td:first-child")
    expect(touched).to_have_text(OTHER_MEMBERS)

    # --- Sam's own request first: approve it; his records are corrected. ---
    officer.goto(request_url)
    officer.get_by_role("link", name="Approve and carry out").click()
    expect(officer.get_by_role("heading", name="Approve and carry out")).to_be_visible()
    officer.get_by_role("button", name="Approve", exact=True).click()
    expect(flash(officer, "Approved.")).to_be_visible()
    assert officer.url == request_url
    expect(fact(officer, "Status")).to_have_text("completed")
    with app.app_context():
        award = records.by_external(PerkAward, "aw-0001-nova")
        assert award.status == "not_received"
        promotion = records.by_external(Promotion, "pr-0001-nova")
        assert promotion.withdrawn_at is not None
        disclosure = records.by_external(Disclosure, STORY_DISCLOSURE)
        assert disclosure.status == "withdrawn"
    exported = listed(live_server, brand)
    assert STORY_DISCLOSURE not in exported
    assert set(OTHER_DISCLOSURES) <= set(exported)  # the others: not yet

    # --- The incident now counts the eleven others; correct them all in one step. ---
    officer.goto(incident_url)
    expect(fact(officer, "Matching now")).to_have_text("11 award(s) still to correct")
    expect(touched).to_have_text(OTHER_MEMBERS)
    officer.get_by_role("button", name="Correct all 11").click()
    expect(flash(officer, "Corrected: 11 award(s) in all.")).to_be_visible()
    expect(fact(officer, "Matching now")).to_have_text("0 award(s) still to correct")
    expect(officer.get_by_text("No award matches any more.")).to_be_visible()
    expect(fact(officer, "Corrected")).to_contain_text("11 (done ")
    expect(fact(officer, "Status")).to_have_text("corrected")
    expect(officer.get_by_role("button", name=re.compile(r"^Correct all"))).to_have_count(0)
    exported = listed(live_server, brand)
    for gone in (STORY_DISCLOSURE, *OTHER_DISCLOSURES):
        assert gone not in exported, (gone, exported)
    assert UNTOUCHED in exported  # the list itself still works

    # --- One apology, written once, sent to each of them. ---
    officer.get_by_label("Email subject").fill(APOLOGY_SUBJECT)
    officer.get_by_label("The apology").fill(APOLOGY)
    officer.get_by_role("button", name="Save the apology").click()
    expect(flash(officer, "Apology saved.")).to_be_visible()
    expect(officer.get_by_label("The apology")).to_have_value(APOLOGY)
    officer.get_by_role("button", name="Send to 11 member(s)").click()
    expect(flash(officer, "Apology queued to 11 member(s) in all.")).to_be_visible()
    expect(fact(officer, "Told")).to_contain_text("11 member(s) (done ")
    expect(officer.get_by_role("button", name=re.compile(r"^Send to"))).to_have_count(0)
    officer.screenshot(path=SCREENSHOT, full_page=True)

    # The worker delivers them by SMTP: one each, the placeholders filled in.
    title = f"About your Nova X1 phone ({incident_ref})"
    apologies = wait_for(
        lambda: (
            found
            if len(found := [m for m in mailbox.messages if m["Subject"] == title]) == 11
            else None
        ),
        timeout=15,
    )
    assert sorted(m["To"] for m in apologies) == OTHER_EMAILS
    for msg in apologies:
        body = mailbox.body(msg)
        assert "received a Nova X1 phone" in body, body
        assert f"Reference: {incident_ref}." in body, body
        assert "{" not in body, body
    first = next(m for m in apologies if m["To"] == OTHER_EMAILS[0])
    assert mailbox.body(first).startswith(f"Dear {first_name},"), mailbox.body(first)
    # Sam's correction came from his own request, not the incident: he is told it is done,
    # and gets no apology.
    done = [m["Subject"] for m in mailbox.to(demo.STORY_EMAIL)]
    assert f"[{reference}] We have done what you asked" in done, done
    assert title not in done, done
    page.reload()
    expect(page.locator(".status")).to_have_text("completed")
