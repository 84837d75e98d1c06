"""Measure: how tall Sam Rivera's access report is, in a real browser, at 1280 and 375 px wide.

Not a test: prints figures. Loads the demo (``demo.loader``, 20 extra members) into a throwaway
SQLite instance, files and completes an access request for Sam (the demo's story member), then
opens the report — and the request's own status page — in Chromium through Playwright, the
pages served by the app's test client (no server, no port), and prints each page's height in
CSS pixels, whether anything overflows sideways, and what axe-core finds serious or critical
(when ``npm ci`` has installed it). Full-page screenshots go to ``/tmp/report-<width>.png``
(and ``/tmp/request-<width>.png``) for a person to look at.

    python scripts/report_height.py [--corrected] [--no-screenshots]

``--corrected``: an officer approves Sam's rectification first, so the report tells of it.
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from demo import loader  # noqa: E402
from rights.lifecycle import requests  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import RightsRequest  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 375)
ORIGIN = "http://lethe.local"
SHOTS = "/tmp"  # noqa: S108 - fixed on purpose: a person opens the pictures


def story_request(corrected: bool) -> tuple[str, str]:
    """Load the demo and complete an access request for Sam: (request id, reference)."""
    db.create_all()
    loader.load(extra_members=20)
    if corrected:
        story = db.session.scalars(
            select(RightsRequest).where(
                RightsRequest.type == "rectification", RightsRequest.status == "open"
            )
        ).one()
        requests.approve(story, actor="officer:1", note="Nothing was shipped.", profile=None)
    req = requests.file(
        type="access",
        email=loader.STORY_EMAIL,
        channel="api",
        verified=True,
        actor="report-height",
    )
    db.session.commit()
    return req.id, req.reference


def serve_from(client):
    """A Playwright route handler answering every request from the Flask test client."""

    def handle(route):
        path = route.request.url.removeprefix(ORIGIN)
        resp = client.get(path)
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
        route.fulfill(status=resp.status_code, headers=headers, body=resp.get_data())

    return handle


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page, each as "rule (n nodes)"."""
    if not AXE.is_file():
        return ["axe-core not installed (npm ci)"]
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({len(v['nodes'])} nodes)"
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def measure(browser, client, path: str, name: str, screenshots: bool) -> dict[int, tuple]:
    """For each width: (height, sideways overflow, axe's serious findings)."""
    out = {}
    for width in WIDTHS:
        # The app's CSP allows only its own scripts: bypassed for axe's injected one.
        context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.route(f"{ORIGIN}/**", serve_from(client))
        response = page.goto(ORIGIN + path)
        assert response is not None and response.status == 200, (path, response)
        height, overflow = page.evaluate(
            "() => [document.documentElement.scrollHeight,"
            " document.documentElement.scrollWidth - document.documentElement.clientWidth]"
        )
        if screenshots:
            page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
        out[width] = (height, overflow, serious_violations(page))
        context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrected", action="store_true", help="approve Sam's correction")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()
    app = make_app()
    with app.app_context():
        rid, reference = story_request(args.corrected)
    client = app.test_client()
    with client.session_transaction() as session:
        # What confirming the emailed link grants this browser (web/public/__init__.py).
        session["grants"] = {rid: (utcnow() + timedelta(hours=2)).isoformat()}
    pages = {
        "report": f"/requests/{reference}/report",
        "request": f"/requests/{reference}",
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, path in pages.items():
                for width, (height, overflow, axe) in measure(
                    browser, client, path, name, not args.no_screenshots
                ).items():
                    sideways = f"overflows sideways by {overflow} px" if overflow else "no overflow"
                    found = ", ".join(axe) or "none"
                    print(
                        f"{name:<8} {width:>5} px wide: {height:>6} px tall  ({sideways}; "
                        f"axe, serious or critical: {found})"
                    )
        finally:
            browser.close()


if __name__ == "__main__":
    main()
