"""GET /api/v1/docs: the browsable API docs (Swagger UI), served entirely by Lethe — no CDN —
under the site's Content-Security-Policy, which allows no inline script.
(tests/browser/test_api_docs.py checks in a real browser that the page draws every
operation with no CSP error.)"""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.helpers import API
from web import CSP


class _Page(HTMLParser):
    """The scripts and stylesheets a page loads, and any script written inline."""

    def __init__(self):
        super().__init__()
        self.scripts, self.styles, self.inline, self.spec_urls = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = True
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])
        elif tag == "style":
            self.inline.append("<style>")
        if any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag}> event handler")
        if "style" in attrs:
            self.inline.append(f"<{tag} style>")
        if "data-spec-url" in attrs:
            self.spec_urls.append(attrs["data-spec-url"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:80])


@pytest.fixture
def docs(client):
    resp = client.get(API + "/docs")
    assert resp.status_code == 200
    parsed = _Page()
    parsed.feed(resp.get_data(as_text=True))
    return resp, parsed


def test_docs_page_answers_with_the_sites_csp(docs):
    resp, _ = docs
    assert resp.mimetype == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_docs_page_has_no_inline_script_or_style(docs):
    _, page = docs
    assert page.scripts, "the page loads Swagger UI and its start-up script"
    assert not page.inline, page.inline


def test_every_script_and_stylesheet_of_the_docs_page_is_served_here(client, docs):
    _, page = docs
    assert len(page.scripts) == 2 and len(page.styles) == 1
    for url, kinds in [(u, ("javascript",)) for u in page.scripts] + [
        (u, ("css",)) for u in page.styles
    ]:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not served by Lethe"
        got = client.get(url)
        assert got.status_code == 200, url
        assert any(kind in got.mimetype for kind in kinds), (url, got.mimetype)
        assert got.get_data(), url


def test_docs_page_reads_the_api_document(client, docs):
    _, page = docs
    assert page.spec_urls == [API + "/openapi.json"]
    assert client.get(page.spec_urls[0]).status_code == 200


def test_swagger_ui_is_served_with_its_licence_and_nothing_else_of_its_package(client):
    assert b"Apache License" in client.get("/swagger-ui/LICENSE").get_data()
    for name in ("index.html", "oauth2-redirect.html", "../__init__.py", "VERSION"):
        assert client.get(f"/swagger-ui/{name}").status_code == 404, name


def test_swagger_ui_files_are_cacheable_unlike_the_api(client):
    """Like the app's own static files: no no-store (the API's answers all carry it)."""
    resp = client.get("/swagger-ui/swagger-ui.css")
    assert "no-store" not in resp.headers.get("Cache-Control", "")
    assert client.get(API + "/docs").headers["Cache-Control"] == "no-store"
