"""Benchmark: the access report (and portability export) for one member with N records.

Not a test: prints figures. Builds a throwaway SQLite database (or uses
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL for PostgreSQL), loads one member with
N records spread over the data map's categories (each with provenance and a history row, as
ingestion writes them), then times a full access report streamed to /dev/null, the HTML
report, and the portability JSON and zip, with peak Python memory from tracemalloc.

    python scripts/bench_access.py [--records 10000]
"""

import argparse
import base64
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import stream_template  # noqa: E402

from app import create_app  # noqa: E402
from rights import access, portability, records, requests  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import InfluenceTopic  # noqa: E402


def seed(n: int) -> None:
    member, _ = records.upsert_member(
        {
            "member_id": "m-bench",
            "email": "bench@example.org",
            "name": "Bench Mark",
            "handle": "@bench",
            "address": "1 Bench Road",
        },
        source="bench",
        actor="seed",
    )
    sid = member.subject_id
    awards = int(n * 0.4)
    for i in range(awards):
        records.upsert_award(
            {
                "award_id": f"aw-{i}",
                "member_id": "m-bench",
                "perk_id": f"p-{i % 25}",
                "perk_item": f"Perk {i % 25}",
                "brand_id": f"b-{i % 5}",
                "campaign_id": f"c-{i % 10}",
                "status": "received",
            },
            source="bench",
            actor="seed",
        )
    for i in range(int(n * 0.3)):
        records.upsert_disclosure(
            {"disclosure_id": f"dl-{i}", "award_id": f"aw-{i % awards}", "status": "disclosed"},
            source="bench",
            actor="seed",
        )
    for i in range(int(n * 0.1)):
        records.upsert_promotion(
            {
                "promotion_id": f"pr-{i}",
                "member_id": "m-bench",
                "audience": "friends",
                "message": f"Bench Mark won perk {i}!",
                "uses_likeness": True,
            },
            source="bench",
            actor="seed",
        )
    for i in range(int(n * 0.1)):
        records.upsert_consent(
            {
                "consent_id": f"con-{i}",
                "member_id": "m-bench",
                "purpose": f"purpose-{i}",
                "status": "granted",
                "notice_version": "v1",
                "channel": "web",
                "granted_at": requests.utcnow(),
            },
            source="bench",
            actor="seed",
        )
    done = awards + int(n * 0.3) + 2 * int(n * 0.1)
    for i in range(n - done):
        records.apply_changes(
            InfluenceTopic(subject_id=sid),
            {"topic": f"t{i}", "weight": 0.5},
            subject_id=sid,
            source="bench",
            actor="seed",
        )
        if i % 1000 == 0:
            db.session.flush()
    db.session.commit()


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
    tmp = Path(tempfile.mkdtemp(prefix="lethe-bench-"))
    key = lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()  # noqa: E731
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": os.environ.get(
                "LETHE_BENCH_DATABASE_URL", f"sqlite:///{tmp / 'bench.db'}"
            ),
            "KEYSTORE_URL": os.environ.get(
                "LETHE_BENCH_KEYSTORE_URL", f"sqlite:///{tmp / 'keys.db'}"
            ),
            "SECRET_KEY": "bench",
            "KEY_ENCRYPTION_KEY": key(),
            "BLIND_INDEX_KEY": key(),
            "MAIL_BACKEND": "file",
            "MAIL_DIR": str(tmp / "mail"),
        },
        instance_path=str(tmp / "instance"),
    )
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        seed(args.records)
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
