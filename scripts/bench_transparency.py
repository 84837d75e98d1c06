"""Benchmark: the transparency log (issue 18) at scale — how fast the sequencer appends, what
queueing adds to a receipt, how long proofs take at the full size, and what a leaf costs on
disk.

Not a test: prints figures. SQLite files in a temporary folder, or PostgreSQL with
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL (see benchdata.py): throwaway databases,
their schema dropped and made again first.

- **queue() + commit**: ``--queue-sample`` documents queued one at a time, each committed, as
  the transaction that signs a receipt or statement queues it (``transparency.queue``): the
  cost the log adds to issuing one. They are the log's first leaves.
- **appends**: the rest of the ``--leaves`` entries are put in the queue ``--fill`` at a time
  (a bulk insert of ``tlog_pending`` rows, not timed), and each time the queue is emptied as
  the worker empties it: its runner (``storage.steps.run_steps``) over its sequencer
  (``transparency.sequence_steps``), one committed transaction per batch of
  ``transparency.BATCH`` leaves with a signed checkpoint. Timed per batch (sequence + commit):
  the rate over the whole run, over the last ``--last`` batches (the tree at its full size),
  and by tenth of the tree, to show whether appending slows as the tree grows.
- **proofs at the full size**: ``--proofs`` inclusion proofs of random leaves (by leaf hash,
  in the latest tree, ``transparency.inclusion``) and as many consistency proofs between
  random sizes m < n (``transparency.consistency``), then ``--http`` of each through the
  public endpoints (``/.well-known/transparency/proof/...``, Flask's test client: no server):
  median and p99. Every proof timed is checked with ``rights.ledger.merkle``'s verifiers
  against roots computed here from the leaves (not from the stored nodes), and the latest
  checkpoint's root and signature are checked too.
- **storage**: on SQLite the key store's file after a WAL checkpoint (and its tlog tables, from
  ``dbstat``), on PostgreSQL ``pg_total_relation_size`` of the four ``tlog_*`` tables (after a
  plain VACUUM, as autovacuum would leave them), per leaf; and ``tlog_nodes`` rows per leaf.

    python scripts/bench_transparency.py [--leaves 1000000] [--fill 100000] [--proofs 200]
        [--http 20] [--queue-sample 2000] [--last 20] [--seed 18]
"""

import argparse
import base64
import hashlib
import logging
import math
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchdata import make_app  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from rights.ledger import merkle, signed_note, transparency  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import checkpoint_sqlite, db  # noqa: E402
from storage.models import LogCheckpoint, LogNode, LogPending  # noqa: E402
from storage.steps import run_steps  # noqa: E402

TABLES = ("tlog_pending", "tlog_leaves", "tlog_nodes", "tlog_checkpoints")
LOG = "/.well-known/transparency"


def doc(i: int) -> str:
    """Leaf i's stand-in for a signed document (a distinct ASCII string)."""
    return f"bench.transparency.{i:09d}"


def pct(values: list[float], p: float) -> float:
    """The p-quantile by nearest rank (p99 of 200 values: the second largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def ms(values: list[float]) -> str:
    median, p99 = statistics.median(values) * 1000, pct(values, 0.99) * 1000
    return f"median {median:7.2f} ms   p99 {p99:7.2f} ms"


def fresh_schema() -> None:
    """Empty throwaway databases: PostgreSQL's schema dropped (this run's keys are new, and a
    key store made with the last run's would not open); SQLite's files are new already."""
    for bind in db.engines.values():
        if bind.dialect.name == "postgresql":
            with bind.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    db.create_all()


def queue_sample(count: int) -> list[float]:
    """``count`` documents queued one by one, each in its own committed transaction."""
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        transparency.queue(doc(i), "receipt")
        db.session.commit()
        times.append(time.perf_counter() - t0)
    return times


def fill(start: int, count: int) -> None:
    """Queue leaves ``start`` .. ``start + count - 1`` in one bulk insert (not the issuing
    path: set-up only), committed."""
    now = utcnow()
    rows = [
        {"leaf_hash": transparency.leaf_hash_of(doc(i)), "kind": "statement", "queued_at": now}
        for i in range(start, start + count)
    ]
    for chunk in range(0, len(rows), 20_000):
        db.session.execute(insert(LogPending), rows[chunk : chunk + 20_000])
    db.session.commit()


def timed(steps, marks: list[float]):
    """The worker's steps, unchanged, noting the time after each step's commit (the runner
    commits at each ``yield``; the next step starts when this generator is resumed)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        yield
        marks.append(time.perf_counter())


def empty_queue() -> tuple[int, list[float]]:
    """Run the worker's sequencer until the queue is empty. Returns leaves appended and the
    time of each committed batch (sequence + commit)."""
    marks: list[float] = []
    start = time.perf_counter()
    appended = run_steps(timed(transparency.sequence_steps(), marks))
    return appended, [b - a for a, b in zip([start, *marks[:-1]], marks, strict=True)]


