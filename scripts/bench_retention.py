"""Benchmark: a retention sweep of N expired influence topics (each with its history row),
against a raw batched SQL DELETE of the same rows.

Not a test: prints figures. One run, one database: a throwaway SQLite database (or
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL for PostgreSQL) with --members members, N
influence topics recorded 13 to 36 months ago (the policy deletes them 12 months after
recorded_at) and --keep topics recorded last month spread among them, which must stay; every
topic has a history row, as ingestion writes it. The rows are written once, in bulk, into a
copy, and put back from it before each run (not timed). After a warm-up of both on the empty
tables (policy files read, SQL compiled), each round runs Lethe's sweep
(sweeps.sweep(only="influence_topics"): claim a batch of ids, delete their history, delete
them, commit), then the same deletions as bare SQL (DELETE ... WHERE record_id IN (SELECT id
... ORDER BY id LIMIT batch) for the history, then the topics, a commit per batch). After
each run: no expired topic or history row left, every kept topic and its history still
there. Rows per second count the topics (as many history rows go with them). Best of
--rounds; then one more sweep under tracemalloc for peak memory (tracing slows Python down,
so it is kept out of the timing). --profile adds a sweep under cProfile: the SQL statements
it sent, its steps by cumulative time, the top functions by own time.

    python scripts/bench_retention.py [--rows 1000000] [--batch 2000] [--rounds 1]
                                      [--keep 1000] [--members 2000] [--profile]
"""

import argparse
import cProfile
import pstats
import sys
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Column,
    MetaData,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)

from retention_policies import sweeps  # noqa: E402
from retention_policies.policies import policies  # noqa: E402
from storage import vault  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import UTCDateTime, db  # noqa: E402
from storage.models import InfluenceTopic, Member, RecordHistory, Subject  # noqa: E402

KEY = "influence_topics"
MEMBERS = 2_000  # each with a subject key: seeding them is most of a small run
CHUNK = 20_000
TOPICS = ("running", "coffee", "sneakers", "gaming", "skincare", "travel", "vinyl", "cycling")
RAW_HISTORY = text(
    "DELETE FROM record_history WHERE record_type = 'influence_topics' AND record_id IN "
    "(SELECT id FROM influence_topics WHERE recorded_at <= :cutoff ORDER BY id LIMIT :batch)"
).bindparams(bindparam("cutoff", type_=UTCDateTime))
RAW_TOPICS = text(
    "DELETE FROM influence_topics WHERE id IN "
    "(SELECT id FROM influence_topics WHERE recorded_at <= :cutoff ORDER BY id LIMIT :batch)"
).bindparams(bindparam("cutoff", type_=UTCDateTime))


def _copy_of(table: Table, name: str) -> Table:
    """A bare copy of ``table`` (same columns, no index, no foreign key): the seeded rows."""
    columns = [Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns]
    return Table(name, MetaData(), *columns)


TOPICS_COPY = _copy_of(InfluenceTopic.__table__, "bench_retention_topics")
HISTORY_COPY = _copy_of(RecordHistory.__table__, "bench_retention_history")


