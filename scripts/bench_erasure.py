"""Benchmark: erasing one member with N records, against a raw SQL delete of the same rows.

Not a test: prints figures. One run, one database: two members seeded alike; the first is
erased by Lethe's erasure (every step: tombstones, batched deletes of the 'delete' categories
and their history, restriction of the retained categories, the signed receipt, the
crypto-shred, completion); the second gets the same row changes as bare SQL statements in one
transaction (DELETE ... WHERE subject_id = ?, UPDATE ... SET restricted_at ...).

    python scripts/bench_erasure.py [--records 10000]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app, seed, seed_promotions  # noqa: E402
from sqlalchemy import text  # noqa: E402

from rights.erasure import erasure
from rights.lifecycle import requests  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.datamap import CATEGORIES  # noqa: E402
from storage.db import db  # noqa: E402


def raw_sql(subject_id: str) -> int:
    """The same row changes as bare SQL, one transaction. Returns rows touched."""
    touched = 0
    now = utcnow()
    with db.engines[None].begin() as conn:
        for cat in erasure._deletion_order():
            if cat.has_provenance:
                touched += conn.execute(
                    text(
                        "DELETE FROM record_history WHERE record_type = :t AND record_id IN "
                        f"(SELECT id FROM {cat.table} WHERE subject_id = :s)"
                    ),
                    {"t": cat.table, "s": subject_id},
                ).rowcount
            touched += conn.execute(
                text(f"DELETE FROM {cat.table} WHERE subject_id = :s"), {"s": subject_id}
            ).rowcount
        for cat in (c for c in CATEGORIES if c.erasure.action == "retain"):
            touched += conn.execute(
                text(
                    f"UPDATE {cat.table} SET restricted_at = :now, retained_under = :x, "
                    "retain_until = :until WHERE subject_id = :s"
                ),
                {
                    "now": now,
                    "x": cat.erasure.exception,
                    "until": erasure.retain_until(cat, now),
                    "s": subject_id,
                },
            ).rowcount
    with db.engines["keystore"].begin() as conn:
        touched += conn.execute(
            text("DELETE FROM subject_keys WHERE subject_id = :s"), {"s": subject_id}
        ).rowcount
    return touched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--delete-heavy",
        action="store_true",
        help="all records are promotions (erased, not retained)",
    )
    args = parser.parse_args()
    app = make_app()
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        if args.delete_heavy:
            lethe_subject = seed_promotions(args.records, "m-lethe", "lethe@example.org")
            raw_subject = seed_promotions(args.records, "m-raw", "raw@example.org")
        else:
            lethe_subject = seed(args.records, "m-lethe", "lethe@example.org")
            raw_subject = seed(args.records, "m-raw", "raw@example.org")
        db.session.commit()
        print(
            f"seeded 2 x {args.records} records in {time.perf_counter() - start:.1f} s "
            f"[{db.engines[None].dialect.name}]"
        )
        req = requests.file(
            type="erasure", member_id="m-lethe", channel="api", verified=True, actor="bench"
        )
        db.session.commit()
        rid = req.id

    with app.app_context():
        start = time.perf_counter()
        receipt = erasure.run(rid)
        lethe_s = time.perf_counter() - start
        counts = db.session.get(erasure.ErasureRun, rid).counts
        deleted = sum(
            v
            for k, v in counts.items()
            if any(c.key == k and c.erasure.action == "delete" for c in CATEGORIES)
        )
        kept = sum(
            v
            for k, v in counts.items()
            if any(c.key == k and c.erasure.action == "retain" for c in CATEGORIES)
        )
        print(
            f"Lethe erasure        {lethe_s:7.2f} s   receipt {receipt.id[:8]}, "
            f"{deleted} rows deleted (+ their history), {kept} kept restricted, "
            "key destroyed"
        )
    with app.app_context():
        start = time.perf_counter()
        touched = raw_sql(raw_subject)
        raw_s = time.perf_counter() - start
        print(
            f"raw SQL              {raw_s:7.2f} s   {touched} rows deleted or updated, "
            "no receipt, no tombstone, no audit"
        )
    print(f"ratio                {lethe_s / raw_s:7.1f} x")
    assert lethe_subject != raw_subject


if __name__ == "__main__":
    main()
