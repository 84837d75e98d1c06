"""Every public page at 320, 375 and 1280 px (issue 16): no sideways scrolling, every target a
finger can hit, and nothing axe-core calls serious or critical.

The pages: the start page, each right's form and one form showing its errors, a request's own
page (an open correction with its pictures and summary, a completed erasure with its receipt in
words, a completed access with its downloads), the access report, /records and a statement of
what is still held, /verify-receipt answering for a genuine receipt, and the question before a
withdrawal; and the pages between (the answer to a form, the questions of an emailed link, a
link refused, a request this browser may not see). For each, at each width:

- ``document.documentElement.scrollWidth`` is never wider than the viewport;
- every visible interactive element (a, button, input, select, textarea, summary, a label
  wrapping an input) is at least 24 x 24 px, or has the spacing WCAG 2.2 SC 2.5.8 allows (a
  24 px circle on its centre meets no other target nor another small target's circle); a link
  inside the running text of a paragraph or list item is exempt (the SC's "inline" exception);
- axe-core finds no violation of impact "serious" or "critical".

One server with the demo data serves the module. The requests are filed in-app, already
verified, and each browser (one per width) opens them with a resume link issued in-app, as a
subject would from their email.

Every page is checked in English and in German (the browser asks for German as a German
browser would, by Accept-Language); in German its visible text must also hold no English
(tests/test_languages.py's detector). The pages are found by their German words, taken from the
catalogue (:func:`t`), so a page left in English is not found.
"""

import io
import os
import time

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from rights.erasure import receipts
from rights.lifecycle import evidence, requests, verification
from storage.db import db
from storage.models import Receipt, RightsRequest
from tests.browser.test_accessibility import RIGHT_FORMS, check, goto
from tests.test_languages import english_words
from tests.test_translations import catalogue

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 1280)
LANGUAGES = {"en": "en-GB", "de": "de-DE"}
_GERMAN = {}


def t(page, text: str) -> str:
    """``text`` in the page's language: the German catalogue's entry on a German page."""
    if page.lang != "de":
        return text
    if not _GERMAN:
        _GERMAN.update({m.id: m.string for m in catalogue("de") if isinstance(m.id, str)})
    return _GERMAN.get(text) or text


ERASURE_TIMEOUT = 20.0
MIN_TARGET = 24


def a_picture(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "PNG")
    return out.getvalue()


def _file(type_: str, member: str, **details) -> RightsRequest:
    return requests.file(
        type=type_,
        member_id=member,
        channel="web",
        verified=True,
        actor="subject",
        details=details or {},
    )


@pytest.fixture(scope="module")
def state(module_live_server) -> dict:
    """The requests the pages show, by name (their references), the erasure's record key and
    its receipt: the erasure done by the server's worker, the key taken as the page would."""
    app = module_live_server.app
    with app.app_context():
        story = db.session.scalars(
            select(RightsRequest).where(
                RightsRequest.type == "rectification", RightsRequest.status == "open"
            )
        ).one()
        evidence.attach(
            story,
            [
                evidence.check_picture(f"photo-{n}.png", a_picture(colour))
                for n, colour in ((1, (30, 120, 200)), (2, (200, 120, 30)))
            ],
        )
        made = {
            "correction": story,
            "access": _file("access", "m-0003"),
            "erasure": _file("erasure", "m-0004"),
            "objection": _file(
                "objection", "m-0005", purpose="profiling", grounds_text="I object to scoring."
            ),
        }
        unconfirmed = requests.file(
            type="erasure", email="unconfirmed@example.org", channel="web", actor="subject"
        )
        # Links only looked at (GET), never spent: the same question at every width.
        links = {
            "verify": verification.issue(unconfirmed, "verify"),
            "resume": verification.issue(made["correction"], "resume"),
        }
        db.session.commit()
        ids = {name: req.id for name, req in made.items()}
        refs = {name: req.reference for name, req in made.items()}

    deadline = time.monotonic() + ERASURE_TIMEOUT
    while True:
        with app.app_context():
            erased = db.session.get(RightsRequest, ids["erasure"])
            if erased.status == "completed":
                receipt = db.session.scalars(
                    select(Receipt).where(Receipt.request_id == erased.id)
                ).one()
                # Shown once: taken here, so that every width shows the same page.
                record_key = receipts.reveal_record_key(receipt)
                jws = receipt.jws
                db.session.commit()
                break
            db.session.remove()
        assert time.monotonic() < deadline, "the erasure did not complete"
        time.sleep(0.2)
    assert record_key, "the record key was shown before"
    return {"ids": ids, "refs": refs, "links": links, "record_key": record_key, "receipt": jws}


