"""The transparency log under crashes and contention, and its back-fill migration.

- A sequencer SIGKILLed in the middle of its transaction (a real process, as an OOM kill
  leaves it: no handler, no rollback, no atexit) leaves no gap and no duplicate index; a
  second sequencer that was waiting for the log's lock goes on once the killed one's
  transaction is rolled back (SQLite: the dead process's file locks go with it; PostgreSQL:
  its backend sees the socket close and rolls back, releasing the advisory lock).
- Several sequencers at once (and a queuer beside them) never produce a gap or a duplicate.
- Migration 0016 queues the receipts and audit checkpoints signed before the log existed, in
  the order they were signed; downgrading removes the log's tables.

Every final state is checked against tests/test_merkle.py's reference (RFC 9162 written out
recursion for recursion), never against the production Merkle code.
"""

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, text
from sqlalchemy import select as query

from app import create_app
from rights.ledger import signed_note, signing, transparency
from storage.db import db
from storage.models import (
    AuditCheckpoint,
    LogCheckpoint,
    LogLeaf,
    LogNode,
    LogPending,
    ReceiptRecord,
)
from tests.conftest import make_config
from tests.databases import PG_URL, _admin_engine
from tests.test_merkle import Ref, ref_verify_consistency, ref_verify_inclusion

ROOT = Path(__file__).resolve().parent.parent
LOG_TABLES = {"tlog_pending", "tlog_leaves", "tlog_nodes", "tlog_checkpoints"}
WAIT = 30  # seconds: the longest any step here may take before the test fails

