"""SQLAlchemy wiring: the declarative base, naming convention and the tz-aware column type."""

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Index, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back an aware UTC datetime (SQLite drops tzinfo otherwise).

    Naive datetimes are refused: a naive value is a bug, not something to guess about.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


SQLITE_BUSY_TIMEOUT_MS = 30_000


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@event.listens_for(Engine, "connect")
def _sqlite_settings(dbapi_connection, connection_record):
    """The embedded default under concurrent load (many threads of ``flask run``, the worker):

    - foreign keys on, so SQLite refuses what PostgreSQL refuses;
    - secure delete on, so deleted rows are zeroed in the file;
    - WAL, so readers never wait for the writer nor the writer for readers;
    - a busy timeout, so a writer waits its turn instead of failing with "database is locked";
    - writes take the write lock when their transaction begins (``BEGIN IMMEDIATE``, issued by
      the driver before the first write): a transaction that began deferred would read a
      snapshot and then, when another writer had committed meanwhile, fail at its first write
      without waiting (SQLITE_BUSY_SNAPSHOT). Reads before the first write run outside a
      transaction, as before, so a long streamed report holds no lock.
    """
    if not _is_sqlite(dbapi_connection):
        return
    dbapi_connection.isolation_level = "IMMEDIATE"
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten with zeros, not left in free pages: a destroyed subject
    # key must not survive in the key store's file (SQLite builds differ in their default).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")  # a no-op answer ("memory") for :memory:
    cursor.close()


@contextmanager
def unit_of_work(session=None) -> Iterator:
    """One unit of work outside a web request (a worker job's step, a CLI command): commits
    when the block ends, rolls back if it raises. With :mod:`web.transaction` for requests,
    the only places Lethe commits; services only flush."""
    session = session if session is not None else db.session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()  # the block's error, or the commit's own (a conflict, a lost lock)
        raise


def checkpoint_sqlite(engine: Engine) -> None:
    """Copy a SQLite database's write-ahead log into its file and empty the log (TRUNCATE),
    so that pages a commit replaced (a destroyed key's, zeroed by secure delete) no longer
    sit in the log or the file. Nothing to do on other databases."""
    if engine.dialect.name != "sqlite":
        return
    for _ in range(50):
        with engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()[0]
        if not busy:
            return
        time.sleep(0.1)  # a reader still uses the log: try again shortly
    logging.getLogger("lethe.storage").warning(
        "the key store's write-ahead log could not be emptied (readers kept it busy); "
        "the next erasure or restart empties it"
    )


def serialise(session, key: int, *, shared: bool = False, mapper=None) -> None:
    """Take, for the rest of ``session``'s transaction, the lock that serialises every
    transaction asking for ``key`` (a 64-bit integer): on PostgreSQL a transaction-scoped
    advisory lock (``shared``: many holders at once, none with an exclusive holder); on SQLite
    the database's write lock, taken now (one writer at a time is how SQLite serialises
    anything, so ``shared`` makes no difference there). ``mapper`` picks the database (a
    model of the key store, say). Read-then-write steps (the audit chain's tail, a first use
    of an idempotency key, opening a shred epoch) take it before they read."""
    conn = session.connection(bind_arguments={"mapper": mapper} if mapper is not None else None)
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.exec_driver_sql(f"SELECT {fn}(%(k)s)", {"k": key})
        return
    dbapi_connection = conn.connection.dbapi_connection
    if _is_sqlite(dbapi_connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def lock_key(*parts) -> int:
    """A stable signed 64-bit advisory-lock key for ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_begins_immediate(conn, name):
    # A SAVEPOINT outside a transaction would open a deferred one (see above): begin it
    # IMMEDIATE first, and the savepoint nests inside.
    dbapi_connection = conn.connection.dbapi_connection
    if _is_sqlite(dbapi_connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def subject_index(table: str) -> Index:
    """Rows read per subject in id order (reports, exports, erasure): a composite
    (subject_id, id) index makes each keyset batch one range scan, not a sort of all the
    subject's rows."""
    return Index(f"ix_{table}_subject_id_id", "subject_id", "id")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def render_item(type_, obj, autogen_context):
    """Alembic autogenerate hook: write UTCDateTime as a plain tz-aware DateTime, so
    migrations do not import our code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