@pytest.fixture(scope="module")
def pages(browser, module_live_server, state):
    """One browser per width, each granted the module's requests through resume links."""
    made = {}

    def at(width: int, lang: str):
        if (width, lang) not in made:
            context = browser.new_context(
                base_url=module_live_server.url,
                viewport={"width": width, "height": 800},
                bypass_csp=True,  # the app's CSP allows only its own scripts: axe is injected
                locale=LANGUAGES[lang],
            )
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.lang = lang
            made[width, lang] = (context, page)
            for key, request_id in state["ids"].items():
                with module_live_server.app.app_context():
                    req = db.session.get(RightsRequest, request_id)
                    token = verification.issue(req, "resume")
                    db.session.commit()
                page.goto(f"/resume/{token}")
                page.get_by_role("button", name=t(page, "Continue")).click()
                expect(page.locator("h1")).to_contain_text(state["refs"][key])
        return made[width, lang][1]

    yield at
    for context, _ in made.values():
        context.close()


# --- the pages: each a function (page, state) that leaves the page to measure on screen ---


def start_page(page, state):
    goto(page, "/")
    expect(page.get_by_role("link", name=t(page, "Delete my data"))).to_be_visible()


def right_form(slug: str):
    def visit(page, state):
        goto(page, f"/requests/new/{slug}")
        expect(
            page.get_by_role("heading", name=t(page, RIGHT_FORMS[slug]), level=1)
        ).to_be_visible()

    return visit


def form_with_errors(page, state):
    goto(page, "/requests/new/correction")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=t(page, "Send request")).click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text(t(page, "Enter your email address."))


def status_page(name: str, shown: str):
    def visit(page, state):
        goto(page, f"/requests/{state['refs'][name]}")
        text = shown(page) if callable(shown) else t(page, shown)
        expect(page.get_by_text(text).first).to_be_visible()

    return visit


def report(page, state):
    goto(page, f"/requests/{state['refs']['access']}/report")
    expect(page.get_by_role("heading", name=t(page, "Your data report"))).to_be_visible()
    # Open the first records and their stories: what is folded away must fit as well.
    for summary in page.locator("main summary").all()[:6]:
        if summary.is_visible():
            summary.click()


def records_form(page, state):
    goto(page, "/records")
    expect(page.get_by_role("button", name=t(page, "Show what is held"))).to_be_visible()


def statement(page, state):
    records_form(page, state)
    page.get_by_label(t(page, "Your record key")).fill(state["record_key"])
    page.get_by_role("button", name=t(page, "Show what is held")).click()
    expect(
        page.get_by_role("heading", name=t(page, "What we still hold about you"))
    ).to_be_visible()


def verify_receipt(page, state):
    goto(page, "/verify-receipt")
    page.get_by_label(t(page, "Paste the receipt or statement")).fill(state["receipt"])
    page.get_by_role("button", name=t(page, "Check it")).click()
    expect(page.locator(".notice.verified")).to_be_visible()


def withdraw_question(page, state):
    goto(page, f"/requests/{state['refs']['objection']}/confirm-withdrawal")
    expect(page.get_by_role("heading", name=t(page, "Withdraw this request?"))).to_be_visible()


def sent(page, state):
    goto(page, "/requests/sent")
    expect(page.get_by_role("heading", name=t(page, "Check your email"))).to_be_visible()


def confirm_question(page, state):
    goto(page, f"/verify/{state['links']['verify']}")
    expect(page.get_by_role("button", name=t(page, "Confirm"))).to_be_visible()


def resume_question(page, state):
    goto(page, f"/resume/{state['links']['resume']}")
    expect(page.get_by_role("button", name=t(page, "Continue"))).to_be_visible()


def link_invalid(page, state):
    response = page.goto("/resume/" + "x" * 43)
    assert response is not None and response.status == 400
    expect(
        page.get_by_role("heading", name=t(page, "This link is not valid any more"))
    ).to_be_visible()


def request_locked(page, state):
    goto(page, "/requests/LR-0000-0000")
    expect(page.get_by_role("button", name=t(page, "Email me a new link"))).to_be_visible()


