"""Benchmark: the access report (and portability export) for one member with N records.

Not a test: prints figures. Builds a throwaway SQLite database (or uses
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL for PostgreSQL), loads one member with
N records spread over the data map's categories (each with provenance and a history row, as
ingestion writes them), then times a full access report streamed to /dev/null, the HTML
report, and the portability JSON and zip, with peak Python memory from tracemalloc.

    python scripts/bench_access.py [--records 10000]
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app, seed  # noqa: E402
from flask import stream_template  # noqa: E402

from rights.access import access, portability
from rights.lifecycle import requests  # noqa: E402
from storage.db import db  # noqa: E402


def measure(label: str, fn) -> None:
    """Best of three timed runs, then one more under tracemalloc for peak memory (tracing
    slows Python down, so it is kept out of the timing)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        size = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<28} {min(times):8.2f} s   {size / 1e6:7.2f} MB out   "
        f"peak {peak / 1e6:6.1f} MB (Python heap)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    app = make_app()
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        seed(args.records)
        db.session.commit()
        print(
            f"seeded {args.records} records (+ history, audit) in "
            f"{time.perf_counter() - t0:.1f} s  [{app.config['SQLALCHEMY_DATABASE_URI'][:10]}]"
        )
        req = requests.file(
            type="access", email="bench@example.org", channel="api", verified=True, actor="bench"
        )
        exp = requests.file(
            type="portability",
            email="bench@example.org",
            channel="api",
            verified=True,
            actor="bench",
        )
        db.session.commit()
        rid, eid = req.id, exp.id

    def run(gen_factory):
        def inner():
            with app.app_context():
                return sum(len(chunk.encode()) for chunk in gen_factory())

        return inner

    def html():
        with app.test_request_context():
            r = requests.get(rid)
            meta = access.report_meta(r)
            return sum(
                len(c.encode())
                for c in stream_template(
                    "public/report.html", req=r, meta=meta, sections=access.iter_sections(r)
                )
            )

    def zipped():
        with app.app_context():
            f = portability.build_zip(requests.get(eid))
            f.seek(0, 2)
            return f.tell()

    measure("access report (JSON)", run(lambda: access.stream_json(requests.get(rid))))
    measure("access report (HTML)", html)
    measure("portability (JSON)", run(lambda: portability.stream_json(requests.get(eid))))
    measure("portability (zip of CSV)", zipped)


if __name__ == "__main__":
    main()
