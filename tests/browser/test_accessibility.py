"""axe-core on every kind of page, as a person reaches it: the dashboard signed in as an
admin, its forms showing their errors, the login page and the public pages signed out.

One server with the demo data, and one signed-in browser context, serve the whole module;
each page is its own test. A violation of impact "serious" or "critical" fails the test,
listed with its rule, what it means and where. axe-core comes from the npm registry
(package.json, installed by `make test`); without it the tests skip, or fail in CI.
"""

import io
import re
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from demo import loader as demo
from rights.contest import incidents
from rights.delivery import outbox
from rights.recipients import webhooks
from storage import vault
from storage.db import db
from storage.models import Perk, PerkAward, RightsRequest, Subscriber
from tests.helpers import wait_for

pytestmark = pytest.mark.browser

FAILING_IMPACTS = ("serious", "critical")
ADMIN_EMAIL, _, ADMIN_ROLE, ADMIN_SECRET = demo.DEMO_OFFICERS[0]
assert ADMIN_ROLE == "admin"


@pytest.fixture(scope="module")
def story_request_id(module_live_server) -> str:
    """Sam Rivera's rectification request (the demo's story), open."""
    with module_live_server.app.app_context():
        return db.session.scalars(
            select(RightsRequest.id).where(
                RightsRequest.type == "rectification", RightsRequest.status == "open"
            )
        ).one()


@pytest.fixture(scope="module")
def incident_id(module_live_server) -> int:
    """An incident over the demo's sync fault (the story's perk, written by fulfilment-sync),
    opened and left as it is: nothing corrected, no apology written."""
    with module_live_server.app.app_context():
        perk = db.session.scalars(
            select(Perk.external_id)
            .join(PerkAward, PerkAward.perk_id == Perk.id)
            .where(PerkAward.external_id == "aw-0001-nova")
        ).one()
        incident = incidents.open_incident(
            title="Fulfilment sync marked unshipped phones as received",
            root_cause="",
            record_filter={"perk": perk, "source": "fulfilment-sync"},
            actor="t",
            request_id=None,
        )
        db.session.commit()
        return incident.id


@pytest.fixture(scope="module")
def subscriber_id(module_live_server, story_request_id) -> int:
    """A brand's webhook subscription with one delivery that failed, about the story request."""
    with module_live_server.app.app_context():
        sub = Subscriber(name="Nova Mobile", url="https://93.184.216.34/hooks", events=["x"])
        db.session.add(sub)
        db.session.flush()
        sub.secret_enc = vault.seal(f"webhook-secret:{sub.id}", b"whsec_x")
        event = outbox.enqueue_event("x", request_id=story_request_id, body={"type": "x"})
        for delivery in webhooks.fan_out(event, None):
            delivery.status, delivery.attempts, delivery.last_status_code = "dead", 15, 503
        db.session.commit()
        return sub.id