PAGES = {
    "start": start_page,
    **{f"form-{slug}": right_form(slug) for slug in RIGHT_FORMS},
    "form-with-errors": form_with_errors,
    "correction-open": status_page(
        "correction",
        lambda page: t(page, "Picture %(n)s (%(type)s)").split("%(type)s")[0] % {"n": 1},
    ),
    "erasure-completed": status_page("erasure", "Your deletion receipt"),
    "access-completed": status_page("access", "Read your report"),
    "access-report": report,
    "records": records_form,
    "statement": statement,
    "verify-receipt": verify_receipt,
    "withdraw-question": withdraw_question,
    # The pages between: the answer to a form, the links' questions, a link or page refused.
    "sent": sent,
    "confirm-question": confirm_question,
    "resume-question": resume_question,
    "link-invalid": link_invalid,
    "request-locked": request_locked,
}

# The page's words for the reader, without what is shown as it was stored (translate="no": a
# member's own words, an email's subject as sent, a signed document), what was typed or pasted
# into a text box, nor scripts (axe's own source, injected).
GERMAN_TEXT = """(() => {
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('[translate=no], textarea, script, style, template')
    .forEach((e) => e.remove());
  return copy.textContent;
})()"""

# The targets under 24 x 24 px with too little room around them (WCAG 2.2 SC 2.5.8), each as
# "<html> WxH". Visible interactive elements only; a link in running text (in a <p> or <li>
# with words of its own, not in a heading) is inline and exempt.
SMALL_TARGETS = """(min) => {
  const candidates = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, label');
  const targets = [];
  for (const el of candidates) {
    if (el.tagName === 'LABEL' && !el.querySelector('input, select, textarea')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= 0 || r.bottom <= 0) continue;
    if (r.width <= 1 && r.height <= 1) continue;  // visually hidden
    let inline = false;
    if (el.tagName === 'A' && !el.closest('h1, h2, h3, h4, h5, h6')) {
      const text = el.parentElement && el.parentElement.closest('p, li');
      inline = !!text && text.textContent.trim().length > el.textContent.trim().length;
    }
    targets.push({el, r, inline, small: r.width < min || r.height < min});
  }
  const centre = (r) => [r.left + r.width / 2, r.top + r.height / 2];
  const distanceToRect = ([x, y], r) => Math.hypot(
    Math.max(r.left - x, 0, x - r.right), Math.max(r.top - y, 0, y - r.bottom));
  const failing = [];
  for (const t of targets) {
    if (!t.small || t.inline) continue;
    const c = centre(t.r);
    const crowded = targets.some((o) => {
      if (o === t || o.el.contains(t.el) || t.el.contains(o.el)) return false;
      if (o.el.tagName === 'LABEL' && o.el.control === t.el) return false;
      if (t.el.tagName === 'LABEL' && t.el.control === o.el) return false;
      if (distanceToRect(c, o.r) < min / 2) return true;
      if (o.small && !o.inline) {
        const [x, y] = centre(o.r);
        return Math.hypot(x - c[0], y - c[1]) < min;
      }
      return false;
    });
    if (crowded) {
      const size = `${t.r.width.toFixed(1)}x${t.r.height.toFixed(1)}`;
      failing.push(`${t.el.outerHTML.slice(0, 100)} ${size}`);
    }
  }
  return failing;
}"""


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_public_page_fits_the_width(pages, state, axe_script, name, width, lang):
    page = pages(width, lang)
    PAGES[name](page, state)
    page.wait_for_load_state("load")  # the style sheet too, after a form's post
    # The width inside any vertical scroll bar (the viewport's, if the bar takes room).
    wide, room = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert room <= width
    assert wide <= room, f"{name} is {wide} px wide in {room} px at {width} px: scrolls sideways"
    small = page.evaluate(SMALL_TARGETS, MIN_TARGET)
    assert small == [], f"targets under 24x24 px without room on {name} at {width} px: {small}"
    check(page, axe_script)
    if lang == "de":
        assert page.evaluate("document.documentElement.lang") == "de"
        english = english_words(page.evaluate(GERMAN_TEXT))
        assert english == [], f"English on the German {name} page: {english}"
    if shots := os.environ.get("LETHE_SCREENSHOT_DIR"):  # to look at them: a folder
        page.screenshot(path=f"{shots}/{name}-{width}-{lang}.png", full_page=True)
