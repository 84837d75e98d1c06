"""The test databases (tests/conftest.py's fixtures use these): SQLite files copied per test
from a schema built once, or PostgreSQL (``LETHE_TEST_DATABASE_URL`` and
``LETHE_TEST_KEYSTORE_URL``) emptied between tests, with databases of its own for each
pytest-xdist worker."""

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.db import db

# pytest-xdist runs the suite in several worker processes (gw0, gw1, ...): each gets its own
# PostgreSQL databases, named after the given ones plus ``_gw0`` etc. (made when missing by
# ``worker_databases`` below, and dropped at the end when it made them).
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


# --- PostgreSQL: this worker's own databases ---------------------------------------------


def _admin_engine(url: str):
    """AUTOCOMMIT engine on the ``postgres`` database of ``url``'s server."""
    admin = make_url(url).set(drivername="postgresql+psycopg", database="postgres")
    return create_engine(admin, isolation_level="AUTOCOMMIT")


def _make_database(conn, name: str) -> bool:
    """Create the database ``name`` unless it exists; whether it was made."""
    if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
        return False
    for attempt in range(5):  # another worker's CREATE DATABASE may hold template1
        try:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
        except Exception:  # noqa: BLE001 - retried, then raised
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    return False


@contextlib.contextmanager
def worker_databases() -> Iterator[None]:
    """Under pytest-xdist on PostgreSQL: this worker's own databases (``<given>_gw0``), made
    when missing and dropped at the end of the run when made here."""
    wanted = [
        url
        for given, url in ((PG_URL_GIVEN, PG_URL), (PG_KEYS_URL_GIVEN, PG_KEYS_URL))
        if url and url != given
    ]
    made = []
    for url in wanted:
        name = make_url(url).database
        admin = _admin_engine(url)
        try:
            with admin.connect() as conn:
                if _make_database(conn, name):
                    made.append(url)
                # A commit returns before its WAL reaches the disk (every connection to this
                # throwaway database, servers' too): what is committed is seen at once all
                # the same, only a server crash could lose it. Each commit waited ~1 ms.
                conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        finally:
            admin.dispose()
    try:
        yield
    finally:
        for url in made:
            admin = _admin_engine(url)
            try:
                with admin.connect() as conn:
                    name = make_url(url).database
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            finally:
                admin.dispose()


# --- SQLite: a schema built once, copied per test ----------------------------------------


def build_sqlite_template(app, files: dict[str | None, Path]) -> None:
    """Make the models' schema in ``app``'s SQLite databases (``files`` by bind key) and
    close them, leaving each in one file (no log beside it) ready to be copied."""
    with app.app_context():
        db.create_all()
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()  # the last connection closes: the WAL is folded into the file
    for path in files.values():
        for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert not extra.exists(), f"{extra} left behind by the schema template"


def seed_sqlite(config: dict, template: dict[str | None, Path]) -> bool:
    """Copy the schema template to each SQLite database file of ``config`` that does not exist
    yet; whether every database of ``config`` is such a copy now (``reset_schema`` then has
    nothing to do; otherwise its create_all finds the copied tables and makes the rest)."""
    uris = {None: config["SQLALCHEMY_DATABASE_URI"], "keystore": config["KEYSTORE_URL"]}
    copied = 0
    for bind_key, uri in uris.items():
        if not isinstance(uri, str) or not uri.startswith("sqlite:///"):
            continue
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute() or path.name == ":memory:" or "?" in uri:
            continue
        if path.parent.is_dir() and not path.exists():
            shutil.copyfile(template[bind_key], path)
            copied += 1
    return copied == len(uris)


# --- the schema, fresh for each test ------------------------------------------------------

_pg_schema_built = False

# Every sequence of the schema that has been used, set back to its start (what TRUNCATE's
# RESTART IDENTITY does), in one statement.
_RESTART_USED_SEQUENCES = """
    SELECT setval((quote_ident(schemaname) || '.' || quote_ident(sequencename))::regclass,
                  start_value, false)
    FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL
"""


def _empty_tables(conn, tables: list[str]) -> None:
    """Leave ``tables`` (sorted parents first) as TRUNCATE ... RESTART IDENTITY would, in one
    round trip: DELETE, children first. A test leaves a few rows, and deleting nothing costs
    nothing; TRUNCATE gives each table new files, some 50 ms a test even when limited to the
    tables a test touched."""
    statements = [f"DELETE FROM {name}" for name in reversed(tables)]
    conn.exec_driver_sql("; ".join([*statements, _RESTART_USED_SEQUENCES]))


def reset_schema(app) -> None:
    """``app``'s databases with the models' schema and no rows."""
    global _pg_schema_built
    with app.app_context():
        if not PG_URL:
            db.create_all()
            return
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
            if engine.dialect.name == "postgresql":
                tables = [t.name for t in db.metadatas[bind_key].sorted_tables]
                with engine.begin() as conn:
                    _empty_tables(conn, tables)
