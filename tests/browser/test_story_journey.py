"""The story of DESIGN.md, end to end in a real browser.

Sam Rivera was told he had received a Nova X1 phone he never got. He asks, on the public form,
to correct it, with a picture (after a first try with a file that is no picture); he confirms
from the emailed link, and from then on the award, its disclosure-list entry and its promotion
are held back. An officer reads his request and its evidence, asks "how many others?" and opens
an incident from it (the filter prefilled from the contested award): twelve members touched,
Sam's award decided on his request. The officer approves Sam's correction, then — after a page
saying what will happen — corrects the eleven other members the same sync fault touched in one
step, leaving Sam's award to his request; the twelve stay listed. One apology is written,
previewed as one member will receive it, and sent: the worker delivers it by SMTP once to each
of the twelve, Sam included, and the disclosure list the brands get no longer names any of
them.
"""

import io
import json
import re
import threading
import urllib.request

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from demo import loader as demo
from demo.receiver import Receiver
from rights.holdings import records
from rights.ledger import apikeys
from storage import vault
from storage.db import db
from storage.models import Disclosure, Member, PerkAward, Promotion, RecordHistory
from tests.browser.conftest import serving
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


@pytest.fixture
def live_server(app_factory):
    """The story's server may deliver webhooks to the demo's receiver on 127.0.0.1, as
    `make run` lets it in development."""
    app = app_factory(WTF_CSRF_ENABLED=True, WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
    with serving(app) as live:
        yield live


@pytest.fixture
def demo_recipients(tmp_path):
    """The demo's two downstream recipients (Nova Mobile, the brand; ReviewHub, a
    disclosure-list consumer) as `make run` serves them: demo/receiver.py on a free port,
    checking each delivery's signature and confirming it through Lethe's API."""
    path = tmp_path / "demo-receiver.json"
    receiver = Receiver(path, retry_seconds=0.1)
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}),
        threading.Thread(target=receiver.confirm_forever, args=(stop,)),
    ]
    for thread in threads:
        thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_port}", path
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(timeout=10)


def told_row(page, recipient: str):
    """The row of "Who we told" on a subject's request page for one recipient."""
    section = page.get_by_role("region", name="Who we told")
    return section.locator("tbody tr").filter(has=page.get_by_role("rowheader", name=recipient))


