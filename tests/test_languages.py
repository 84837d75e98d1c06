"""English and German (issue 16): how a page's language is chosen and remembered, that the
officers' dashboard and the API stay English, that a request's emails are written in the
language it was filed in, and that German pages and emails hold no English sentence.

"No English" is checked by the words English cannot do without and German never uses ("the",
"your", "we", "with"...): one such word in a German page's visible text is a string that
escaped the catalogue. The data on the pages (names, brands, perk items, addresses) is chosen
to hold none of them.
"""

import re
from datetime import timedelta
from email.header import decode_header, make_header
from gettext import GNUTranslations
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.dates import format_date
from sqlalchemy import select

from demo import loader as demo
from rights.erasure import erasure
from rights.lifecycle import notices, requests
from storage import vault, wording
from storage.clock import utcnow
from storage.db import db
from storage.models import RightsRequest
from tests import factories
from tests.helpers import deliver
from web import i18n
from web.public.forms import SLUGS

ROOT = Path(__file__).resolve().parent.parent

ENGLISH_ONLY = {
    "the", "your", "you", "we", "our", "us", "and", "of", "with", "this", "that", "is", "are",
    "be", "has", "have", "will", "what", "when", "which", "not", "from", "for", "by", "it",
    "at", "on", "or", "if", "can", "been", "please", "request", "requests", "data", "here",
}  # fmt: skip
WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+")


class _Visible(HTMLParser):
    """The text a reader sees: no script, style or head; attributes a person reads too."""

    SKIP = {"script", "style", "head", "template"}

    def __init__(self):
        super().__init__()
        self.skipping = 0
        self.stack: list[str] = []  # the skipped elements open now
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        # What is shown as it was stored (translate="no") is data, not the page's words.
        if tag in self.SKIP or ("translate", "no") in attrs:
            self.stack.append(tag)
            self.skipping += 1
        for name, value in attrs:
            if name in {"alt", "title", "placeholder", "aria-label"} and value:
                self.parts.append(value)
        if tag == "input" and dict(attrs).get("type") in {"submit", "button"}:
            self.parts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


URL = re.compile(r"https?://\S+")
# A word as a sentence writes it: lower case, or capitalised. Not "IF" or "iF": letters of a
# token, a reference (LR-BE7Q-…) or a key, which are random.
AS_WRITTEN = re.compile(r"[A-ZÄÖÜ]?[a-zäöüß]+")


def english_words(text: str) -> list[str]:
    """The English-only words in ``text``, with a little context each; links left out (their
    tokens are random letters)."""
    found = []
    words = WORD.findall(URL.sub(" ", text))
    for i, word in enumerate(words):
        if AS_WRITTEN.fullmatch(word) and word.lower() in ENGLISH_ONLY:
            found.append(" ".join(words[max(0, i - 3) : i + 4]))
    return found


def test_the_english_detector():
    assert english_words("Wir haben Ihre Anfrage erhalten.") == []
    assert english_words("Wir haben your request erhalten.")
    # Random letters are not words: a link's token, a reference, a key.
    assert english_words("Link: http://lethe.test/resume/aB-iF_on9 Vorgang LR-BE7Q-ON2X") == []
    assert visible_text("<p title='Hallo'>Text<script>the</script></p>") == "Hallo Text"
    stored = '<dl><dd translate="no">the <b>as sent</b></dd><dd>Wort</dd></dl>'
    assert visible_text(stored) == "Wort"


GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def test_the_language_follows_accept_language(client):
    german = client.get("/", headers=GERMAN).get_data(as_text=True)
    assert '<html lang="de">' in german and "Ihre Daten" in german
    english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "your data" in english
    # A language Lethe does not speak: English.
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "fr"}).get_data(
        as_text=True
    )


