"""Fixtures for the whole suite: the app on SQLite (default) or PostgreSQL
(``LETHE_TEST_DATABASE_URL``; tests/databases.py), a real SMTP server (aiosmtpd), API keys,
signed-in officers and a SoftHSM2 token; pytest-xdist's scheduling (tests/scheduling.py)."""

import base64
import email
import os
import secrets
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from aiosmtpd.controller import Controller
from werkzeug.routing.rules import Rule

from app import create_app
from rights.ledger import apikeys, officers
from storage import epoch_keys
from storage.db import db
from tests import databases, scheduling
from tests.databases import PG_KEYS_URL, PG_URL, XDIST_WORKER
from tests.helpers import cheap_password_hashing

# Every test's files (SQLite databases, epoch key files, mail) live in memory where the system
# has a tmpfs: there a commit's fsync costs nothing, and on disk fsyncs were a fifth of the
# suite's time. No test checks what a disk does. This is pytest's own setting for where
# tmp_path lives (an explicit --basetemp still wins); xdist's workers inherit it.
MEMORY_FS = "/dev/shm"  # noqa: S108 - pytest makes its own 0700 folder in it, and checks it
if os.path.isdir(MEMORY_FS) and os.access(MEMORY_FS, os.W_OK):
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", MEMORY_FS)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """Officers' passwords hashed at argon2's lowest cost for the whole run (tests/helpers.py
    says why)."""
    with pytest.MonkeyPatch.context() as patch:
        cheap_password_hashing(patch.setattr)
        yield


@pytest.fixture(scope="session", autouse=True)
def _url_builders_compiled_once():
    """Each create_app() registers some 80 routes, and werkzeug compiles two URL-building
    functions for each (parsing, walking and compiling Python code): 90% of the 60 ms an app
    took to make, a thousand apps a run. A route's builders depend only on the route, so the
    suite compiles each once and hands the same functions to every later app (werkzeug binds
    them to each rule itself)."""
    compile_builder = Rule._compile_builder
    compiled = {}

    def once(rule, append_unknown=True):
        key = (
            rule.rule,
            rule.host,
            rule.subdomain,
            tuple(rule._trace),
            repr(sorted((rule.defaults or {}).items())),
            append_unknown,
        )
        if key not in compiled:
            compiled[key] = compile_builder(rule, append_unknown)
        return compiled[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", once)
        yield


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Mailbox:
    """What the SMTP server received, parsed."""

    def __init__(self):
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def clear(self):
        with self._lock:
            self.messages.clear()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    def last_to(self, address: str) -> Message:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[m['Subject'] for m in self.messages]}"
        return found[-1]

    @staticmethod
    def body(msg: Message) -> str:
        return msg.get_payload(decode=True).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    smtp_server.handler.clear()
    return smtp_server.handler


def make_config(tmp_path, smtp_port: int, **overrides) -> dict:
    if PG_URL:
        db_url = PG_URL
        keys_url = PG_KEYS_URL or f"sqlite:///{tmp_path / 'keystore.db'}"
    else:
        db_url = f"sqlite:///{tmp_path / 'lethe.db'}"
        keys_url = f"sqlite:///{tmp_path / 'keystore.db'}"
    cfg = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "KEYSTORE_URL": keys_url,
        "SECRET_KEY": "test-secret",
        "KEY_ENCRYPTION_KEY": _key(),
        "BLIND_INDEX_KEY": _key(),
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PUBLIC_URL": "http://lethe.test",
        "PUBLIC_FORM_MIN_SECONDS": 0,
        # Tests sweep when they mean to (the worker's schedule would sweep their data).
        "RETENTION_SWEEP_HOURS": 0,
    }
    if PG_URL:
        # No ping before each use of a pooled connection (a round trip each time): every
        # test's app has a new pool, whose connections cannot have gone stale.
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session", autouse=True)
def _worker_databases():
    """Under pytest-xdist on PostgreSQL: this worker's own databases (tests/databases.py)."""
    with databases.worker_databases():
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> dict[str | None, Path]:
    """Both SQLite databases with the models' schema, made once per run (per xdist worker):
    each test starts from a copy of these files (a copy costs far less than create_all)."""
    tmp = tmp_path_factory.mktemp("schema-template")
    files = {None: tmp / "lethe.db", "keystore": tmp / "keystore.db"}
    config = make_config(
        tmp,
        25,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{files[None]}",
        KEYSTORE_URL=f"sqlite:///{files['keystore']}",
    )
    databases.build_sqlite_template(create_app(config, instance_path=str(tmp / "instance")), files)
    return files


