"""Re-wrap throughput of a shred: N subject keys under one epoch, then `flask keys shred`'s
work (storage.shred.shred, force=True) timed end to end — every key read, unwrapped under the
old epoch's key, wrapped under the new one's and written back in committed batches, then the
old epoch key destroyed. Each key is checked afterwards (a sample of 1,000 unwrapped again and
compared).

    python scripts/bench_shred.py --keys 1000000 --backend file
    python scripts/bench_shred.py --keys 1000000 --backend pkcs11   # a throwaway SoftHSM2 token

PostgreSQL: set LETHE_BENCH_DATABASE_URL and LETHE_BENCH_KEYSTORE_URL (empty databases; the
schema is created). Without them, SQLite files in a temporary folder.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from scripts.benchdata import make_app  # noqa: E402
from storage import epochs, shred  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import KeyEpoch, SubjectKey  # noqa: E402

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def _token() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="lethe-bench-hsm-"))
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(  # noqa: S603
        [shutil.which("softhsm2-util") or "softhsm2-util", "--init-token", "--free"]
        + ["--label", "bench", "--pin", "1234", "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    return {
        "EPOCH_KEY_BACKEND": "pkcs11",
        "PKCS11_MODULE": SOFTHSM,
        "PKCS11_TOKEN_LABEL": "bench",
        "PKCS11_PIN": "1234",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--backend", choices=["file", "pkcs11"], default="file")
    args = parser.parse_args()

    app = make_app()
    if args.backend == "pkcs11":
        app.config.update(_token())
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "postgresql":
                with engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
        db.create_all()
        store = epochs.store()
        first = epochs.current()
        db.session.commit()
        first_id = first.id
        print(f"backend {args.backend}, {db.engines['keystore'].dialect.name} key store")
        started = time.perf_counter()
        sample: dict[str, bytes] = {}
        for start in range(0, args.keys, 5_000):
            chunk = [
                (str(uuid.uuid4()), os.urandom(32))
                for _ in range(start, min(start + 5_000, args.keys))
            ]
            wrapped = store.wrap_many(
                first_id, [(k, epochs._aad(sid, first_id)) for sid, k in chunk]
            )
            db.session.execute(
                insert(SubjectKey),
                [
                    {"subject_id": sid, "wrapped_key": w, "epoch_id": first_id}
                    for (sid, _), w in zip(chunk, wrapped, strict=True)
                ],
            )
            db.session.commit()
            if len(sample) < 1_000:
                sample.update(random.sample(chunk, min(10, len(chunk))))
        print(f"seeded {args.keys:,} keys in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        result = shred.shred(batch=args.batch, force=True)
        seconds = time.perf_counter() - started
        assert result["done"] and result["destroyed"] == [first_id], result
        assert result["rewrapped"] == args.keys, result
        current = epochs.current()
        left = db.session.execute(
            select(func.count()).select_from(SubjectKey).where(SubjectKey.epoch_id != current.id)
        ).scalar_one()
        assert left == 0
        rows = (
            db.session.execute(select(SubjectKey).where(SubjectKey.subject_id.in_(list(sample))))
            .scalars()
            .all()
        )
        assert epochs.unwrap_rows(list(rows)) == sample
        assert db.session.get(KeyEpoch, first_id).state == "destroyed"
        assert not store.exists(first_id)
        print(
            f"shred: {args.keys:,} keys re-wrapped in {seconds:.1f} s = "
            f"{args.keys / seconds:,.0f} keys/s (batches of {args.batch:,}); "
            "old epoch key destroyed"
        )
        store.close()


if __name__ == "__main__":
    main()
