"""Browser fixtures: Debian's Chromium driven by Playwright against a live Lethe server.

The server is the real app (CSRF on, real SMTP to the suite's aiosmtpd mailbox) served by
werkzeug in a thread, with the outbox worker polling in another thread, as in production.
Playwright never downloads a browser: we launch the system's ``/usr/bin/chromium``. Without it
the tests skip with a reason, or fail when ``LETHE_REQUIRE_BROWSER=1`` (CI).
"""

import json
import os
import shutil
import threading
import urllib.request
from dataclasses import dataclass, field

import pytest
from werkzeug.serving import make_server

from rights import apikeys, jobs
from storage.db import db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WORKER_INTERVAL = 0.2


def chromium_path() -> str | None:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    return shutil.which("chromium")


class OutboxWorker(threading.Thread):
    """What ``flask worker`` does, in a thread: every 0.2 s, send the due messages and run the
    due jobs (erasure runs as an outbox job)."""

    def __init__(self, app):
        super().__init__(name="lethe-outbox-worker", daemon=True)
        self.app = app
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            while not self.stopped.is_set():
                with self.app.app_context():
                    try:
                        jobs.run_due()
                    finally:
                        db.session.remove()
                self.stopped.wait(WORKER_INTERVAL)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread at teardown
            self.error = exc

    def stop(self):
        self.stopped.set()
        self.join(timeout=10)
        assert not self.is_alive(), "outbox worker did not stop"
        if self.error is not None:
            raise self.error


@dataclass
class LiveServer:
    app: object
    url: str
    api_headers: dict = field(default_factory=dict)

    def api_post(self, path: str, body: dict) -> tuple[int, dict]:
        """POST JSON to the live API with the fixture's key (as a platform service would)."""
        req = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 server
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.api_headers},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())


@pytest.fixture
def live_server(app_factory):
    """The app with CSRF enabled on http://127.0.0.1:<free port>, plus the outbox worker."""
    app = app_factory(WTF_CSRF_ENABLED=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = url  # links in emails point at this server
    with app.app_context():
        _, key = apikeys.create("browser-tests", sorted(apikeys.SCOPES), actor="test")
        db.session.commit()
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="lethe-live", daemon=True
    )
    serving.start()
    worker = OutboxWorker(app)
    worker.start()
    try:
        yield LiveServer(app, url, {"Authorization": f"Bearer {key}"})
    finally:
        try:
            worker.stop()
        finally:
            server.shutdown()
            server.server_close()
            serving.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        reason = f"no Chromium found at {CHROMIUM}; apt-get install chromium"
        if os.environ.get("LETHE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (LETHE_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (own cookies) per test, closed before the server stops."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
