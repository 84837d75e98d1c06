"""Public pages speak with one voice: the platform's name first (Lethe is the service behind
it), and sentence case for titles, headings, labels, buttons and statuses — "Too many
requests", never werkzeug's "Too Many Requests"."""

import re
from html.parser import HTMLParser

import pytest

from storage.db import db
from tests import factories
from tests.helpers import deliver
from web.public.forms import SLUGS

PLATFORM = "Acme Perks"  # not the default, so the setting is seen to be honoured
# Names that are rightly capitalised word by word (brands in the demo data, the controller).
PROPER_NAMES = {PLATFORM, "Perkly Inc", "Nova Mobile"}
# Two capitalised words in a row ("Too Many", "In Progress"); a reference like LR-... is
# all capitals, so it is not matched.
TITLE_CASE = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
WORDED = {"title", "h1", "h2", "h3", "h4", "h5", "h6", "label", "legend", "button", "summary"}
WORDED |= {"th", "dt"}


class _Wording(HTMLParser):
    """The text of each titled, heading, label or button element (and of `.status`), and
    the header's brand."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []
        self.brand = ""
        self._in_brand = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "input" and attrs.get("type") in {"submit", "button"}:
            self.texts.append(attrs.get("value") or "")
        if tag in {"br", "img", "input", "meta", "link", "hr"}:
            return
        worded = tag in WORDED or "status" in classes
        self.stack.append((tag, worded))
        if worded:
            self.texts.append("")
        if "brand" in classes or self._in_brand:
            self._in_brand += 1

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1][0] == tag:
            self.stack.pop()
        if self._in_brand:
            self._in_brand -= 1

    def handle_data(self, data):
        if any(worded for _, worded in self.stack):
            self.texts[-1] += data
        if self._in_brand:
            self.brand += data


def _words(html: str) -> _Wording:
    parsed = _Wording()
    parsed.feed(html)
    return parsed


def _title_case(text: str) -> list[str]:
    text = " ".join(text.split())
    for name in PROPER_NAMES:
        text = text.replace(name, "")
    return TITLE_CASE.findall(text)


@pytest.fixture
def wording_app(app_factory):
    return app_factory(
        PLATFORM_NAME=PLATFORM,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STATEMENTS="1 per minute",
        RATELIMIT_PUBLIC_FORMS="1 per minute",
    )


def _pages(app):
    client = app.test_client()
    paths = ["/", "/requests/new", "/records", "/verify-receipt"]
    paths += [f"/requests/new/{slug}" for slug in SLUGS.values()]
    for path in paths:
        resp = client.get(path)
        assert resp.status_code == 200, path
        yield path, resp.get_data(as_text=True)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    yield "404", missing.get_data(as_text=True)
    for _ in range(2):  # a form sent, then the limit: the error page
        limited = client.post("/requests/new", data={})
    assert limited.status_code == 429
    yield "429", limited.get_data(as_text=True)
    for _ in range(2):  # a wrong record key, then the limit: the form says so itself
        limited = client.post("/records", data={"record_key": "nonsense"})
    assert limited.status_code == 429
    yield "429 /records", limited.get_data(as_text=True)


def test_public_pages_carry_the_platforms_name_in_sentence_case(wording_app):
    seen = 0
    for path, html in _pages(wording_app):
        page = _words(html)
        assert " ".join(page.brand.split()).startswith(f"{PLATFORM} · your data"), path
        assert "Lethe" not in page.brand, path
        assert re.search(rf"<title>[^<]* · {PLATFORM}</title>", html), path
        assert "Privacy requests are handled by Lethe for" in html, path
        texts = [t for t in page.texts if t.strip()]
        assert texts, path
        offending = {phrase for text in texts for phrase in _title_case(text)}
        assert not offending, f"{path}: {sorted(offending)}"
        seen += 1
    assert seen == 4 + len(SLUGS) + 3


def test_error_titles_are_sentence_case(wording_app):
    pages = dict(_pages(wording_app))
    assert "<h1>Not found</h1>" in pages["404"] and "Not Found" not in pages["404"]
    assert "<h1>Too many requests</h1>" in pages["429"]
    assert "Too Many Requests" not in pages["429"]


def test_the_check_catches_title_case():
    """The detector itself: Title Case is caught, proper names and references are not."""
    assert _title_case("Too Many Requests") == ["Too Many Requests"]
    assert _title_case("In Progress") == ["In Progress"]
    assert _title_case("Your phone from Nova Mobile") == []
    assert _title_case("Request LR-7Q2K Received") == []
    assert _title_case(f"Questions for {PLATFORM}") == []


def test_the_officers_dashboard_stays_lethe(app_factory):
    app = app_factory(PLATFORM_NAME=PLATFORM)
    client = app.test_client()
    login = client.get("/dashboard/login").get_data(as_text=True)
    assert re.search(r"<title>[^<]* · Lethe</title>", login)
    assert PLATFORM not in _words(login).brand and "Lethe" in _words(login).brand


def test_emails_come_from_the_platform_and_are_signed_with_its_name(app_factory, mailbox):
    app = app_factory(PLATFORM_NAME=PLATFORM)
    with app.app_context():
        factories.member(1)
        db.session.commit()
    form = {"type": "access", "email": "person1@example.org"}
    assert app.test_client().post("/requests/new/access", data=form).status_code == 303
    deliver(app)
    mail = mailbox.last_to("person1@example.org")
    assert mail["From"] == f"{PLATFORM} <privacy@perkly.example>"  # MAIL_SENDER's address
    body = mailbox.body(mail)
    assert f"{PLATFORM} privacy team, for Perkly Inc." in body and "Lethe" not in body
