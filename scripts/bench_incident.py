"""Benchmark: an incident's bulk correction — N faulty awards (with a disclosure-list entry
each) found by the filter and corrected in keyset batches, with history rows and audit.

Not a test: prints figures. Throwaway SQLite (or LETHE_BENCH_DATABASE_URL /
LETHE_BENCH_KEYSTORE_URL for PostgreSQL); N awards spread over N/100 members.

    python scripts/bench_incident.py [--awards 100000]
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from rights.contest import incidents
from rights.holdings import records  # noqa: E402
from storage import vault  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import Disclosure, Member, Perk, PerkAward, RecordHistory, Subject  # noqa: E402


def seed(n: int) -> None:
    now = utcnow()
    records.upsert_member(
        {"member_id": "m-seed", "email": "seed@example.org", "name": "Seed"},
        source="bench",
        actor="seed",
    )
    records.upsert_award(
        {
            "award_id": "aw-seed",
            "member_id": "m-seed",
            "perk_id": "p-nova-x1",
            "perk_item": "Nova X1 phone",
            "brand_id": "b-nova",
            "brand_name": "Nova Mobile",
            "status": "offered",
        },
        source="bench",
        actor="seed",
    )
    perk_id = db.session.execute(
        select(Perk.id).where(Perk.external_id == "p-nova-x1")
    ).scalar_one()
    subjects = [
        Subject(ref=f"sub_b{i:06d}", email_index=vault.blind_index(f"b{i}@x.org"))
        for i in range(max(1, n // 100))
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
                "external_id": f"m-b{i}",
                "email_enc": vault.encrypt(s.id, "members.email_enc", f"b{i}@x.org"),
                "status": "active",
                "joined_at": now,
                "source": "bench",
                "actor": "seed",
                "recorded_at": now,
            }
            for i, s in enumerate(subjects)
        ],
    )
    for start in range(0, n, 10_000):
        db.session.execute(
            insert(PerkAward),
            [
                {
                    "external_id": f"aw-b{i}",
                    "subject_id": subjects[i % len(subjects)].id,
                    "perk_id": perk_id,
                    "status": "received",
                    "status_at": now,
                    "source": "fulfilment-sync",
                    "actor": "sync-job-0817",
                    "recorded_at": now,
                }
                for i in range(start, min(n, start + 10_000))
            ],
        )
    rows = db.session.execute(
        select(PerkAward.id, PerkAward.subject_id).where(PerkAward.status == "received")
    ).all()
    for start in range(0, len(rows), 10_000):
        chunk = rows[start : start + 10_000]
        db.session.execute(
            insert(RecordHistory),
            [
                {
                    "subject_id": s,
                    "record_type": "perk_awards",
                    "record_id": a,
                    "action": "updated",
                    "changed_at": now,
                    "source": "fulfilment-sync",
                    "actor": "sync-job-0817",
                }
                for a, s in chunk
            ],
        )
        db.session.execute(
            insert(Disclosure),
            [
                {
                    "external_id": f"dl-b{a}",
                    "subject_id": s,
                    "award_id": a,
                    "status": "disclosed",
                    "listed_at": now,
                    "source": "bench",
                    "actor": "seed",
                    "recorded_at": now,
                }
                for a, s in chunk
            ],
        )
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--awards", type=int, default=100_000)
    args = parser.parse_args()
    app = make_app()
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        seed(args.awards)
        print(f"seeded {args.awards} faulty awards in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        incident = incidents.open_incident(
            title="bench",
            root_cause="",
            record_filter={"perk": "p-nova-x1", "source": "fulfilment-sync"},
            actor="bench",
            request_id=None,
        )
        db.session.commit()
        print(f"open (filter + count)            {time.perf_counter() - start:8.2f} s")
        incident_id = incident.id
        tracemalloc.start()
        start = time.perf_counter()
        batches = 0
        while incidents.correct_batch(incidents.get(incident_id), actor="bench"):
            db.session.commit()
            db.session.expunge_all()
            batches += 1
        db.session.commit()
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"corrected {args.awards} awards + {args.awards} list entries in {batches} batches: "
            f"{elapsed:.2f} s, {args.awards / elapsed:,.0f} awards/s, "
            f"peak Python memory {peak / 1e6:.1f} MB"
        )
        start = time.perf_counter()
        incident = incidents.get(incident_id)
        incident.corrected_through = 0
        again = incidents.correct_batch(incident, actor="bench")
        db.session.commit()
        print(f"second run: {again} corrected in {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