# The sequencer in a child process on the test's databases: optionally one batch appended and
# committed first, then a second sequence() that stops at ``point`` (prints PAUSED and sleeps,
# its transaction open, the log's lock held) until the test SIGKILLs it.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {root!r})
    from app import create_app
    from rights.ledger import merkle, signed_note, transparency
    from storage.db import db

    config = json.load(open(sys.argv[1]))
    app = create_app(config, instance_path=sys.argv[2])
    point, first, limit = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

    def pause(*args, **kwargs):
        db.session.flush()
        print("PAUSED", flush=True)
        time.sleep(600)
        raise SystemExit("not killed")

    with app.app_context():
        if first:
            appended = transparency.sequence(first)
            db.session.commit()
            print(f"COMMITTED {{appended}}", flush=True)
        if point == "nodes":  # lock held, queue rows deleted; no leaf written yet
            merkle.completed_nodes_batch = pause
        elif point == "sign":  # leaves and nodes written; no checkpoint yet
            signed_note.sign = pause
        elif point == "commit":  # everything flushed; COMMIT not sent
            db.session.commit = pause
        transparency.sequence(limit)
        db.session.commit()
    print("FINISHED", flush=True)
    """
)


# --- the log's state, checked against the reference -----------------------------------------


def _leaf(jws: str) -> bytes:
    """RFC 9162 leaf hash of a document's entry, from the definition: SHA-256(0x00 ||
    SHA-256(JWS))."""
    return hashlib.sha256(b"\x00" + hashlib.sha256(jws.encode("ascii")).digest()).digest()


def _queue_documents(count: int) -> list[str]:
    """Stand-ins for signed documents, queued as the issuers queue theirs, committed."""
    docs = [f"doc.statement.{i}" for i in range(count)]
    for doc in docs:
        transparency.queue(doc, "statement")
    db.session.commit()
    return docs


def _popcount(n: int) -> int:
    return bin(n).count("1")


def _count(model) -> int:
    return db.session.execute(query(func.count()).select_from(model)).scalar_one()


def assert_sound_log(expected: list[bytes], *, ordered: bool = True) -> None:
    """The log holds each of ``expected`` (leaf hashes; in this order when ``ordered``) once,
    at indices 0..n-1, nothing queued; its stored nodes are exactly the complete subtrees,
    each the reference MTH of its leaves; every checkpoint is signed, states the reference
    root of its size, and is consistent with the latest (reference verifier)."""
    db.session.expire_all()
    n = len(expected)
    rows = db.session.execute(query(LogLeaf.index, LogLeaf.leaf_hash).order_by(LogLeaf.index)).all()
    assert [row.index for row in rows] == list(range(n)), "a gap or a duplicate index"
    leaves = [row.leaf_hash for row in rows]
    if ordered:
        assert leaves == expected
    else:
        assert sorted(leaves) == sorted(expected)
    assert len(set(leaves)) == n, "a document appended twice"
    assert _count(LogPending) == 0

    ref = Ref(leaves)
    nodes = db.session.execute(query(LogNode.level, LogNode.idx, LogNode.hash)).all()
    assert len(nodes) == 2 * n - _popcount(n)
    for level, idx, hash_ in nodes:
        lo, hi = idx << level, (idx + 1) << level
        assert hi <= n, f"node ({level}, {idx}) covers leaves past the end"
        assert hash_ == ref.mth(lo, hi), f"node ({level}, {idx}) is not MTH(D[{lo}:{hi}])"

    checkpoints = db.session.execute(query(LogCheckpoint).order_by(LogCheckpoint.size)).scalars()
    checkpoints = list(checkpoints)
    assert checkpoints, "no checkpoint signed"
    head = checkpoints[-1]
    assert head.size == n
    assert head.root == ref.mth(0, n)
    keys = transparency.verifier_keys()
    for cp in checkpoints:
        body, signers = signed_note.open_note(cp.note, keys)
        assert signers, f"checkpoint {cp.size} is not signed by a published key"
        stated = signed_note.parse_checkpoint(body)
        assert (stated.origin, stated.size, stated.root) == (
            transparency.origin(),
            cp.size,
            cp.root,
        )
        assert cp.root == ref.mth(0, cp.size), f"checkpoint {cp.size} has the wrong root"
        if cp.size < n:
            proof = transparency.consistency(cp.size)["consistency_path"]
            assert ref_verify_consistency(cp.size, n, cp.root, head.root, proof)
            assert ref_verify_consistency(cp.size, n, cp.root, head.root, ref.proof(cp.size, n))
    for index in (0, n // 2, n - 1):
        proof = transparency.inclusion(leaves[index])
        assert proof["leaf_index"] == index
        assert ref_verify_inclusion(leaves[index], index, n, proof["inclusion_path"], head.root)


# --- helpers ------------------------------------------------------------------------------


def _first_signing_key() -> None:
    """The signing key made before any sequencer runs (else each would make its own)."""
    signing.current_key()
    db.session.commit()


def _drain(app, limit: int, errors: list, done: threading.Event | None = None) -> None:
    """A sequencer of its own (thread, app context, session): sequence() + commit until
    nothing is queued. On PostgreSQL a lock wait gives up after WAIT seconds (an error) rather
    than hanging the suite."""
    try:
        with app.app_context():
            try:
                while True:
                    if db.engines["keystore"].dialect.name == "postgresql":
                        db.session.execute(
                            text(f"SET LOCAL lock_timeout = '{WAIT}s'"),
                            bind_arguments={"mapper": LogLeaf},
                        )
                    appended = transparency.sequence(limit)
                    db.session.commit()
                    if appended == 0 and not transparency.has_pending():
                        db.session.commit()
                        break
            finally:
                db.session.remove()
    except Exception as exc:  # noqa: BLE001 - handed to the test's thread
        errors.append(exc)
    finally:
        if done is not None:
            done.set()


def _let_go(app) -> None:
    """No connection of the test's left open while a child uses the databases."""
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def _child_config(app, tmp_path) -> Path:
    config = {
        k: v for k, v in app.config.items() if isinstance(v, (str, int, bool)) and k.isupper()
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _wait_for(proc: subprocess.Popen, marker: str, seen: list[str]) -> None:
    """Read the child's stdout until a line starting with ``marker``."""
    deadline = time.monotonic() + WAIT
    buffer = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the child exited
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in lines:
                seen.append(line.decode())
                if line.decode().startswith(marker):
                    return
        elif proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=WAIT)
    pytest.fail(f"the child never printed {marker}; printed {seen}; stderr: {err[-3000:]!r}")