def reference_roots(n: int, sizes: set[int]) -> dict[int, bytes]:
    """MTH(D[0:m]) for every m in ``sizes``, computed here from the leaves (RFC 9162 2.1.1,
    with hashlib; not from the stored nodes): the stack of complete subtrees, folded."""
    roots: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # (height, hash) of complete subtrees, left to right
    for i in range(n):
        h = hashlib.sha256(b"\x00" + hashlib.sha256(doc(i).encode("ascii")).digest()).digest()
        height = 0
        while stack and stack[-1][0] == height:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            height += 1
        stack.append((height, h))
        if i + 1 in sizes:
            r = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                r = hashlib.sha256(b"\x01" + left + r).digest()
            roots[i + 1] = r
    return roots


def storage_figures(n: int) -> list[str]:
    """Bytes per leaf on disk, and stored nodes per leaf."""
    keystore = db.engines["keystore"]
    lines = []
    nodes = db.session.execute(select(func.count()).select_from(LogNode)).scalar_one()
    db.session.commit()
    if keystore.dialect.name == "sqlite":
        checkpoint_sqlite(keystore)
        path = Path(keystore.url.database)
        size = path.stat().st_size
        wal = Path(f"{path}-wal")
        with keystore.connect() as conn:
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            owner = dict(conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master").all())
            per_object = conn.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            ).all()
        tables = dict.fromkeys(TABLES, 0)
        for name, pages in per_object:
            table = owner.get(name, name)
            if table in tables:
                tables[table] += pages
        lines.append(
            f"  key store file        {size / 1e6:9.1f} MB  {size / n:7.1f} B/leaf"
            f"  (WAL {wal.stat().st_size if wal.exists() else 0} B after checkpoint;"
            f" {free * page / 1e6:.1f} MB of it free pages)"
        )
    else:
        with keystore.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in TABLES:
                conn.exec_driver_sql(f"VACUUM {table}")
            tables = {
                table: conn.exec_driver_sql(
                    "SELECT pg_total_relation_size(%(t)s::regclass)", {"t": table}
                ).scalar_one()
                for table in TABLES
            }
    total = sum(tables.values())
    lines.append(f"  tlog_* tables         {total / 1e6:9.1f} MB  {total / n:7.1f} B/leaf")
    lines.append(
        "    " + ", ".join(f"{t.removeprefix('tlog_')} {b / n:.1f}" for t, b in tables.items())
    )
    lines.append(f"  tlog_nodes rows/leaf  {nodes / n:9.3f}      ({nodes:,} rows)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="the tree's final size")
    parser.add_argument("--fill", type=int, default=100_000, help="leaves queued at a time")
    parser.add_argument("--proofs", type=int, default=200, help="of each kind, in-process")
    parser.add_argument("--http", type=int, default=20, help="of each kind, over HTTP")
    parser.add_argument("--queue-sample", type=int, default=2000, help="single queue+commit")
    parser.add_argument("--last", type=int, default=20, help="batches in the 'last' rate")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    n = args.leaves
    if n < 2:
        parser.error("--leaves must be at least 2 (a consistency proof needs m < n)")
    rng = random.Random(args.seed)
    app = make_app()
    app.config["RATELIMIT_ENABLED"] = False
    logging.getLogger("lethe.access").setLevel(logging.WARNING)  # no line per request
    out: list[str] = []

    with app.app_context():
        fresh_schema()
        engine = db.engines["keystore"].dialect.name
        wall0 = time.perf_counter()

        # The issuing path: queue() + commit, one document at a time.
        sample = min(args.queue_sample, n)
        queue_times = queue_sample(sample)

        # The sequencer, a queue-full at a time.
        batches: list[float] = []
        queued = sample
        while queued < n or queued == sample == n:
            count = min(args.fill, n - queued)
            if count:
                fill(queued, count)
                queued += count
            appended, times = empty_queue()
            assert appended == count + (sample if not batches else 0), appended
            batches.extend(times)
            if queued >= n:
                break
        sizes = db.session.execute(select(LogCheckpoint.size).order_by(LogCheckpoint.size))
        sizes = [0, *sizes.scalars()]
        assert sizes[-1] == n and len(sizes) - 1 == len(batches), (sizes[-1], len(batches))
        counts = [b - a for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        assert not db.session.execute(select(LogPending.id).limit(1)).first()
        db.session.commit()
        fill_wall = time.perf_counter() - wall0

        # Proofs at the full size, in-process.
        inc_leaves = [rng.randrange(n) for _ in range(args.proofs)]
        pairs = []
        for _ in range(args.proofs):
            second = rng.randint(2, n)
            pairs.append((rng.randint(1, second - 1), second))
        inc_times, inclusions = [], []
        for index in inc_leaves:
            leaf = transparency.leaf_hash_of(doc(index))
            t0 = time.perf_counter()
            proof = transparency.inclusion(leaf)
            inc_times.append(time.perf_counter() - t0)
            inclusions.append((index, leaf, proof))
        con_times, consistencies = [], []
        for first, second in pairs:
            t0 = time.perf_counter()
            proof = transparency.consistency(first, second)
            con_times.append(time.perf_counter() - t0)
            consistencies.append(proof)
        head = transparency.latest()
        head_note, head_root, keys = head.note, head.root, transparency.verifier_keys()
        db.session.commit()
        storage = storage_figures(n)
        db.session.remove()

    # The same, through the public endpoints.
    client = app.test_client()
    http_inc, http_con = [], []
    for _ in range(args.http):
        index = rng.randrange(n)
        leaf = transparency.leaf_hash_of(doc(index))
        t0 = time.perf_counter()
        resp = client.get(f"{LOG}/proof/inclusion?leaf={leaf.hex()}")
        http_inc.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        path = [base64.b64decode(h) for h in body["inclusion_path"]]
        inclusions.append((index, leaf, {**body, "inclusion_path": path}))
    for _ in range(args.http):
        second = rng.randint(2, n)
        first = rng.randint(1, second - 1)
        t0 = time.perf_counter()
        resp = client.get(f"{LOG}/proof/consistency?from={first}&to={second}")
        http_con.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        path = [base64.b64decode(h) for h in body["consistency_path"]]
        consistencies.append({**body, "consistency_path": path})

    # Every proof above checked against roots computed from the leaves, not the stored nodes;
    # the latest checkpoint's signature and root too.
    t0 = time.perf_counter()
    wanted = {n} | {p["first"] for p in consistencies} | {p["second"] for p in consistencies}
    roots = reference_roots(n, wanted)
    body, signers = signed_note.open_note(head_note, keys)
    stated = signed_note.parse_checkpoint(body)
    assert signers and stated.size == n and stated.root == roots[n] == head_root
    for index, leaf, proof in inclusions:
        assert proof["leaf_index"] == index and proof["tree_size"] == n, proof
        assert merkle.verify_inclusion(leaf, index, n, proof["inclusion_path"], roots[n])
    for proof in consistencies:
        m, k = proof["first"], proof["second"]
        assert merkle.verify_consistency(m, k, roots[m], roots[k], proof["consistency_path"])
    verify_wall = time.perf_counter() - t0

    total = sum(batches)
    last = min(args.last, len(batches))
    tenths: dict[int, list[float]] = {}
    for size, count, seconds in zip(sizes[1:], counts, batches, strict=True):
        bucket = tenths.setdefault(math.ceil(size * 10 / n), [0, 0.0])
        bucket[0] += count
        bucket[1] += seconds
    out.append(
        f"[{engine}] transparency log, {n:,} leaves; batch {transparency.BATCH}, queue filled "
        f"{min(args.fill, n):,} at a time; set-up + appends {fill_wall:.1f} s"
    )
    out.append("appends (worker: sequence_steps under run_steps, a commit per batch)")
    out.append(
        f"  whole run        {n / total:10,.0f} /s   ({len(batches)} batches, {total:.1f} s)"
    )
    out.append(
        f"  last {last:>3} batches {sum(counts[-last:]) / sum(batches[-last:]):10,.0f} /s"
        f"   (tree {sizes[-last - 1]:,} -> {n:,})"
    )
    per_batch = [t * 1000 for t in batches]
    out.append(
        f"  per batch        median {statistics.median(per_batch):.0f} ms, "
        f"p99 {pct(per_batch, 0.99):.0f} ms, max {max(per_batch):.0f} ms"
    )
    out.append(
        "  by tenth of tree "
        + " ".join(f"{c / s:,.0f}" for _, (c, s) in sorted(tenths.items()))
        + " /s"
    )
    out.append(f"issuing path: queue() + commit, {sample} single commits")
    out.append(
        f"  queue+commit     {len(queue_times) / sum(queue_times):10,.0f} /s   {ms(queue_times)}"
    )
    out.append(f"proofs at size {n:,} (all verified)")
    out.append(f"  inclusion   x{len(inc_times):<4} {ms(inc_times)}")
    out.append(f"  consistency x{len(con_times):<4} {ms(con_times)}")
    if args.http:
        out.append(f"  HTTP incl.  x{len(http_inc):<4} {ms(http_inc)}")
        out.append(f"  HTTP cons.  x{len(http_con):<4} {ms(http_con)}")
    out.append(
        f"  verified: {len(inclusions)} inclusion + {len(consistencies)} consistency proofs, "
        f"the signed checkpoint; roots from the leaves ({verify_wall:.1f} s)"
    )
    out.append("storage")
    out.extend(storage)
    print("\n".join(out))


if __name__ == "__main__":
    main()
