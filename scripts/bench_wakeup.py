"""Benchmark: how long a verified erasure waits for the worker — from the commit of a request
filed as verified to its signed receipt — with ``flask worker`` running as a real process.

Not a test: prints figures. Each run seeds a member, leaves the worker idle for ``--idle``
seconds (so it is deep in its wait, as between requests in real life), then files an erasure
with ``verified=True`` in this process, commits, and times until the receipt row is there. A
warm-up erasure goes first, unmeasured. SQLite files in a temporary folder, or PostgreSQL with
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL (see benchdata.py): throwaway databases,
emptied first.

    python scripts/bench_wakeup.py [--runs 10] [--idle 3] [--interval 2] [--worker-root DIR]

``--worker-root`` runs the worker from another checkout (say ``git archive HEAD`` of an older
commit, unpacked), to measure before and after a change on the same machine and data.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app, seed  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from rights.lifecycle import requests  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import OutboxMessage, Receipt  # noqa: E402


def start_worker(app, root: Path, interval: float, log_path: Path) -> subprocess.Popen:
    """``flask worker`` on the bench app's databases, keys and instance folder."""
    config = {
        k: v
        for k, v in app.config.items()
        if k.isupper() and isinstance(v, (str, int, float, bool))
    }
    factory = f"app:create_app({config!r}, instance_path={app.instance_path!r})"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "flask", "--app", factory, "worker", "--interval", str(interval)],
        cwd=root,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LETHE_")},
            "PYTHONPATH": str(root),
            "FLASK_SKIP_DOTENV": "1",
        },
        stdout=log,
        stderr=log,
    )


def erase_one(app, records: int, idle: float, worker: subprocess.Popen) -> tuple[float, float]:
    """Seed a member, wait ``idle`` s, file a verified erasure. Returns seconds from its
    commit to the worker taking the job (its claim committed), and to the signed receipt."""
    member = f"m-{uuid.uuid4().hex[:12]}"
    with app.app_context():
        seed(records, member, f"{member}@example.org")
        db.session.commit()
    time.sleep(idle)
    with app.app_context():
        rid = requests.file(
            type="erasure", member_id=member, channel="api", verified=True, actor="bench"
        ).id
        db.session.commit()
        committed = time.perf_counter()
        taken = None
        while time.perf_counter() < committed + 60:
            db.session.rollback()  # a fresh snapshot each look
            if taken is None and db.session.scalar(
                select(OutboxMessage.attempts).where(
                    OutboxMessage.request_id == rid, OutboxMessage.kind == "job"
                )
            ):
                taken = time.perf_counter() - committed
            if db.session.scalar(select(Receipt.id).where(Receipt.request_id == rid)):
                done = time.perf_counter() - committed
                return (taken if taken is not None else done), done
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            time.sleep(0.002)
    raise SystemExit("no receipt within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--records", type=int, default=10, help="records per member")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before each")
    parser.add_argument("--interval", type=float, default=2.0, help="the worker's --interval")
    parser.add_argument("--worker-root", type=Path, default=ROOT, help="checkout to run from")
    args = parser.parse_args()
    app = make_app()
    with app.app_context():
        # A throwaway PostgreSQL database starts empty (as bench_shred.py does): this run's
        # keys are new, and a key store made with the last run's would not open.
        for bind in db.engines.values():
            if bind.dialect.name == "postgresql":
                with bind.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
        db.create_all()
        engine = db.engines[None].dialect.name
    log_path = Path(app.instance_path).parent / "worker.log"
    worker = start_worker(app, args.worker_root.resolve(), args.interval, log_path)
    try:
        erase_one(app, args.records, 0.0, worker)  # warm-up: the worker is up and has keys
        runs = [erase_one(app, args.records, args.idle, worker) for _ in range(args.runs)]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    root = "this checkout" if args.worker_root.resolve() == ROOT else str(args.worker_root)
    print(
        f"[{engine}] worker from {root}, --interval {args.interval:g}, idle {args.idle:g} s "
        f"before each, {args.records} records, {len(runs)} runs (worker exited "
        f"{worker.returncode}):"
    )
    for label, values in (("job taken", [t for t, _ in runs]), ("receipt", [d for _, d in runs])):
        ms = sorted(v * 1000 for v in values)
        print(
            f"  verified -> {label:9}  median {statistics.median(ms):6.0f} ms   "
            f"min {ms[0]:6.0f}   max {ms[-1]:6.0f}"
        )


if __name__ == "__main__":
    main()
