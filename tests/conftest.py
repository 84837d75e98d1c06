"""Fixtures for the whole suite: the app on SQLite (default) or PostgreSQL
(``LETHE_TEST_DATABASE_URL``), a real SMTP server (aiosmtpd), API keys and factories."""

import base64
import email
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from rights.ledger import apikeys, officers
from storage import epoch_keys
from storage.db import db

# pytest-xdist runs the suite in several worker processes (gw0, gw1, ...): each gets its own
# PostgreSQL databases, named after the given ones plus ``_gw0`` etc. (made when missing by
# ``_worker_databases`` below, and dropped at the end when it made them).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _per_worker(url: str | None) -> str | None:
    if not url or not XDIST_WORKER:
        return url
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url
    name = f"{parsed.database}_{XDIST_WORKER}"
    return parsed.set(database=name).render_as_string(hide_password=False)


PG_URL_GIVEN = os.environ.get("LETHE_TEST_DATABASE_URL")
PG_KEYS_URL_GIVEN = os.environ.get("LETHE_TEST_KEYSTORE_URL")
PG_URL = _per_worker(PG_URL_GIVEN)
PG_KEYS_URL = _per_worker(PG_KEYS_URL_GIVEN)


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
    cfg.update(overrides)
    return cfg


def _admin_engine(url: str):
    """AUTOCOMMIT engine on the ``postgres`` database of ``url``'s server."""
    admin = make_url(url).set(drivername="postgresql+psycopg", database="postgres")
    return create_engine(admin, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session", autouse=True)
def _worker_databases():
    """Under pytest-xdist on PostgreSQL: this worker's own databases (``<given>_gw0``), made
    here when missing and dropped at the end of the run when made here."""
    wanted = [
        url for given, url in ((PG_URL_GIVEN, PG_URL), (PG_KEYS_URL_GIVEN, PG_KEYS_URL))
        if url and url != given
    ]
    made = []
    for url in wanted:
        name = make_url(url).database
        admin = _admin_engine(url)
        try:
            with admin.connect() as conn:
                found = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if found is None:
                    for attempt in range(5):  # another worker's CREATE DATABASE may hold template1
                        try:
                            conn.execute(text(f'CREATE DATABASE "{name}"'))
                            break
                        except Exception:  # noqa: BLE001 - retried, then raised
                            if attempt == 4:
                                raise
                            time.sleep(0.5 * (attempt + 1))
                    made.append(url)
        finally:
            admin.dispose()
    yield
    for url in made:
        admin = _admin_engine(url)
        try:
            with admin.connect() as conn:
                name = make_url(url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> dict[str, Path]:
    """Both SQLite databases with the models' schema, made once per run (per xdist worker):
    each test starts from a copy of these files (a copy costs far less than create_all)."""
    tmp = tmp_path_factory.mktemp("schema-template")
    files = {None: tmp / "lethe.db", "keystore": tmp / "keystore.db"}
    app = create_app(
        make_config(
            tmp,
            25,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{files[None]}",
            KEYSTORE_URL=f"sqlite:///{files['keystore']}",
        ),
        instance_path=str(tmp / "instance"),
    )
    with app.app_context():
        db.create_all()
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()  # the last connection closes: the WAL is folded into the file
    for path in files.values():
        for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert not extra.exists(), f"{extra} left behind by the schema template"
    return files


def _seed_sqlite(config: dict, template: dict[str, Path]) -> None:
    """Copy the schema template to each SQLite database file of ``config`` that does not exist
    yet (``_reset_schema``'s create_all then finds every table there and creates nothing)."""
    uris = {None: config["SQLALCHEMY_DATABASE_URI"], "keystore": config["KEYSTORE_URL"]}
    for bind_key, uri in uris.items():
        if not isinstance(uri, str) or not uri.startswith("sqlite:///"):
            continue
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute() or path.name == ":memory:" or "?" in uri:
            continue
        if path.parent.is_dir() and not path.exists():
            shutil.copyfile(template[bind_key], path)


_pg_schema_built = False


def _touched_tables(conn, tables: list[str]) -> list[str]:
    """Of ``tables`` (PostgreSQL, schema public): those holding rows, and those owning a
    sequence that has been used since it was last reset; one round trip."""
    if not tables:
        return []
    with_rows = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables
    )
    used_sequences = """
        SELECT owner.relname FROM pg_sequences s
        JOIN pg_class seq ON seq.relname = s.sequencename
            AND seq.relnamespace = s.schemaname::regnamespace
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = seq.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        JOIN pg_class owner ON owner.oid = d.refobjid
        WHERE s.schemaname = 'public' AND s.last_value IS NOT NULL
    """
    found = set(conn.execute(text(f"{with_rows} UNION {used_sequences}")).scalars())
    return [name for name in tables if name in found]


def _reset_schema(app):
    global _pg_schema_built
    with app.app_context():
        if PG_URL:
            # Once per run: the models' schema from scratch (the database may hold an older
            # one). Then tables persist across tests; emptying them is fast.
            if not _pg_schema_built:
                for engine in db.engines.values():
                    if engine.dialect.name == "postgresql":
                        with engine.begin() as conn:
                            conn.execute(text("DROP SCHEMA public CASCADE"))
                            conn.execute(text("CREATE SCHEMA public"))
                db.drop_all()
                db.create_all()
                _pg_schema_built = True
            for bind_key in (None, "keystore"):
                engine = db.engines[bind_key]
                tables = [t.name for t in db.metadatas[bind_key].sorted_tables]
                if engine.dialect.name == "postgresql":
                    with engine.begin() as conn:
                        # Only what the last test touched (a table with rows or whose sequence
                        # was used): the rest are as a TRUNCATE would leave them already, and
                        # truncating 30-odd untouched tables is most of the cost.
                        touched = _touched_tables(conn, tables)
                        if touched:
                            conn.execute(
                                text(f"TRUNCATE {', '.join(touched)} RESTART IDENTITY CASCADE")
                            )
        else:
            db.create_all()


@pytest.fixture
def app_factory(tmp_path, smtp_server, sqlite_template):
    """Build an app with config overrides; the schema is fresh for each test."""
    made = []

    def factory(**overrides):
        config = make_config(tmp_path, smtp_server.port, **overrides)
        if not made:
            _seed_sqlite(config, sqlite_template)
        app = create_app(config, instance_path=str(tmp_path / "instance"))
        if not made:
            _reset_schema(app)
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


# --- pytest-xdist: a module's tests that share a module-scoped fixture (a live server with
# the demo loaded, say) run on one worker, so the fixture is built once, not once per worker.
# Every other test is handed to whichever worker is free (``--dist loadgroup``).


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = any(
            fixturedef.scope in ("module", "package", "class")
            for fixturedefs in info.name2fixturedefs.values()
            for fixturedef in fixturedefs
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(autouse=True)
def _serial_under_xdist(request, tmp_path_factory):
    """Under pytest-xdist: each test holds a shared lock, a ``serial`` one an exclusive lock
    (it waits for the other workers' current tests, and they wait for it). A gate taken
    before the shared lock lets a waiting serial test in ahead of the next shared ones."""
    if not XDIST_WORKER:
        yield
        return
    root = tmp_path_factory.getbasetemp().parent  # shared by every worker of this run
    serial = request.node.get_closest_marker("serial") is not None
    with open(root / "serial.gate", "a") as gate, open(root / "serial.lock", "a") as lock:
        if serial:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if serial:
                fcntl.flock(gate, fcntl.LOCK_UN)


# --- lines a test wants in the run's summary (the Schemathesis case count, for the CI log):
# they travel in the test's report, so they arrive from pytest-xdist workers too.
_SUMMARY_LINES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _SUMMARY_LINES.extend(v for k, v in report.user_properties if k == "summary")


def pytest_terminal_summary(terminalreporter):
    for line in _SUMMARY_LINES:
        terminalreporter.write_line(line)