def test_story_from_the_subjects_form_to_the_incidents_apology(
    page, new_page, live_server, mailbox, sign_in, demo_recipients
):
    app = live_server.app
    receiver, receiver_url, receiver_file = demo_recipients
    with app.app_context():
        subscribed = demo.subscribe_receiver(receiver_url, path=receiver_file)
        demo.load(extra_members=20)
        _, key = apikeys.create("brand-portal", ["disclosures:read"], actor="test")
        db.session.commit()
        member = records.by_external(Member, OTHER_MEMBERS[0])
        first_name = vault.decrypt(member.subject_id, "members.name_enc", member.name_enc)
        demo.write_receiver_file(subscribed, receiver_file)
    brand = {"Authorization": f"Bearer {key}"}
    before = listed(live_server, brand)
    assert set(OTHER_DISCLOSURES) <= set(before), before  # the fault, as brands are told it
    assert UNTOUCHED in before

    # --- Sam, on the correction form: a file that is no picture first, then a real one. ---
    page.goto("/")
    page.get_by_role("link", name="Correct my data").click()
    # The right's own form, chosen by the link: only what a correction needs.
    expect(page.get_by_role("heading", name="Correct my data", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/requests/new/correction$"))
    page.get_by_label("Your email address").fill(demo.STORY_EMAIL)
    page.get_by_label("Awards, list entries or promotions (optional)").fill("aw-0001-nova")
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
    expect(page.get_by_role("heading", name="Correct my data", level=1)).to_be_visible()
    expect(page.get_by_label("Your email address")).to_have_value(demo.STORY_EMAIL)
    expect(page.get_by_label("Awards, list entries or promotions (optional)")).to_have_value(
        "aw-0001-nova"
    )
    expect(page.get_by_label("What is wrong, and what is right?")).to_have_value(CORRECTION)
    expect(page.get_by_label("A statement to add to your records (optional)")).to_have_value(
        STATEMENT
    )
    pictures.set_input_files(
        {"name": "IMG_0042.jpg", "mimeType": "image/jpeg", "buffer": picture_with_location()}
    )
    page.get_by_role("button", name="Send request").click()
    # The picture passed: listed, with a way to take it out, before anything is sent.
    expect(page.get_by_role("heading", name="Check your request before sending")).to_be_visible()
    take_out = page.get_by_label("Take out IMG_0042.jpg")
    expect(take_out).not_to_be_checked()
    expect(page.get_by_role("img", name="Preview of IMG_0042.jpg")).to_be_visible()
    expect(page.get_by_label("What is wrong, and what is right?")).to_have_value(CORRECTION)
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
    # His page opens with his data in short, and the answer to "how did this happen?" in it.
    in_short = page.get_by_role("region", name="Your data with us, in short")
    expect(in_short).to_contain_text(
        re.compile(
            r"On \d{1,2} \w+ 2026 our fulfilment sync \(job 0817\) marked your Nova X1 phone as "
            r"received\. No shipment was recorded\."
        )
    )
    for raw in ("not_received", "sync-job-0817", "fulfilment-sync", "perk id"):
        expect(in_short).not_to_contain_text(raw)

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
    # Twelve members touched: the eleven others to correct, and Sam, whose award is held
    # back by his requests: it is decided there, never changed behind their back.
    expect(fact(officer, "Members touched")).to_have_text("12 members touched (12 awards)")
    expect(fact(officer, "Still to correct")).to_have_text(
        "11 award(s) still to correct (11 members)"
    )
    expect(fact(officer, "Records")).to_contain_text("written by fulfilment-sync")
    touched = officer.locator("table tbody tr td:first-child")
    expect(touched).to_have_text([demo.STORY_MEMBER, *OTHER_MEMBERS])
    sams_row = officer.locator("table tbody tr").filter(has_text=demo.STORY_MEMBER)
    expect(sams_row).to_contain_text(re.compile(r"decided on LR-"))

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

    # --- Sam's side: his email says what was corrected, and its link opens his page. ---
    done_title = f"[{reference}] We have done what you asked"
    done_mail = wait_for(
        lambda: [m for m in mailbox.to(demo.STORY_EMAIL) if m["Subject"] == done_title],
        timeout=10,
    )
    body = mailbox.body(done_mail[0])
    assert "Your Nova X1 phone award from Nova Mobile now says not received." in body, body
    assert "Your entry on the disclosure list for it was withdrawn." in body, body
    assert "you had won it was withdrawn." in body, body
    assert "open the link we emailed you" not in body, body
    resume = re.search(r"https?://\S+/resume/\S+", body)
    assert resume, body
    sam = new_page()  # another browser: no session, only the link
    sam.goto(resume.group(0))
    sam.get_by_role("button", name="Continue").click()
    expect(sam.get_by_role("heading", name=f"Request {reference}")).to_be_visible()
    expect(sam.locator(".status")).to_have_text("completed")
    # Who we told (Art. 19): every recipient the data map names for his records. The brand
    # and the disclosure-list consumer by webhook, each confirmed by the demo's receiver;
    # the others, until our privacy team records telling them, say so.
    webhooked = (
        "The brand giving the perk",
        "Disclosure-list consumers (review sites, ad networks)",
    )

    def all_confirmed() -> bool:
        sam.reload()
        return all("confirmed they acted" in told_row(sam, name).inner_text() for name in webhooked)

    wait_for(all_confirmed, timeout=30)
    assert len(receiver.confirmed) >= 2, receiver.confirmed
    for name in ("Our fulfilment and shipping partner", "The platform's ad system"):
        expect(told_row(sam, name)).to_contain_text("To be told by our privacy team")
    expect(sam.get_by_text("No recipient of your data needed to be told")).to_have_count(0)

    # --- The incident counts Sam as decided on his request; the eleven others to correct. ---
    officer.goto(incident_url)
    expect(fact(officer, "Members touched")).to_have_text("12 members touched (12 awards)")
    expect(fact(officer, "Decided on their own request")).to_contain_text("1 member")
    expect(fact(officer, "Still to correct")).to_have_text(
        "11 award(s) still to correct (11 members)"
    )
    expect(touched).to_have_text([demo.STORY_MEMBER, *OTHER_MEMBERS])
    expect(sams_row).to_contain_text(f"decided on {reference}")
    expect(sams_row.get_by_role("link", name=reference)).to_have_attribute(
        "href", request_url.removeprefix(live_server.url)
    )

    # "Correct all 11" shows what it will do first; nothing changes until it is confirmed.
    officer.get_by_role("button", name="Correct all 11").click()
    expect(officer.get_by_role("heading", name="Correct all 11?")).to_be_visible()
    expect(fact(officer, "Members touched")).to_have_text("12 members touched")
    expect(fact(officer, "To correct now")).to_have_text("11 awards of 11 members")
    expect(fact(officer, "Left as decided")).to_have_text("1 member decided on their own request")
    decided = officer.get_by_role("table", name="Decided on their own request")
    expect(decided.locator("tbody tr")).to_have_count(1)
    expect(decided.locator("tbody tr")).to_contain_text(demo.STORY_MEMBER)
    expect(decided.locator("tbody tr")).to_contain_text(reference)
    assert set(OTHER_DISCLOSURES) <= set(listed(live_server, brand))  # not yet
    officer.get_by_role("button", name="Correct all 11").click()
    expect(flash(officer, "Corrected: 11 award(s) in all.")).to_be_visible()
    assert officer.url == incident_url
    expect(fact(officer, "Still to correct")).to_have_text(
        "0 award(s) still to correct (0 members)"
    )
    # The people touched stay listed, with what became of each.
    expect(fact(officer, "Members touched")).to_have_text("12 members touched (12 awards)")
    expect(fact(officer, "Corrected by this incident")).to_contain_text(
        "11 members (11 awards), done "
    )
    expect(fact(officer, "Decided on their own request")).to_contain_text("1 member")
    expect(touched).to_have_text([demo.STORY_MEMBER, *OTHER_MEMBERS])
    expect(sams_row).to_contain_text(f"decided on {reference}")
    for member in OTHER_MEMBERS:
        row = officer.locator("table tbody tr").filter(has_text=member)
        expect(row).to_contain_text("corrected by this incident")
    expect(officer.get_by_text("No award match")).to_have_count(0)
    expect(fact(officer, "Status")).to_have_text("corrected")
    expect(officer.get_by_role("button", name=re.compile(r"^Correct all"))).to_have_count(0)
    exported = listed(live_server, brand)
    for gone in (STORY_DISCLOSURE, *OTHER_DISCLOSURES):
        assert gone not in exported, (gone, exported)
    assert UNTOUCHED in exported  # the list itself still works
    with app.app_context():  # Sam's award: corrected once, by his request alone
        award = records.by_external(PerkAward, "aw-0001-nova")
        reasons = [
            h.reason
            for h in db.session.execute(
                select(RecordHistory).where(
                    RecordHistory.record_type == "perk_awards",
                    RecordHistory.record_id == award.id,
                )
            ).scalars()
        ]
        assert not any(incident_ref in (r or "") for r in reasons), reasons

    # --- One apology, written once, previewed, then sent to each of the twelve once. ---
    officer.get_by_label("Email subject").fill(APOLOGY_SUBJECT)
    officer.get_by_label("The apology").fill(APOLOGY)
    officer.get_by_role("button", name="Save the apology").click()
    expect(flash(officer, "Apology saved.")).to_be_visible()
    expect(officer.get_by_label("The apology")).to_have_value(APOLOGY)
    officer.get_by_role("button", name="Send to 12 member(s)").click()
    expect(officer.get_by_role("heading", name="Send the apology to 12 member(s)?")).to_be_visible()
    expect(fact(officer, "To tell now")).to_have_text("12 members to tell, once each")
    expect(fact(officer, "Members touched")).to_contain_text("1 decided on their own request")
    title = f"About your Nova X1 phone ({incident_ref})"
    # The preview: one member's own copy, saying whose.
    whose = officer.get_by_role("heading", name=re.compile(r"^Preview: as m-\d{4} \("))
    expect(whose).to_be_visible()
    shown = re.search(r"as (m-\d{4}) \((.+)\) will receive it", whose.text_content())
    assert shown, whose.text_content()
    with app.app_context():
        previewed = records.by_external(Member, shown.group(1))
        name = vault.decrypt(previewed.subject_id, "members.name_enc", previewed.name_enc)
    assert shown.group(2) == name
    mail = officer.locator("pre.mail").last
    expect(mail).to_contain_text(title)
    expect(mail).to_contain_text(f"Dear {name},")
    expect(mail).to_contain_text(f"Reference: {incident_ref}.")
    expect(mail).not_to_contain_text("{")
    assert not [m for m in mailbox.messages if m["Subject"] == title]  # nothing sent yet
    officer.get_by_role("button", name="Send to 12 member(s)").click()
    expect(flash(officer, "Apology queued to 12 member(s) in all.")).to_be_visible()
    expect(fact(officer, "Told")).to_contain_text("12 member(s) (done ")
    expect(officer.get_by_role("button", name=re.compile(r"^Send to"))).to_have_count(0)
    officer.screenshot(path=SCREENSHOT, full_page=True)

    # The worker delivers them by SMTP: one each, the placeholders filled in.
    apologies = wait_for(
        lambda: (
            found
            if len(found := [m for m in mailbox.messages if m["Subject"] == title]) == 12
            else None
        ),
        timeout=15,
    )
    assert sorted(m["To"] for m in apologies) == sorted([demo.STORY_EMAIL, *OTHER_EMAILS])
    for msg in apologies:
        body = mailbox.body(msg)
        assert "received a Nova X1 phone" in body, body
        assert f"Reference: {incident_ref}." in body, body
        assert "{" not in body, body
    first = next(m for m in apologies if m["To"] == OTHER_EMAILS[0])
    assert mailbox.body(first).startswith(f"Dear {first_name},"), mailbox.body(first)
    # Sam's correction came from his own request, not the incident: he is told it is done,
    # and, as one of the members the fault touched, gets the apology too, once.
    done = [m["Subject"] for m in mailbox.to(demo.STORY_EMAIL)]
    assert f"[{reference}] We have done what you asked" in done, done
    assert done.count(title) == 1, done
    sams = next(m for m in apologies if m["To"] == demo.STORY_EMAIL)
    assert mailbox.body(sams).startswith("Dear Sam Rivera,"), mailbox.body(sams)
    page.reload()
    expect(page.locator(".status")).to_have_text("completed")
