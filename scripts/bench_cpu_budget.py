"""Benchmark: the CPU budget of the four paths of issue 17, measured in one process, and the
profile to show where it goes.

Not a test: prints figures. Runs the app in-process (Flask's test client: no sockets, no
server, so that what is measured is Lethe's own work) on SQLite files in a temporary folder,
or on PostgreSQL with LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL (their tables are
dropped and made again). Members have 3 perk awards each. Each path runs --n times after a
warm-up; for each, CPU milliseconds (``time.process_time``) and wall milliseconds per call,
and the number of SQL statements each call sends; ``--profile`` adds cProfile's heaviest
functions (by their own time) per path.

- ``access``: POST /api/v1/requests (a verified access request) + GET …/report;
- ``erasure``: POST /api/v1/requests (a verified erasure) + the worker's round that runs it
  and issues the receipt (``rights.jobs.run_due``) + GET …/requests/<id> (the receipt);
- ``statement``: POST /api/v1/statements with the record key of an erased member;
- ``ingest``: POST /api/v1/perk-awards, a new award each time.

    python scripts/bench_cpu_budget.py [--n 50] [--profile] [--paths access,erasure,...]
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchdata import make_app  # noqa: E402
from sqlalchemy import event  # noqa: E402

from rights import jobs  # noqa: E402
from rights.holdings import records  # noqa: E402
from rights.ledger import apikeys  # noqa: E402
from storage.db import db  # noqa: E402

PATHS = ("access", "erasure", "statement", "ingest")


def _seed(members: int) -> str:
    db.drop_all()
    db.create_all()
    for i in range(members):
        member = f"m-{i:06d}"
        records.upsert_member(
            {"member_id": member, "email": f"{member}@example.org", "name": f"Member {i}"},
            source="bench",
            actor="seed",
        )
        for j in range(3):
            records.upsert_award(
                {
                    "award_id": f"{member}-aw-{j}",
                    "member_id": member,
                    "perk_id": f"p-{j}",
                    "brand_id": "b-nova",
                    "status": "received",
                },
                source="bench",
                actor="seed",
            )
    _, key = apikeys.create("bench", sorted(apikeys.SCOPES), actor="bench")
    db.session.commit()
    return key


class Paths:
    def __init__(self, app, key: str, members: int):
        self.app = app
        self.client = app.test_client()
        self.auth = {"Authorization": f"Bearer {key}"}
        self.members = iter(f"m-{i:06d}" for i in range(1, members))
        self.record_keys: list[str] = []
        self.awards = 0

    def _file(self, kind: str, member: str) -> dict:
        resp = self.client.post(
            "/api/v1/requests",
            json={"type": kind, "member_id": member, "verified": True},
            headers=self.auth,
        )
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def access(self) -> None:
        filed = self._file("access", "m-000000")
        resp = self.client.get(f"/api/v1/requests/{filed['id']}/report", headers=self.auth)
        assert resp.status_code == 200, resp.status_code
        assert resp.get_data().endswith(b"]}")  # the streamed body, produced to its end

    def erasure(self) -> None:
        filed = self._file("erasure", next(self.members))
        with self.app.app_context():
            jobs.run_due(roles=("jobs",))
        resp = self.client.get(f"/api/v1/requests/{filed['id']}", headers=self.auth)
        body = resp.get_json()
        assert body["status"] == "completed", body["status"]
        self.record_keys.append(body["result"]["record_key"])

    def statement(self) -> None:
        key = self.record_keys[len(self.record_keys) // 2]
        resp = self.client.post("/api/v1/statements", json={"record_key": key})
        assert resp.status_code == 200, resp.get_json()

    def ingest(self) -> None:
        self.awards += 1
        resp = self.client.post(
            "/api/v1/perk-awards",
            json={
                "award_id": f"aw-new-{self.awards}",
                "member_id": "m-000000",
                "perk_id": "p-1",
                "brand_id": "b-nova",
                "status": "offered",
                "source": "bench",
                "actor": "bench",
            },
            headers=self.auth,
        )
        assert resp.status_code == 201, resp.get_json()


def main() -> None:
    import logging

    logging.getLogger("lethe.access").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--sql", action="store_true", help="print the SQL of one call per path")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    if "statement" in paths and "erasure" not in paths:
        paths.insert(0, "erasure")  # a statement needs an erased member's record key
    members = 2 * args.n + 10
    app = make_app()
    app.config["RATELIMIT_ENABLED"] = False
    with app.app_context():
        key = _seed(members)
        statements = {"n": 0, "log": None}

        def count(conn, cursor, statement, *_a, **_k):
            statements["n"] += 1
            if statements["log"] is not None:
                statements["log"].append(" ".join(statement.split())[:150])

        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", count)
    runner = Paths(app, key, members)
    print(f"{app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, n={args.n}")
    print(f"  {'path':<10} {'CPU ms':>8} {'wall ms':>8} {'SQL':>5}")
    for path in paths:
        call = getattr(runner, path)
        for _ in range(3):  # warm-up: caches, first compiles
            call()
        if args.sql:
            statements["log"] = []
            call()
            print(f"  SQL of one {path}:")
            for line in statements["log"]:
                print(f"    {line}")
            statements["log"] = None
        statements["n"] = 0
        profile = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        for _ in range(args.n):
            call()
        if profile:
            profile.disable()
        cpu = (time.process_time() - cpu0) / args.n * 1000
        wall = (time.perf_counter() - wall0) / args.n * 1000
        print(f"  {path:<10} {cpu:8.2f} {wall:8.2f} {statements['n'] / args.n:5.0f}")
        if profile:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            print("\n".join(out.getvalue().splitlines()[6:]))
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            # Lethe's own functions only (BENCH_FILTER: a regular expression on the file name).
            own = os.environ.get("BENCH_FILTER", r"/(rights|web|storage)/")
            stats.sort_stats("cumulative").print_stats(own, args.top)
            print("\n".join(out.getvalue().splitlines()[6:]))


if __name__ == "__main__":
    main()