def _context(browser, live):
    # The app's CSP allows only its own scripts: bypass it for axe's injected script.
    context = browser.new_context(
        base_url=live.url, viewport={"width": 1000, "height": 800}, bypass_csp=True
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture(scope="module")
def admin_page(browser, module_live_server, sign_in):
    context = _context(browser, module_live_server)
    page = context.new_page()
    sign_in(page, ADMIN_EMAIL, demo.DEMO_PASSWORD, ADMIN_SECRET)
    yield page
    context.close()


@pytest.fixture(scope="module")
def anonymous_page(browser, module_live_server):
    context = _context(browser, module_live_server)
    yield context.new_page()
    context.close()


def goto(page, path: str) -> None:
    """Open ``path`` and check it is the page shown (not, say, a redirect to the login)."""
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    shown = urlsplit(page.url)
    assert shown.path == urlsplit(path).path, (path, page.url)


# --- the pages: each a function (page, request id) that leaves the page to check on screen ---


def dashboard_home(page, rid):
    goto(page, "/dashboard/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def dashboard_home_tables(page, rid):
    dashboard_home(page, rid)
    summaries = page.locator("summary").filter(has_text="Show as a table")
    expect(summaries).not_to_have_count(0)
    for summary in summaries.all():
        summary.click()
    expect(page.locator("details[open] table").first).to_be_visible()


def queue(page, rid):
    goto(page, "/dashboard/requests")
    expect(page.locator("table.queue tbody tr").first).to_be_visible()


def queue_overdue(page, rid):
    goto(page, "/dashboard/requests?status=all&due=overdue&type=&channel=&assignee=")
    expect(page.locator("tr.row-overdue").first).to_be_visible()


def request_page(page, rid):
    goto(page, f"/dashboard/requests/{rid}")
    expect(page.get_by_role("heading", name="Notices to the subject")).to_be_visible()


def records(page, rid):
    goto(page, f"/dashboard/requests/{rid}/records")
    expect(page.get_by_text("How this got here").first).to_be_visible()


def refuse_form(page, rid):
    goto(page, f"/dashboard/requests/{rid}/refuse")
    expect(page.get_by_role("button", name="Refuse the request")).to_be_visible()


def refuse_form_with_errors(page, rid):
    refuse_form(page, rid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Refuse the request").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Why is the request refused?")).to_have_attribute(
        "aria-invalid", "true"
    )


def incident_new_from_request(page, rid):
    goto(page, f"/dashboard/incidents/new?from={rid}")
    expect(page.get_by_label("Perk", exact=True)).not_to_have_value("")  # prefilled


def audit_trail(page, rid):
    goto(page, "/dashboard/audit")
    expect(page.get_by_role("button", name="Verify the whole chain now")).to_be_visible()


def audit_verified(page, rid):
    audit_trail(page, rid)
    page.get_by_role("button", name="Verify the whole chain now").click()
    expect(page.get_by_text("The chain is intact")).to_be_visible()


def officers(page, rid):
    goto(page, "/dashboard/officers")


def api_keys(page, rid):
    goto(page, "/dashboard/api-keys")


def signing_keys(page, rid):
    goto(page, "/dashboard/signing-keys")


def login(page, rid):
    goto(page, "/dashboard/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def home(page, rid):
    goto(page, "/")


def new_request(page, rid):
    """The chooser: which right, before its own form."""
    goto(page, "/requests/new")
    expect(page.get_by_role("button", name="Continue")).to_be_visible()


def new_request_with_errors(page, rid):
    new_request(page, rid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Continue").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("Choose what you would like to do.")
    expect(page).to_have_title(re.compile(r"^Error: "))


# Each right's own form, and the form showing its errors (sent empty).
RIGHT_FORMS = {
    "access": "See my data",
    "portability": "Take my data elsewhere",
    "correction": "Correct my data",
    "erasure": "Delete my data",
    "restriction": "Pause the use of my data",
    "objection": "Object to a use of my data",
    "consent-withdrawal": "Withdraw my consent",
}


def right_form(slug: str, with_errors: bool):
    def visit(page, rid):
        goto(page, f"/requests/new/{slug}")
        expect(page.get_by_role("heading", name=RIGHT_FORMS[slug], level=1)).to_be_visible()
        if with_errors:
            with page.expect_response(lambda r: r.request.method == "POST") as answer:
                page.get_by_role("button", name="Send request").click()
            assert answer.value.status == 422
            expect(page.get_by_role("alert")).to_contain_text("Enter your email address.")
            expect(page).to_have_title(re.compile(r"^Error: "))
            expect(page.get_by_role("alert")).to_be_focused()

    visit.__name__ = f"form_{slug}{'_with_errors' if with_errors else ''}".replace("-", "_")
    return visit


def new_request_with_bad_picture(page, rid):
    goto(page, "/requests/new/correction")
    page.get_by_label("Your email address").fill("person1@example.org")
    page.get_by_label("What is wrong, and what is right?").fill("I never received the phone.")
    page.get_by_label("Pictures that show what is right (optional)").set_input_files(
        {"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"not a picture"}
    )
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Send request").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("x.jpg is not a JPEG, PNG or WebP picture")
    expect(page.get_by_text("choose the pictures again")).to_be_visible()


def a_picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def correction_held_pictures(page, rid):
    """The correction form showing the pictures it holds, each with a box to take it out,
    before anything is sent (a post that files nothing)."""
    goto(page, "/requests/new/correction")
    page.get_by_label("Your email address").fill("person1@example.org")
    page.get_by_label("What is wrong, and what is right?").fill("I never received the phone.")
    page.get_by_label("Pictures that show what is right (optional)").set_input_files(
        [{"name": f"photo-{n}.png", "mimeType": "image/png", "buffer": a_picture()} for n in (1, 2)]
    )
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Check your request before sending")).to_be_visible()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Take out photo-"))).to_have_count(2)


def public_records(page, rid):
    goto(page, "/records")
    expect(page.get_by_role("button", name="Show what is held")).to_be_visible()


# --- the incident pages: each a function (page, incident id) ---


def incidents_list(page, iid):
    goto(page, "/dashboard/incidents")
    expect(page.get_by_role("link", name=re.compile(r"^INC-")).first).to_be_visible()


def incident_new(page, iid):
    goto(page, "/dashboard/incidents/new")
    expect(page.get_by_role("button", name="Open the incident")).to_be_visible()


def incident_new_with_errors(page, iid):
    incident_new(page, iid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Open the incident").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_attribute("aria-invalid", "true")


def incident_page(page, iid):
    goto(page, f"/dashboard/incidents/{iid}")
    expect(page.get_by_role("button", name=re.compile(r"^Correct all \d+$"))).to_be_visible()
    expect(page.locator("table tbody tr").first).to_be_visible()


def incident_page_with_errors(page, iid):
    incident_page(page, iid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save the apology").click()
    assert answer.value.status == 422
    expect(page.get_by_label("The apology")).to_have_attribute("aria-invalid", "true")


def incident_confirm_correct(page, iid):
    goto(page, f"/dashboard/incidents/{iid}/correct")
    expect(page.get_by_role("heading", name=re.compile(r"^Correct all \d+\?$"))).to_be_visible()


def incident_confirm_notify(page, iid):
    incident_page(page, iid)
    page.get_by_label("Email subject").fill("About your {perk} ({incident})")
    page.get_by_label("The apology").fill("Dear {name},\n\nWe are sorry. {incident}")
    page.get_by_role("button", name="Save the apology").click()
    goto(page, f"/dashboard/incidents/{iid}/notify")
    expect(page.get_by_role("heading", name=re.compile(r"^Preview: as "))).to_be_visible()


def subscribers(page, sid):
    goto(page, "/dashboard/subscribers")
    expect(page.get_by_role("link", name="Nova Mobile")).to_be_visible()


def subscribers_with_errors(page, sid):
    subscribers(page, sid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Add subscriber").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Webhook URL")).to_have_attribute("aria-invalid", "true")


def subscriber_page(page, sid):
    goto(page, f"/dashboard/subscribers/{sid}")
    expect(page.get_by_role("button", name="Redeliver")).to_be_visible()


def failed_deliveries(page, sid):
    goto(page, "/dashboard/deliveries/failed")
    expect(page.get_by_role("button", name="Redeliver")).to_be_visible()


def retention_page(page, rid):
    goto(page, "/dashboard/retention")
    expect(page.get_by_role("heading", name="Legal holds")).to_be_visible()


def retention_hold_with_errors(page, rid):
    retention_page(page, rid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Place the hold").click()
    assert answer.value.status == 422
    expect(page.get_by_label("Why the records must be kept")).to_have_attribute(
        "aria-invalid", "true"
    )


def agents_page(page, rid):
    goto(page, "/dashboard/agents")
    expect(page.get_by_role("heading", name="Register an agent")).to_be_visible()


def agents_with_errors(page, rid):
    agents_page(page, rid)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Register agent").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_be_visible()


def record_of_processing(page, rid):
    goto(page, "/dashboard/record-of-processing")
    expect(page.get_by_role("heading", name="Security measures (Art. 32)")).to_be_visible()


WEBHOOKS = [subscribers, subscribers_with_errors, subscriber_page, failed_deliveries]
SIGNED_IN = [
    dashboard_home,
    dashboard_home_tables,
    queue,
    queue_overdue,
    request_page,
    records,
    refuse_form,
    refuse_form_with_errors,
    incident_new_from_request,
    audit_trail,
    audit_verified,
    officers,
    api_keys,
    signing_keys,
    retention_page,
    retention_hold_with_errors,
    record_of_processing,
    agents_page,
    agents_with_errors,
]
INCIDENTS = [
    incidents_list,
    incident_new,
    incident_new_with_errors,
    incident_page,
    incident_page_with_errors,
    incident_confirm_correct,
    incident_confirm_notify,
]
SIGNED_OUT = [
    login,
    home,
    new_request,
    new_request_with_errors,
    *(right_form(slug, with_errors) for slug in RIGHT_FORMS for with_errors in (False, True)),
    new_request_with_bad_picture,
    correction_held_pictures,
    public_records,
]


def axe_violations(page, axe_script) -> list[dict]:
    page.add_script_tag(path=str(axe_script))
    # axe.run() resolves to {violations, passes, incomplete, inapplicable, url, ...}; each
    # violation has id, impact ("minor" to "critical"), help, helpUrl and nodes (each with its
    # CSS target, html and failureSummary). Only violations are wanted: resultTypes spares
    # collecting every node of the other three (a few times faster on the long tables).
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return result["violations"]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} node(s)]")
        for node in v["nodes"][:3]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def check(page, axe_script) -> None:
    violations = axe_violations(page, axe_script)
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if failing:
        pytest.fail(
            f"axe-core found serious or critical violations on {page.url}:\n{describe(failing)}",
            pytrace=False,
        )


@pytest.mark.parametrize("visit", SIGNED_IN, ids=lambda f: f.__name__.replace("_", "-"))
def test_dashboard_page_has_no_serious_violations(visit, admin_page, story_request_id, axe_script):
    visit(admin_page, story_request_id)
    check(admin_page, axe_script)


@pytest.mark.parametrize("visit", INCIDENTS, ids=lambda f: f.__name__.replace("_", "-"))
def test_incident_page_has_no_serious_violations(visit, admin_page, incident_id, axe_script):
    visit(admin_page, incident_id)
    check(admin_page, axe_script)


@pytest.mark.parametrize("visit", WEBHOOKS, ids=lambda f: f.__name__.replace("_", "-"))
def test_webhook_page_has_no_serious_violations(visit, admin_page, subscriber_id, axe_script):
    visit(admin_page, subscriber_id)
    check(admin_page, axe_script)


@pytest.mark.parametrize("visit", SIGNED_OUT, ids=lambda f: f.__name__.replace("_", "-"))
def test_signed_out_page_has_no_serious_violations(
    visit, anonymous_page, story_request_id, axe_script
):
    visit(anonymous_page, story_request_id)
    check(anonymous_page, axe_script)


# --- the public request pages on a phone: no sideways scrolling, targets a finger can hit ---

# Each a function (page) that leaves a page to measure; the request forms, their errors, the
# pictures held before sending, and the question before a withdrawal.
NARROW_PAGES = {
    "home": home,
    "chooser": new_request,
    "chooser-with-errors": new_request_with_errors,
    **{f"form-{slug}": right_form(slug, with_errors=slug == "restriction") for slug in RIGHT_FORMS},
    "held-pictures": correction_held_pictures,
}
# What a person taps: boxes and buttons, and links that stand alone (not a link in a sentence,
# which WCAG 2.5.8 exempts).
TARGETS = (
    "main input[type=radio], main input[type=checkbox], main button, main a.button, "
    ".back a, .rights h2 a, .error-summary a"
)


@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("name", list(NARROW_PAGES))
def test_request_pages_fit_a_phone(browser, module_live_server, name, width):
    context = browser.new_context(
        base_url=module_live_server.url, viewport={"width": width, "height": 700}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        NARROW_PAGES[name](page, None)
        page.wait_for_load_state("load")  # the style sheet too, after a form's post
        sideways = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert sideways == 0, f"{name} scrolls sideways by {sideways} px at {width} px"
        small = page.evaluate(
            """(selector) => [...document.querySelectorAll(selector)]
                .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect()])
                .filter(([, r]) => r.width > 0 && (r.width < 24 || r.height < 24))
                .map(([html, r]) => `${html} ${r.width}x${r.height}`)""",
            TARGETS,
        )
        assert small == [], f"targets under 24x24 px on {name} at {width} px: {small}"
        checked = page.evaluate(f"document.querySelectorAll({TARGETS!r}).length")
        assert checked > 0
    finally:
        context.close()


def test_withdraw_question_has_no_serious_violations(
    browser, module_live_server, smtp_server, axe_script
):
    """Withdrawing asks first: the question page, from the request's own (confirmed) page."""
    address = "withdraw-question@example.org"
    context = _context(browser, module_live_server)
    page = context.new_page()
    try:
        goto(page, "/requests/new/objection")
        page.get_by_label("Your email address").fill(address)
        page.get_by_label("Influence scoring (profiling)").check()
        page.get_by_role("button", name="Send request").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        mailbox = smtp_server.handler
        mail = wait_for(lambda: mailbox.to(address), timeout=10)[-1]
        link = re.search(r"https?://\S+/verify/\S+", mailbox.body(mail)).group(0)
        page.goto(link)
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("link", name="Withdraw this request").click()
        expect(page.get_by_role("heading", name="Withdraw this request?")).to_be_visible()
        check(page, axe_script)
        page.get_by_role("link", name="No, keep my request").click()
        expect(page.locator(".status")).to_have_text("open")
        page.get_by_role("link", name="Withdraw this request").click()
        page.get_by_role("button", name="Yes, withdraw this request").click()
        expect(page.locator(".status")).to_have_text("withdrawn")
    finally:
        context.close()