def _rows(n: int, keep: int, subjects: list[str]):
    """(topic, history) pairs: ``n`` expired topics with ``keep`` recent ones spread evenly
    among them, ids 1 to n + keep."""
    now = utcnow()
    total = n + keep
    kept = {(2 * j + 1) * total // (2 * keep) for j in range(keep)}
    for i in range(total):
        if i in kept:
            at = now - timedelta(days=30, seconds=i % 86_400)
        else:
            at = now - timedelta(days=400 + i % 700, seconds=i % 86_400)
        sid = subjects[i % len(subjects)]
        yield (
            {
                "id": i + 1,
                "subject_id": sid,
                "topic": TOPICS[i % len(TOPICS)],
                "weight": (i % 100) / 100,
                "source": "scoring-service",
                "actor": "topic-model-v3",
                "recorded_at": at,
            },
            {
                "id": i + 1,
                "subject_id": sid,
                "record_type": KEY,
                "record_id": i + 1,
                "action": "created",
                "changed_at": at,
                "source": "scoring-service",
                "actor": "topic-model-v3",
            },
        )


def seed(n: int, keep: int, members: int = MEMBERS) -> None:
    """Members, then the topics and their history into the copies (Core inserts in chunks)."""
    now = utcnow()
    subjects = [
        Subject(ref=f"sub_r{i:06d}", email_index=vault.blind_index(f"r{i}@x.org"))
        for i in range(members)
    ]
    db.session.add_all(subjects)
    db.session.flush()
    for s in subjects:
        vault.create_subject_key(s.id)
    db.session.execute(
        insert(Member),
        [
            {
                "subject_id": s.id,
                "external_id": f"m-r{i}",
                "email_enc": vault.encrypt(s.id, "members.email_enc", f"r{i}@x.org"),
                "status": "active",
                "joined_at": now - timedelta(days=1200),
                "source": "bench",
                "actor": "seed",
                "recorded_at": now - timedelta(days=1200),
            }
            for i, s in enumerate(subjects)
        ],
    )
    ids = [s.id for s in subjects]
    db.session.commit()
    with db.engines[None].begin() as conn:
        TOPICS_COPY.create(conn)
        HISTORY_COPY.create(conn)
        rows = _rows(n, keep, ids)
        while chunk := list(islice(rows, CHUNK)):
            conn.execute(insert(TOPICS_COPY), [t for t, _ in chunk])
            conn.execute(insert(HISTORY_COPY), [h for _, h in chunk])


def put_back() -> None:
    """The seeded topics and history, as they were before any run (not timed); on
    PostgreSQL, vacuumed and analysed."""
    with db.engines[None].begin() as conn:
        conn.execute(text("DELETE FROM record_history WHERE record_type = :t"), {"t": KEY})
        conn.execute(text("DELETE FROM influence_topics"))
        for table, copy in (
            (InfluenceTopic.__table__, TOPICS_COPY),
            (RecordHistory.__table__, HISTORY_COPY),
        ):
            names = [c.name for c in copy.columns]
            conn.execute(
                insert(table).from_select(names, select(copy).order_by(copy.c.id)),
            )
    engine = db.engines[None]
    if engine.dialect.name == "postgresql":
        # Without it each run would start on the last one's dead rows and stale statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE influence_topics, record_history"))


def check(label: str, keep: int) -> None:
    """No expired topic nor its history left; every kept topic and its history still there."""
    cutoff = policies()[KEY].period.before(utcnow())
    topic, history = InfluenceTopic, RecordHistory
    with db.engines[None].connect() as conn:
        count = lambda q: conn.execute(q).scalar_one()  # noqa: E731
        expired = count(select(func.count()).where(topic.recorded_at <= cutoff))
        left = count(select(func.count()).select_from(topic))
        wanted = count(select(func.count()).where(TOPICS_COPY.c.recorded_at > cutoff))
        recent = select(TOPICS_COPY.c.id).where(TOPICS_COPY.c.recorded_at > cutoff)
        kept = count(select(func.count()).where(topic.id.in_(recent)))
        histories = count(select(func.count()).where(history.record_type == KEY))
        orphans = count(
            select(func.count()).where(
                history.record_type == KEY, history.record_id.not_in(select(topic.id))
            )
        )
    assert expired == 0, f"{label}: {expired} expired topics left"
    assert left == kept == wanted == keep, f"{label}: {left} topics left, {kept} of {keep} kept"
    assert histories == keep and orphans == 0, (
        f"{label}: {histories} history rows, {orphans} orphans"
    )


def lethe(app, n: int, batch: int) -> float:
    """Lethe's sweep of the one category, in an app context as the CLI runs it."""
    with app.app_context():
        start = time.perf_counter()
        (outcome,) = sweeps.sweep(only=KEY, batch=batch)
        elapsed = time.perf_counter() - start
        assert (outcome.expired, outcome.held) == (n, 0), outcome
    return elapsed


def raw(app, n: int, batch: int) -> float:
    """The same rows as bare SQL: history, then topics, a batch per transaction."""
    with app.app_context():
        engine = db.engines[None]
        start = time.perf_counter()
        params = {"cutoff": policies()[KEY].period.before(utcnow()), "batch": batch}
        done = 0
        while True:
            with engine.begin() as conn:
                conn.execute(RAW_HISTORY, params)
                deleted = conn.execute(RAW_TOPICS, params).rowcount
            if not deleted:
                break
            done += deleted
        elapsed = time.perf_counter() - start
    assert done == n, done
    return elapsed


def _driver_commit(file: str, line: int, name: str) -> bool:
    """The database driver's commit (sqlite3's C method, or psycopg's)."""
    return (file == "~" and "commit" in name) or (name == "commit" and "psycopg" in file)


def profile(app, n: int, batch: int) -> None:
    """One more sweep under cProfile: the statements it sent, the top functions."""
    statements = Counter()

    def count(conn, cursor, statement, parameters, context, executemany):
        statements[statement.split(None, 1)[0].upper()] += 1

    with app.app_context():
        engine = db.engines[None]
    event.listen(engine, "before_cursor_execute", count)
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed = lethe(app, n, batch)
    profiler.disable()
    event.remove(engine, "before_cursor_execute", count)
    batches = -(-n // batch)
    per = ", ".join(f"{k} {v}" for k, v in statements.most_common())
    print(f"\nsweep under cProfile: {elapsed:.2f} s, {batches} batches; statements: {per}")
    stats = pstats.Stats(profiler).stats
    steps = [
        item
        for item in stats.items()
        if "retention_policies" in item[0][0] or _driver_commit(*item[0])
    ]
    tables = (
        ("the sweep's steps, cumulative time", 3, steps),
        ("top 10 by own time", 2, stats.items()),
    )
    for heading, column, items in tables:
        print(f"\n{heading:62} {'calls':>8} {'s':>7} {'%':>5}")
        rows = sorted(items, key=lambda i: i[1][column], reverse=True)[:10]
        for (file, line, name), row in rows:
            where = name if file == "~" else f"{name} ({'/'.join(Path(file).parts[-2:])}:{line})"
            print(f"{where[:62]:62} {row[1]:8d} {row[column]:7.2f} {row[column] / elapsed:5.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="expired topics")
    parser.add_argument("--keep", type=int, default=1_000, help="recent topics, kept")
    parser.add_argument("--batch", type=int, default=sweeps.BATCH, help="rows per transaction")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--members", type=int, default=MEMBERS, help="owners of the topics")
    parser.add_argument("--profile", action="store_true", help="where the sweep's time goes")
    args = parser.parse_args()
    n, keep, batch, members = args.rows, max(1, args.keep), args.batch, max(1, args.members)
    app = make_app()
    with app.app_context():
        db.create_all()
        if db.session.execute(select(func.count()).select_from(InfluenceTopic)).scalar():
            sys.exit("The bench database already has influence topics: give it an empty one.")
        try:
            start = time.perf_counter()
            seed(n, keep, members)
            print(
                f"seeded {n:,} expired topics + {keep:,} kept (each with a history row) over "
                f"{members:,} members in {time.perf_counter() - start:.1f} s"
                f"  [{db.engines[None].dialect.name}]"
            )
            db.session.commit()
            lethe(app, 0, batch)  # warm-up on the empty tables: policy files, compiled SQL
            raw(app, 0, batch)
            sweep_times, raw_times, put_back_times = [], [], []
            for _ in range(args.rounds):
                for run, times in ((lethe, sweep_times), (raw, raw_times)):
                    start = time.perf_counter()
                    put_back()
                    put_back_times.append(time.perf_counter() - start)
                    times.append(run(app, n, batch))
                    check(run.__name__, keep)
            put_back()
            tracemalloc.start()
            lethe(app, n, batch)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            check("lethe (traced)", keep)
            print(f"rows put back from the copy in {min(put_back_times):.1f} s each (not timed)")
            sweep_s, raw_s = min(sweep_times), min(raw_times)
            title = f"best of {args.rounds}, batch {batch:,}"
            print(f"\n{title:36} {'s':>8} {'rows/s':>10}")
            print(f"{'Lethe sweep (sweeps.sweep)':36} {sweep_s:8.2f} {n / sweep_s:10,.0f}")
            print(f"{'raw batched DELETE':36} {raw_s:8.2f} {n / raw_s:10,.0f}")
            print(f"{'sweep / raw':36} {sweep_s / raw_s:7.2f}x")
            print(f"{'peak Python memory (sweep, traced)':36} {peak / 1e6:6.1f} MB")
            print(
                f"checked after each run: {n:,} topics and their {n:,} history rows gone, "
                f"{keep:,} kept with theirs"
            )
            if args.profile:
                put_back()
                profile(app, n, batch)
                check("lethe (profiled)", keep)
        finally:
            db.session.remove()
            with db.engines[None].begin() as conn:
                HISTORY_COPY.drop(conn, checkfirst=True)
                TOPICS_COPY.drop(conn, checkfirst=True)


if __name__ == "__main__":
    main()