@pytest.fixture
def app_factory(tmp_path, smtp_server, sqlite_template):
    """Build an app with config overrides; the schema is fresh for each test."""
    made = []

    def factory(**overrides):
        config = make_config(tmp_path, smtp_server.port, **overrides)
        copies = not made and databases.seed_sqlite(config, sqlite_template)
        app = create_app(config, instance_path=str(tmp_path / "instance"))
        if not made and not copies:
            databases.reset_schema(app)
        made.append(app)
        return app

    yield factory
    for app in made:
        store = app.extensions.pop("lethe_epoch_keys", None)
        if store is not None:
            store.close()  # a PKCS#11 token's library is let go when its last store closes
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def api_key(app):
    """A key with every scope: returns the Authorization header dict."""
    with app.app_context():
        _, key = apikeys.create("test-platform", sorted(apikeys.SCOPES), actor="test")
        db.session.commit()
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key_with(app):
    def make(*scopes):
        with app.app_context():
            _, key = apikeys.create("scoped", list(scopes), actor="test")
            db.session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make


OFFICER_PASSWORD = "correct horse battery staple"


@pytest.fixture
def login_as(app):
    """A test client signed in to the dashboard as a new officer with ``role`` (password and
    a current TOTP code, through the real form). The client carries ``officer_id``,
    ``email`` and ``totp_secret``."""

    def make(role: str, email: str | None = None, name: str | None = None):
        email = email or f"{role}-{secrets.token_hex(3)}@perkly.example"
        with app.app_context():
            officer, uri = officers.create(
                email,
                name=name or f"{role.title()} {secrets.token_hex(2)}",
                role=role,
                password=OFFICER_PASSWORD,
                by="test",
            )
            db.session.commit()
            officer_id = officer.id
        secret = parse_qs(urlparse(uri).query)["secret"][0]
        client = app.test_client()
        resp = client.post(
            "/dashboard/login",
            data={"email": email, "password": OFFICER_PASSWORD, "code": pyotp.TOTP(secret).now()},
        )
        assert resp.status_code == 303, resp.get_data(as_text=True)
        client.officer_id, client.email, client.totp_secret = officer_id, email, secret
        return client

    return make


# --- a throwaway PKCS#11 token (SoftHSM2) for the epoch key manager ----------------------

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "lethe-test"
PIN = "1234"
SO_PIN = "5678"


def _find_softhsm() -> tuple[str | None, str]:
    """(module path, "") or (None, why not)."""
    candidates = [os.environ.get("LETHE_TEST_PKCS11_MODULE") or "", *SOFTHSM_MODULES]
    module = next((p for p in candidates if p and os.path.isfile(p)), None)
    if module is None:
        return None, f"no SoftHSM2 module at {', '.join(SOFTHSM_MODULES)}"
    if shutil.which("softhsm2-util") is None:
        return None, "softhsm2-util is not on PATH"
    try:
        import pkcs11  # noqa: F401
    except ImportError as exc:
        return None, f"python-pkcs11 is not installed ({exc})"
    return module, ""


@dataclass
class SoftHSM:
    module: str
    label: str
    pin: str
    conf: Path


@pytest.fixture
def softhsm(tmp_path, monkeypatch):
    """A fresh SoftHSM2 token, ``lethe-test`` (user PIN 1234), in this test's tmp_path."""
    module, why = _find_softhsm()
    if module is None:
        reason = f"SoftHSM2 not available: {why} (apt-get install softhsm2)"
        if os.environ.get("LETHE_REQUIRE_SOFTHSM") == "1":
            pytest.fail(reason + " and LETHE_REQUIRE_SOFTHSM=1", pytrace=False)
        pytest.skip(reason)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    # SoftHSM2 reads this when the module is initialised (C_Initialize): every store opened in
    # this test is closed at its end, so the next test's module reads its own configuration.
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL]
        + ["--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    yield SoftHSM(module, TOKEN_LABEL, PIN, conf)
    library = epoch_keys.pkcs11_library._LIBRARIES.get(module)
    if library is not None and library.users:
        leaked = library.users
        library.users = 1
        library.release()
        pytest.fail(f"{leaked} Pkcs11EpochKeys left open by the test (close them)")


# --- pytest-xdist: groups, the longest tests first, serial tests (tests/scheduling.py).


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("xdist"):
        scheduling.group_shared_fixtures(items)
        scheduling.longest_first(items)


@pytest.fixture(autouse=True)
def _serial_under_xdist(request, tmp_path_factory):
    """Under pytest-xdist, a ``serial`` test runs while no other worker runs a test."""
    if not XDIST_WORKER:
        yield
        return
    root = tmp_path_factory.getbasetemp().parent  # shared by every worker of this run
    with scheduling.turn(root, request.node.get_closest_marker("serial") is not None):
        yield


# --- lines a test wants in the run's summary (the Schemathesis case count, for the CI log):
# they travel in the test's report, so they arrive from pytest-xdist workers too.
_SUMMARY_LINES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _SUMMARY_LINES.extend(v for k, v in report.user_properties if k == "summary")


def pytest_terminal_summary(terminalreporter):
    for line in _SUMMARY_LINES:
        terminalreporter.write_line(line)