# --- 1. kill -9 in the middle of an append ------------------------------------------------


@pytest.mark.parametrize(
    ("point", "first"),
    [("nodes", 0), ("sign", 0), ("commit", 0), ("sign", 20), ("commit", 17)],
)
def test_kill_minus_nine_mid_append_leaves_no_gap_and_no_duplicate(app, tmp_path, point, first):
    count = 50
    with app.app_context():
        _first_signing_key()
        docs = _queue_documents(count)
    _let_go(app)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(script),
            str(_child_config(app, tmp_path)),
            str(tmp_path / "child-instance"),
            point,
            str(first),
            "25",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    errors: list = []
    done = threading.Event()
    waiting = None
    try:
        seen: list[str] = []
        _wait_for(child, "PAUSED", seen)
        if first:
            assert f"COMMITTED {first}" in seen
        # A second sequencer, here: it waits for the killed one's lock, then goes on.
        waiting = threading.Thread(target=_drain, args=(app, 7, errors, done), daemon=True)
        waiting.start()
        assert not done.wait(0.5), f"a second sequencer did not wait for the lock: {errors}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert done.wait(WAIT), "the waiting sequencer never got the lock after the kill"
    waiting.join(WAIT)
    assert not errors, errors
    with app.app_context():
        # The first batch, committed before the kill, is where it was.
        sizes = db.session.execute(query(LogCheckpoint.size).order_by(LogCheckpoint.size))
        sizes = list(sizes.scalars())
        if first:
            assert sizes[0] == first
        # Then the rest in batches of 7: several checkpoints to check consistency between.
        assert sizes[len(sizes) - 1] == count
        assert len(sizes) == (1 if first else 0) + -(-(count - first) // 7)
        assert_sound_log([_leaf(doc) for doc in docs])
        # Nothing is queued, so sequencing again appends nothing and signs nothing.
        assert transparency.sequence() == 0
        db.session.commit()
        assert _count(LogCheckpoint) == len(sizes)


# --- 2. sequencers at once ----------------------------------------------------------------


def test_concurrent_sequencers_never_leave_a_gap_or_a_duplicate(app):
    with app.app_context():
        _first_signing_key()
        docs = _queue_documents(120)
    errors: list = []
    late: list[str] = []

    def queue_more():
        try:
            with app.app_context():
                try:
                    for i in range(40):
                        doc = f"doc.late.{i}"
                        transparency.queue(doc, "receipt")
                        db.session.commit()
                        late.append(doc)
                finally:
                    db.session.remove()
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=_drain, args=(app, 9, errors), daemon=True) for _ in "abcd"]
    threads.append(threading.Thread(target=queue_more, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a sequencer hung"
    assert not errors, errors
    _drain(app, 9, errors)  # what the queuer added after the last sequencer looked
    assert not errors, errors
    with app.app_context():
        # The documents queued before the race are appended in queue order, before anything
        # queued later; the late ones are each appended once, wherever they landed.
        leaves = db.session.execute(query(LogLeaf.leaf_hash).order_by(LogLeaf.index)).scalars()
        leaves = list(leaves)
        assert leaves[:120] == [_leaf(doc) for doc in docs]
        assert_sound_log([_leaf(doc) for doc in docs + late], ordered=False)


def test_concurrent_sequencers_in_separate_processes(app, tmp_path):
    """Two child processes sequencing the same queue at once, each paused inside its
    transaction for a moment so that the other is sure to come up against the lock."""
    with app.app_context():
        _first_signing_key()
        docs = _queue_documents(60)
    _let_go(app)
    script = tmp_path / "racer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys, time
            sys.path.insert(0, {str(ROOT)!r})
            from app import create_app
            from rights.ledger import signed_note, transparency
            from storage.db import db

            app = create_app(json.load(open(sys.argv[1])), instance_path=sys.argv[2])
            real_sign = signed_note.sign

            def slow_sign(*args, **kwargs):
                time.sleep(0.05)  # the other process reaches the lock meanwhile
                return real_sign(*args, **kwargs)

            signed_note.sign = slow_sign
            start_at = float(sys.argv[3])
            time.sleep(max(0.0, start_at - time.time()))
            with app.app_context():
                total = 0
                while True:
                    appended = transparency.sequence(4)
                    db.session.commit()
                    total += appended
                    time.sleep(0.1)  # SQLite's busy handler polls: let the waiter in
                    if appended == 0 and not transparency.has_pending():
                        break
            print(total, flush=True)
            """
        )
    )
    config = _child_config(app, tmp_path)
    start_at = time.time() + 2.0
    racers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(script), str(config), str(tmp_path / f"i{n}"), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for n in range(2)
    ]
    totals = []
    for racer in racers:
        try:
            out, err = racer.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            for other in racers:
                other.kill()
            pytest.fail("a sequencer process hung")
        assert racer.returncode == 0, err[-3000:]
        totals.append(int(out.split()[-1]))
    assert sum(totals) == 60
    assert all(totals), f"one process appended everything: {totals} (no race happened)"
    with app.app_context():
        assert_sound_log([_leaf(doc) for doc in docs])


# --- 3. the back-fill migration -----------------------------------------------------------


def _throwaway_databases(tmp_path):
    """Empty databases for a migration run: SQLite files, or new PostgreSQL databases."""
    if not PG_URL:
        return (f"sqlite:///{tmp_path / 'mig.db'}", f"sqlite:///{tmp_path / 'mig-keys.db'}"), None
    name = f"lethe_tlog_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(PG_URL)
    with admin.connect() as conn:
        for db_name in (name, name + "_keys"):
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    return (f"{base}/{name}", f"{base}/{name}_keys"), (admin, name)


def _flask_db(app, *args: str) -> None:
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)


def test_backfill_queues_signed_documents_in_the_order_they_were_signed(tmp_path, smtp_server):
    (main_url, keys_url), cleanup = _throwaway_databases(tmp_path)
    cfg = make_config(
        tmp_path, smtp_server.port, SQLALCHEMY_DATABASE_URI=main_url, KEYSTORE_URL=keys_url
    )
    app = create_app(cfg, instance_path=str(tmp_path / "instance"))
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    # (kind, jws, signed at): receipts and audit checkpoints interleaved in time, and written
    # in an order that is neither time order nor grouped by kind.
    documents = [
        ("receipt", "eyJhbGciOiJFZERTQSJ9.cmVjZWlwdC0z.c2ln", t0 + timedelta(hours=5)),
        ("audit-checkpoint", "eyJhbGciOiJFZERTQSJ9.Y2hlY2twb2ludC0x.c2ln", t0),
        ("receipt", "eyJhbGciOiJFZERTQSJ9.cmVjZWlwdC0x.c2ln", t0 + timedelta(minutes=30)),
        ("audit-checkpoint", "eyJhbGciOiJFZERTQSJ9.Y2hlY2twb2ludC0z.c2ln", t0 + timedelta(days=2)),
        ("receipt", "eyJhbGciOiJFZERTQSJ9.cmVjZWlwdC0y.c2ln", t0 + timedelta(hours=1, seconds=1)),
        ("audit-checkpoint", "eyJhbGciOiJFZERTQSJ9.Y2hlY2twb2ludC0y.c2ln", t0 + timedelta(hours=1)),
        (
            "receipt",
            "eyJhbGciOiJFZERTQSJ9.cmVjZWlwdC00.c2ln",
            t0 + timedelta(days=1, microseconds=7),
        ),
    ]
    in_time_order = sorted(documents, key=lambda d: d[2])
    try:
        _flask_db(app, "upgrade", "0015")
        with app.app_context():
            keystore = db.engines["keystore"]
            assert not LOG_TABLES & set(inspect(keystore).get_table_names())
            with keystore.begin() as conn:
                for n, (kind, jws, at) in enumerate(documents):
                    if kind == "receipt":
                        conn.execute(
                            insert(ReceiptRecord.__table__).values(
                                id=str(uuid.uuid4()),
                                request_id=str(uuid.uuid4()),
                                subject_ref=f"subject-{n}",
                                jws=jws,
                                record_key_hash=f"{n:064x}",
                                issued_at=at,
                            )
                        )
                    else:
                        conn.execute(
                            insert(AuditCheckpoint.__table__).values(
                                last_id=n,
                                last_hash=f"{n:064x}",
                                entries=n,
                                jws=jws,
                                anchor=False,
                                created_at=at,
                            )
                        )
            keystore.dispose()

        _flask_db(app, "upgrade")
        with app.app_context():
            queued = db.session.execute(
                query(LogPending.leaf_hash, LogPending.kind, LogPending.queued_at).order_by(
                    LogPending.id
                )
            ).all()
            assert [(row.leaf_hash, row.kind) for row in queued] == [
                (_leaf(jws), kind) for kind, jws, _ in in_time_order
            ]
            assert [row.queued_at for row in queued] == [at for _, _, at in in_time_order]

            transparency.queue("eyJhbGciOiJFZERTQSJ9.bmV3ZXI.c2ln", "statement")  # signed later
            db.session.commit()
            assert transparency.sequence() == len(documents) + 1
            db.session.commit()
            leaves = db.session.execute(
                query(LogLeaf.leaf_hash, LogLeaf.kind).order_by(LogLeaf.index)
            ).all()
            assert [tuple(row) for row in leaves] == [
                *((_leaf(jws), kind) for kind, jws, _ in in_time_order),
                (_leaf("eyJhbGciOiJFZERTQSJ9.bmV3ZXI.c2ln"), "statement"),
            ]
            assert_sound_log([row.leaf_hash for row in leaves])
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()

        # A log with entries is public: downgrading below 0016 would destroy it, so it is
        # refused and nothing changes.
        result = app.test_cli_runner().invoke(args=["db", "downgrade", "0015"])
        assert result.exit_code != 0
        assert "transparency log has entries" in result.output + repr(result.exception)
        with app.app_context():
            keystore = db.engines["keystore"]
            assert LOG_TABLES <= set(inspect(keystore).get_table_names())
            with keystore.connect() as conn:
                kept = conn.execute(text("SELECT count(*) FROM tlog_leaves")).scalar_one()
            assert kept == len(documents) + 1
            # Emptied (a log nobody has seen), it may go: the documents stay.
            with keystore.begin() as conn:
                for table in ("tlog_checkpoints", "tlog_nodes", "tlog_leaves", "tlog_pending"):
                    conn.execute(text(f"DELETE FROM {table}"))
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
        _flask_db(app, "downgrade", "0015")
        with app.app_context():
            keystore = db.engines["keystore"]
            names = set(inspect(keystore).get_table_names())
            assert not LOG_TABLES & names
            assert {"receipt_records", "audit_checkpoints"} <= names  # the documents stay
            with keystore.connect() as conn:
                kept = conn.execute(text("SELECT count(*) FROM receipt_records")).scalar_one()
            assert kept == sum(kind == "receipt" for kind, _, _ in documents)
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        if cleanup:
            admin, name = cleanup
            with admin.connect() as conn:
                for db_name in (name, name + "_keys"):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()