def test_the_switch_is_on_every_public_page_and_is_remembered(client):
    page = client.get("/requests/new/access", headers=GERMAN).get_data(as_text=True)
    # German page: the switch offers English, named in English, and sends back to this page.
    assert 'name="lang" value="en" lang="en">English</button>' in page
    assert 'name="next" value="/requests/new/access"' in page
    resp = client.post("/language", data={"lang": "en", "next": "/requests/new/access"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/requests/new/access"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=31536000" in cookie
    # Remembered: the choice beats the browser's header from now on.
    again = client.get("/requests/new/access", headers=GERMAN).get_data(as_text=True)
    assert '<html lang="en">' in again and 'value="de" lang="de">Deutsch</button>' in again


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil", "", None]
)
def test_the_switch_only_sends_back_to_this_site(client, target):
    data = {"lang": "de"} | ({"next": target} if target is not None else {})
    resp = client.post("/language", data=data)
    assert resp.status_code == 303 and resp.headers["Location"] == "/"


def test_an_unknown_language_changes_nothing(client):
    resp = client.post("/language", data={"lang": "xx", "next": "/"})
    assert resp.status_code == 303 and "Set-Cookie" not in resp.headers


def test_the_dashboard_and_the_api_stay_english(client):
    login = client.get("/dashboard/login", headers=GERMAN).get_data(as_text=True)
    assert '<html lang="en">' in login and "Deutsch" not in login
    missing = client.get("/api/v1/requests/LR-NOPE", headers=GERMAN)
    assert missing.status_code in (401, 404) and missing.is_json


def _file_access(client, n: int, headers=None):
    resp = client.post(
        "/requests/new/access",
        data={"type": "access", "email": f"person{n}@example.org"},
        headers=headers or {},
    )
    assert resp.status_code == 303


def test_a_request_remembers_its_language_and_its_emails_use_it(app, mailbox):
    with app.app_context():
        factories.member(1)
        factories.member(2)
        db.session.commit()
    client = app.test_client()
    _file_access(client, 1, GERMAN)
    _file_access(app.test_client(), 2)
    deliver(app)
    with app.app_context():
        langs = dict(
            db.session.execute(select(RightsRequest.reference, RightsRequest.locale)).all()
        )
    assert sorted(langs.values()) == ["de", "en"]
    with app.app_context():
        due = db.session.scalars(
            select(RightsRequest.due_at).where(RightsRequest.locale == "de")
        ).one()

    german = mailbox.last_to("person1@example.org")
    body = mailbox.body(german)
    assert "Bitte bestätigen" in german["Subject"] or "bestätigen" in body
    assert not english_words(body.split("\n\n")[0]), body
    english = mailbox.body(mailbox.last_to("person2@example.org"))
    assert "To confirm it was you" in english
    # Confirmed from the German email (the link's page is German too): the acknowledgement,
    # with the deadline written as German writes dates.
    path = re.search(r"http://lethe\.test(/verify/[A-Za-z0-9_\-]+)", body).group(1)
    assert '<html lang="de">' in client.get(path, headers=GERMAN).get_data(as_text=True)
    assert client.post(path, headers=GERMAN).status_code in (200, 302, 303)
    deliver(app)
    # The acknowledgement (the report may be ready, and emailed, in the same round).
    bodies = [mailbox.body(m) for m in mailbox.to("person1@example.org")]
    received = [b for b in bodies if format_date(due, "long", locale="de_DE") in b]
    assert received, bodies
    assert not english_words(received[0].split("\n\n")[0]), received[0]


def _german_pages(app):
    client = app.test_client()
    paths = ["/", "/requests/new", "/records", "/verify-receipt"]
    paths += [f"/requests/new/{slug}" for slug in SLUGS.values()]
    for path in paths:
        resp = client.get(path, headers=GERMAN)
        assert resp.status_code == 200, path
        yield path, resp.get_data(as_text=True)
    for slug in SLUGS.values():  # each form sent empty: its error state
        resp = client.post(f"/requests/new/{slug}", data={}, headers=GERMAN)
        yield f"{slug} errors", resp.get_data(as_text=True)
    resp = client.post("/records", data={"record_key": "T63J-6O4V"}, headers=GERMAN)
    yield "/records typo", resp.get_data(as_text=True)
    resp = client.get("/no-such-page", headers=GERMAN)
    assert resp.status_code == 404
    yield "404", resp.get_data(as_text=True)


def test_german_public_pages_hold_no_english(app):
    problems = {
        path: english_words(visible_text(html))
        for path, html in _german_pages(app)
        if english_words(visible_text(html))
    }
    assert not problems, problems


def test_every_notice_written_in_german_holds_no_english(app, mailbox):
    """Each kind of email, for a request filed in German, from the demo's story member (awards,
    list entries, consents, so that the outcomes name records): no English in its title or
    body, apart from what an officer wrote (given here in German)."""
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        with wording.in_language("de"):  # filed from a German page
            objection = requests.file(
                type="objection",
                member_id=demo.STORY_MEMBER,
                channel="web",
                verified=True,
                actor="subject",
                details={"purpose": "profiling", "grounds_text": "Ich widerspreche."},
            )
            access = requests.file(
                type="access", member_id=demo.STORY_MEMBER, channel="web", verified=True,
                actor="subject",
            )  # fmt: skip
        assert objection.locale == access.locale == "de"
        german = {objection.reference, access.reference}
        subject = objection.subject_id
        objection.extension_reason_enc = vault.encrypt(
            subject, "rights_requests.extension_reason_enc", "Die Prüfung dauert länger."
        )
        objection.decision_reason_enc = vault.encrypt(
            subject, "rights_requests.decision_reason_enc", "Es gibt zwingende Gründe."
        )
        token = "t" * 43
        notices.verification(objection, token)
        notices.resume_link(objection, token)
        notices.extended(objection)
        notices.refused(objection, restriction_ends=utcnow() + timedelta(days=3))
        notices.withdrawn(objection, restriction_ends=utcnow() + timedelta(days=3))
        notices.information_requested(objection, "Welche Werbung meinen Sie?", token)
        notices.restriction_lifting(objection, "Der Grund ist entfallen.", utcnow())
        notices.completed(objection)
        notices.completed_with_download(access, token)
        db.session.commit()
    deliver(app)  # before the erasure, which drops what is still queued for the subject
    with app.app_context():
        with wording.in_language("de"):
            erasure_request = requests.file(
                type="erasure", member_id=demo.STORY_MEMBER, channel="web", verified=True,
                actor="subject",
            )  # fmt: skip
        db.session.commit()
        german.add(erasure_request.reference)
        erasure.run(erasure_request.id)
        db.session.commit()
    deliver(app)
    emails = {
        str(make_header(decode_header(m["Subject"]))): mailbox.body(m)
        for m in mailbox.to(demo.STORY_EMAIL)
        if any(ref in m["Subject"] for ref in german)  # not the demo's own English requests
    }
    assert len(emails) >= 11, list(emails)
    english = {
        title: english_words(f"{title} {body}")
        for title, body in emails.items()
        if english_words(f"{title} {body}")
    }
    assert not english, english


def test_the_officer_sees_the_language_the_subject_is_written_to_in(app, login_as):
    with app.app_context():
        factories.member(1)
        db.session.commit()
        with wording.in_language("de"):
            german = requests.file(
                type="access", member_id="m-1", channel="web", verified=True, actor="subject"
            )
        english = requests.file(
            type="access", member_id="m-1", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        ids = german.id, english.id
    officer = login_as("officer")
    page = officer.get(f"/dashboard/requests/{ids[0]}", headers=GERMAN).get_data(as_text=True)
    assert "<dt>Language</dt><dd>German — the subject's emails are in German" in page
    page = officer.get(f"/dashboard/requests/{ids[1]}").get_data(as_text=True)
    assert "<dt>Language</dt><dd>English</dd>" in page


def test_a_server_started_without_make_compiles_its_catalogues(tmp_path):
    """``gunicorn 'app:create_app()'`` from a bare checkout: the .mo is built from the .po at
    start, and only when it is missing or older."""
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    shipped = ROOT / "translations" / "de" / "LC_MESSAGES" / "messages.po"
    (folder / "messages.po").write_bytes(shipped.read_bytes())
    assert i18n.compile_catalogues(tmp_path) == [folder / "messages.mo"]
    with open(folder / "messages.mo", "rb") as f:
        german = GNUTranslations(f)
    assert german.gettext("Skip to content") == "Zum Inhalt springen"
    assert i18n.compile_catalogues(tmp_path) == []  # up to date: nothing to do
