"""Browser fixtures: Debian's Chromium driven by Playwright against a live Lethe server.

The server is the real app (CSRF on, real SMTP to the suite's aiosmtpd mailbox) served by
werkzeug in a thread, with the outbox worker polling in another thread, as in production.
Playwright never downloads a browser: we launch the system's ``/usr/bin/chromium``. Without it
the tests skip with a reason, or fail when ``LETHE_REQUIRE_BROWSER=1`` (CI).
"""

import contextlib
import json
import os
import shutil
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from werkzeug.serving import make_server

from app import create_app
from demo import loader as demo
from rights import jobs
from rights.ledger import apikeys
from storage.db import db
from tests.conftest import make_config
from tests.databases import reset_schema, seed_sqlite

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


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` on http://127.0.0.1:<free port> with the outbox worker, until exit."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = url  # links in emails point at this server
    with app.app_context():
        _, key = apikeys.create("browser-tests", sorted(apikeys.SCOPES), actor="test")
        db.session.commit()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="lethe-live", daemon=True
    )
    thread.start()
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
            thread.join(timeout=10)


@pytest.fixture
def live_server(app_factory):
    """The app with CSRF enabled on http://127.0.0.1:<free port>, plus the outbox worker."""
    with serving(app_factory(WTF_CSRF_ENABLED=True)) as live:
        yield live


@pytest.fixture(scope="module")
def module_live_server(tmp_path_factory, smtp_server, sqlite_template):
    """Like ``live_server``, but one server (and database) for a whole test module, with the
    demo data loaded (``demo.loader``: the story of Sam Rivera, a queue with overdue requests,
    the demo officers). For read-mostly modules where a server per test costs too much."""
    tmp = tmp_path_factory.mktemp("live")
    config = make_config(tmp, smtp_server.port, WTF_CSRF_ENABLED=True)
    copies = seed_sqlite(config, sqlite_template)
    app = create_app(config, instance_path=str(tmp / "instance"))
    try:
        if not copies:
            reset_schema(app)
        with app.app_context():
            demo.load(extra_members=20)
            db.session.commit()
        with serving(app) as live:
            yield live
    finally:
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


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


@pytest.fixture
def new_page(browser, live_server):
    """Makes more pages on ``live_server``, each in its own browser context (own cookies: a
    subject and an officer side by side); all are closed before the server stops."""
    contexts = []

    def make():
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1000, "height": 800}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def require(reason: str) -> None:
    """Skip with ``reason``, or fail when ``LETHE_REQUIRE_BROWSER=1`` (CI must run it all)."""
    if os.environ.get("LETHE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (LETHE_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's browser bundle, installed from package-lock.json by `make test` (npm ci)."""
    if not AXE_SCRIPT.is_file():
        require(f"axe-core not installed ({AXE_SCRIPT} missing); run `npm ci` or `make test`")
    return AXE_SCRIPT


class DashboardSignIn:
    """Signs a page in through the dashboard's real form: email, password and a TOTP code.

    A code is accepted once per officer (and never one older than the last used), so each
    sign-in of the same officer on the same server uses a later time step: the next one
    (accepted, one step of drift), or after waiting for the clock when even that is used."""

    def __init__(self):
        self._last_step: dict[tuple[str, str], int] = {}

    def __call__(self, page, email: str, password: str, secret: str) -> None:
        from playwright.sync_api import expect

        page.goto("/dashboard/login")
        totp = pyotp.TOTP(secret)
        key = (page.url.split("/dashboard/")[0], secret)
        step = int(time.time()) // totp.interval
        if key in self._last_step and self._last_step[key] >= step:
            step = self._last_step[key] + 1
            while step > int(time.time()) // totp.interval + 1:  # more than one step ahead
                time.sleep(0.5)
        self._last_step[key] = step
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_label("Code from your authenticator app").fill(totp.at(step * totp.interval))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture(scope="session")
def sign_in() -> DashboardSignIn:
    return DashboardSignIn()
