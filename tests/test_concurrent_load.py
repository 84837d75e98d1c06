"""Concurrent load (outside test, issue 12 item 4): `flask run` with 8 clients writing records
and 8 reading at the same time answers no request with a server error.

On SQLite "database is locked" was a 500: WAL lets readers go on beside the writer; a busy
timeout makes a writer wait its turn; and every transaction takes the write lock when it
begins (BEGIN IMMEDIATE), so none fails half-way when it first writes. On PostgreSQL the same
load found deadlocks: each API call rewrote its key's ``last_used_at`` inside its transaction,
and held that row while waiting for the audit chain's lock that another call held while waiting
for the row."""

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from sqlalchemy import text

from rights.ledger import apikeys
from storage.db import db
from tests import factories
from tests.conftest import PG_URL
from tests.processes import serve

WRITERS = 8
READERS = 8
SECONDS = 6.0


def _call(url: str, key: str, body: dict | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - our server
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_eight_writers_and_eight_readers_get_no_server_error(app, tmp_path):
    with app.app_context():
        factories.member(1)
        factories.commit()
        _, key = apikeys.create("load", sorted(apikeys.SCOPES), actor="test")
        db.session.commit()

    statuses: Counter = Counter()
    lock = threading.Lock()

    def writer(n: int, base: str, stop: float):
        i = 0
        while time.monotonic() < stop:
            i += 1
            if i % 2:
                path, body = (
                    "/api/v1/perk-awards",
                    {
                        "award_id": f"aw-{n}-{i}",
                        "member_id": "m-1",
                        "perk_id": "p-phone",
                        "brand_id": "b-nova",
                        "status": "offered",
                        "source": "load",
                        "actor": "test",
                    },
                )
            else:  # a request writes to many tables, the audit chain among them
                path, body = (
                    "/api/v1/requests",
                    {"type": "access", "email": f"p{n}-{i}@example.org"},
                )
            got = _call(base + path, key, body)
            with lock:
                statuses[("write", got)] += 1

    def reader(n: int, base: str, stop: float):
        paths = ["/api/v1/requests", "/api/v1/disclosures/export"]
        i = 0
        while time.monotonic() < stop:
            i += 1
            got = _call(base + paths[i % 2], key)
            with lock:
                statuses[("read", got)] += 1

    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log, serve(app, kind="flask", log=log) as base:
        stop = time.monotonic() + SECONDS
        threads = [threading.Thread(target=writer, args=(n, base, stop)) for n in range(WRITERS)]
        threads += [threading.Thread(target=reader, args=(n, base, stop)) for n in range(READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    errors = {k: v for k, v in statuses.items() if k[1] >= 500}
    assert not errors, (dict(statuses), log_path.read_text()[-3000:])
    assert statuses[("write", 201)] > WRITERS and statuses[("read", 200)] > READERS, statuses
    print(f"\n8+8 clients for {SECONDS:.0f} s: {dict(statuses)}")


def test_the_embedded_database_runs_in_wal_with_a_busy_timeout(app):
    if PG_URL:
        return  # PostgreSQL has neither setting; its own locking needs no help
    with app.app_context():
        for bind in (None, "keystore"):
            with db.engines[bind].connect() as conn:
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
                # Writes take the write lock when their transaction begins: Lethe begins it
                # (BEGIN IMMEDIATE before the first write of any kind, storage/db.py), not the
                # driver, whose own mode left DDL and WITH ... DELETE outside the transaction
                # (tests/test_sqlite_concurrency.py checks the lock and the rollback).
                assert conn.connection.dbapi_connection.isolation_level is None
