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
    """The embedded default under concurrent load (threads of a server, the worker):

    - foreign keys on, so SQLite refuses what PostgreSQL refuses;
    - secure delete on, so deleted rows are zeroed in the file;
    - WAL, so readers never wait for the writer nor the writer for readers;
    - a busy timeout, so a writer waits its turn instead of failing with "database is locked";
    - the driver begins no transaction of its own (``isolation_level = None``): Lethe does, in
      :func:`_sqlite_begin` and :func:`_sqlite_first_write`, following SQLAlchemy's recipe
      for pysqlite ("Using SQLAlchemy to emit BEGIN in lieu of SQLite's transaction
      control"). The driver's legacy mode began one only before INSERT, UPDATE, DELETE or
      REPLACE: DDL and any other write (``WITH … DELETE``) ran outside the transaction and
      stayed when it rolled back.
    """
    if not _is_sqlite(dbapi_connection):
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten with zeros, not left in free pages: a destroyed subject
    # key must not survive in the key store's file (SQLite builds differ in their default).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")  # a no-op answer ("memory") for :memory:
    cursor.close()


# Execution options (``session.connection(execution_options=WRITER)`` before the first
# statement, or ``engine.connect().execution_options(**READER)``) saying how a transaction
# begins on SQLite; without one it begins at its first write (_sqlite_first_write).
WRITER = {"sqlite_begin": "IMMEDIATE"}  # the write lock now, before anything is read
READER = {"sqlite_begin": "DEFERRED"}  # one snapshot for every read, and no lock
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """A transaction on SQLite begins:

    - by default, with ``BEGIN IMMEDIATE`` just before its first write — whatever the write:
      a savepoint, DDL, ``WITH … INSERT`` too (:func:`_sqlite_first_write`). Its reads before
      that run outside it, each on the latest data, as on PostgreSQL's READ COMMITTED, so no
      writer ever holds a snapshot it cannot write from: a transaction that began deferred,
      read, and then wrote after another writer had committed would fail at once with
      "database is locked" (SQLITE_BUSY_SNAPSHOT), without waiting out the busy timeout.
      Nor does a transaction that has not written hold the lock: the worker's steps read,
      then send mail or POST webhooks, then write, and readers (pages, streamed reports,
      every API read) run beside each other and beside the writer. Measured, with the lock
      taken at the first statement instead, a statement look-up (a read) served 40 % fewer
      requests a second on two server processes.
    - with :data:`WRITER`, ``BEGIN IMMEDIATE`` at once: a read-then-write that must not lose
      a race to another writer (:func:`serialise` takes the lock the same way).
    - with :data:`READER`, ``BEGIN``: its reads share one snapshot; it takes no lock, and a
      write from it may fail as above.
    """
    if conn.dialect.name != "sqlite":
        return
    begin = conn.get_execution_options().get("sqlite_begin")
    if begin in ("IMMEDIATE", "DEFERRED"):
        conn.connection.dbapi_connection.execute(f"BEGIN {begin}")


def _reads_only(statement: str, context) -> bool:
    head = statement.lstrip()[:7].upper()
    if head.startswith(_READS):
        return True
    # WITH … SELECT reads (an incident's touched records); WITH … INSERT/UPDATE/DELETE writes.
    compiled = getattr(context, "compiled", None)
    return head.startswith("WITH") and getattr(
        getattr(compiled, "statement", None), "is_select", False
    )


def _sqlite_first_write(cursor, statement: str, context) -> None:
    """``BEGIN IMMEDIATE`` before the first write of a transaction not yet begun. Hooked on
    the dialect's execute (below) so that a failure to get the lock ("database is locked",
    after the busy timeout) is SQLAlchemy's OperationalError, like any other."""
    dbapi_connection = cursor.connection
    if not _is_sqlite(dbapi_connection) or dbapi_connection.in_transaction:
        return
    if _reads_only(statement, context):
        return
    if context is not None and context.execution_options.get("isolation_level") == "AUTOCOMMIT":
        return
    dbapi_connection.execute("BEGIN IMMEDIATE")


@event.listens_for(Engine, "do_execute")
def _sqlite_execute(cursor, statement, parameters, context):
    _sqlite_first_write(cursor, statement, context)


@event.listens_for(Engine, "do_execute_no_params")
def _sqlite_execute_no_params(cursor, statement, context):
    _sqlite_first_write(cursor, statement, context)


@event.listens_for(Engine, "do_executemany")
def _sqlite_executemany(cursor, statement, parameters, context):
    _sqlite_first_write(cursor, statement, context)


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
