"""The embedded default under concurrency (issue 17): on SQLite, 50 threads writing at once
through the service layer all succeed.

storage/db.py follows SQLAlchemy's recipe for pysqlite: the driver begins nothing
(``isolation_level = None``) and every transaction begins with ``BEGIN IMMEDIATE``, taking the
write lock before its first read. pysqlite's legacy mode began a transaction only before the
first INSERT/UPDATE/DELETE, so reads ran outside it: 50 threads sending the same new member
all read "no such member", all inserted it, and 14 of them failed (Conflict). Begun
IMMEDIATE, each waits its turn and reads what the one before it wrote.
"""

import sqlite3
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from rights.holdings import records
from rights.lifecycle import requests
from storage.db import READER, SQLITE_BUSY_TIMEOUT_MS, WRITER, db, unit_of_work
from storage.models import Member, RightsRequest
from tests import factories
from tests.conftest import PG_URL

THREADS = 50

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's locking (PostgreSQL has its own)")


def _race(app, work) -> list[BaseException]:
    """Run ``work(n)`` in THREADS threads, each in its own app context and unit of work, all
    released at the same instant; the exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(n: int):
        with app.app_context():
            start.wait()
            try:
                with unit_of_work():
                    work(n)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_fifty_threads_filing_requests_at_once_all_succeed(app):
    with app.app_context():
        factories.member(1)
        factories.commit()

    def file(n: int):
        # Half for one member (their row read, then written beside), half from new addresses
        # (a subject and its key made for each): every one reads before it writes.
        if n % 2:
            requests.file(type="access", member_id="m-1", channel="api", actor="test")
        else:
            requests.file(type="access", email=f"p{n}@example.org", channel="api", actor="test")

    errors = _race(app, file)
    assert not errors, f"{len(errors)} of {THREADS} failed: {errors[:3]!r}"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RightsRequest)) == THREADS


def test_fifty_threads_reading_then_writing_as_declared_writers_all_succeed(app):
    """A read-then-write that must not lose a race (here: is there such a member? then
    create or update it) declares itself a writer (WRITER): its transaction takes the write
    lock before it reads, so the first creates the member and the 49 after it update it.
    Left to begin at their first write, 14 of 50 read "no such member" beside another and
    then failed to insert it (Conflict), as they would on PostgreSQL."""

    def send(n: int):
        db.session.connection(execution_options=WRITER)
        records.upsert_member(
            {"member_id": "m-new", "email": "new@example.org", "name": f"Name {n}"},
            source="test",
            actor="test",
        )

    errors = _race(app, send)
    assert not errors, f"{len(errors)} of {THREADS} failed: {errors[:3]!r}"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1


class Statements:
    """What a connection's DBAPI cursor runs, BEGIN included (our BEGIN IMMEDIATE goes to the
    driver directly: the SQLite trace callback sees every statement)."""

    def __init__(self, conn):
        self.seen: list[str] = []
        self.dbapi = conn.connection.dbapi_connection

    def __enter__(self):
        self.dbapi.set_trace_callback(lambda sql: self.seen.append(" ".join(sql.split()[:2])))
        return self.seen

    def __exit__(self, *exc):
        self.dbapi.set_trace_callback(None)


@pytest.mark.parametrize(
    "write",
    [
        "INSERT INTO t VALUES (1)",
        "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
        "CREATE TABLE u (x)",
        "SAVEPOINT s",
    ],
)
def test_a_transaction_begins_immediate_at_its_first_write_whatever_it_is(app, write):
    """Reads before it run outside the transaction (no snapshot to fail to write from, no
    lock); any write — DDL, a CTE, a savepoint, which the driver's legacy mode let run outside
    the transaction — is preceded by BEGIN IMMEDIATE."""
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS t (x)"))
        conn.commit()
        with Statements(conn) as seen:
            conn.execute(text("SELECT count(*) FROM api_keys")).scalar()
            conn.execute(text(write))
            conn.rollback()
        assert seen[0].startswith("SELECT"), seen
        assert seen[1:3] == ["BEGIN IMMEDIATE", " ".join(write.split()[:2])], seen
        assert conn.connection.dbapi_connection.isolation_level is None  # the driver's off


def test_everything_a_transaction_wrote_rolls_back_with_it(app):
    """DDL and a write through a CTE ran outside the transaction in the driver's legacy mode,
    and stayed after a rollback (a failed migration half applied)."""
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("CREATE TABLE scratch (x)"))
        conn.execute(text("WITH v AS (SELECT 1) INSERT INTO scratch SELECT * FROM v"))
        conn.rollback()
        left = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'scratch'"))
        assert left.scalar() == 0


def test_a_cte_that_reads_takes_no_lock(app):
    with app.app_context(), db.engine.connect() as conn:
        touched = select(func.count()).select_from(Member).cte("touched")
        with Statements(conn) as seen:
            conn.execute(select(touched)).scalar()
        assert not any(s.startswith("BEGIN") for s in seen), seen
        conn.rollback()


def _writer_fails_fast(engine) -> bool:
    """Does a write on a connection of its own fail at once ("database is locked")?"""
    with engine.connect() as conn:
        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=50")
        try:
            conn.execute(text("UPDATE api_keys SET name = name"))
            conn.commit()
            return False
        except OperationalError as exc:
            assert isinstance(exc.orig, sqlite3.OperationalError)
            return True
        finally:
            conn.connection.dbapi_connection.execute(
                f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"
            )


def test_readers_keep_no_writer_waiting_and_a_declared_writer_does(app):
    """An open transaction that has only read holds no lock, with or without READER; one
    begun as a WRITER holds the write lock from its first statement."""
    with app.app_context():
        engine = db.engine
        for options in ({}, READER):
            with engine.connect().execution_options(**options) as reader:
                reader.execute(text("SELECT count(*) FROM api_keys")).scalar()
                assert not _writer_fails_fast(engine)
        with engine.connect().execution_options(**WRITER) as writer:
            writer.execute(text("SELECT count(*) FROM api_keys")).scalar()
            assert _writer_fails_fast(engine)


def test_a_reader_reads_one_snapshot(app, api_key):
    """READER: every read of the transaction sees the database as it was at the first, even
    when a writer commits in between (a report read in several batches stays consistent)."""
    with app.app_context():
        engine = db.engine
        count = text("SELECT count(*) FROM api_keys")
        with engine.connect().execution_options(**READER) as reader:
            before = reader.execute(count).scalar()
            with engine.begin() as writer:
                writer.execute(
                    text(
                        "INSERT INTO api_keys (name, prefix, key_hash, scopes, "
                        "created_at) VALUES ('x', 'p', 'h', '[]', '2026-01-01')"
                    )
                )
            assert reader.execute(count).scalar() == before
        with engine.connect() as fresh:
            assert fresh.execute(count).scalar() == before + 1
