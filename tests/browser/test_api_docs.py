"""The browsable API docs (/api/v1/docs) in a real browser: Swagger UI draws every operation
of the OpenAPI document from Lethe's own files, under the site's Content-Security-Policy,
with nothing refused and nothing fetched from elsewhere."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/lethe-api-docs.png"  # noqa: S108 - a fixed path a developer opens


def test_the_docs_page_renders_every_operation_with_no_csp_error(page, live_server):
    console, failures, hosts = [], [], set()
    page.on("console", lambda msg: console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))

    resp = page.goto("/api/v1/docs")
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    expect(page.get_by_role("heading", name=re.compile("Lethe API"))).to_be_visible()

    doc = page.request.get("/api/v1/openapi.json").json()
    operations = [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post")
    ]
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(operations))
    for method, path, op in operations:
        block = page.locator(f".opblock-{method}").filter(
            has=page.locator(".opblock-summary-path", has_text=re.compile(f"^{re.escape(path)}$"))
        )
        expect(block).to_have_count(1)
        expect(block).to_contain_text(op["summary"])

    # An operation opens on a click, showing its answers from the document.
    filing = page.locator("#operations-requests-fileRequest")
    filing.locator(".opblock-summary").click()
    expect(filing.locator(".responses-table").first).to_contain_text("Filed")
    page.screenshot(path=SCREENSHOT, full_page=False)

    refused = [text for kind, text in console if "Content Security Policy" in text]
    assert not refused, refused
    assert not [text for kind, text in console if kind == "error"], console
    assert not failures, failures
    assert hosts == {urlsplit(live_server.url).netloc}, hosts
