"""Benchmark: the data-subject-rights workload of issue 17, end to end, against Lethe as it is
deployed — a gunicorn server (gunicorn.conf.py: gthread, preload_app) and ``flask worker``
processes — on SQLite and on PostgreSQL. ``make bench-dsr`` runs both.

Not a test: prints figures (``tests/test_benchmarks.py`` runs it at a small size so that it
cannot rot). The workload: members with 3 perk awards each, filed through the API by the
platform's key as verified requests (the platform has already checked who asks):

- **access** = ``POST /api/v1/requests`` (access) → ``GET …/report`` (200): the report
  downloaded;
- **erasure** = ``POST /api/v1/requests`` (erasure) → ``GET …/requests/<id>`` until it holds
  the signed receipt (the worker runs the erasure);

measured as:

- ``start-up``: from launching the server to its first 200 (``GET /``), and to ``/readyz``;
- ``one erasure``: submit → receipt seen by the client, one at a time (median and worst of
  --singles), and, on the server's clock, from the request's ``verified_at`` to its receipt's
  ``issued_at`` (read from the database afterwards, so the client's polling is not in it);
- ``20 access at once`` / ``20 erasures at once``: 20 clients start together, rate = 20 / the
  time until the last is done (median of --rounds rounds), with p50/p99 of each one's time;
- ``500 queued``: 500 submitted by 20 clients as fast as the server takes them, rate = 500 /
  the time until the last report is downloaded or receipt issued; failures are answers other
  than 2xx and dropped connections;
- ``statement`` vs ``hello``: ``POST /api/v1/statements`` next to a hello-world route of the
  same server, 8 clients on kept-alive connections (scripts/bench_api_paths.py's driver);
- ``memory``: the peak, sampled every 50 ms through the run, of the sum over every process
  (server master, its workers, the ``flask worker`` processes) of RSS and of PSS (PSS shares
  each page between the processes that map it: with preload_app the workers share the app's
  pages, which RSS counts once per process).

The rate limiter is off (one client address sends everything), mail goes to files.

    python scripts/bench_dsr.py [--database sqlite,postgresql] [--members 600] [--queued 500]
        [--at-once 20] [--rounds 3] [--singles 10] [--seconds 3]
        [--workers N] [--threads N] [--job-workers N] [--sqlite-workers N]
        [--sqlite-threads N] [--postgres-url URL] [--tree PATH]
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_api_paths as api

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The two set-ups of the table: the embedded default as `make run` serves it, and
# PostgreSQL with gunicorn 4 + 2 workers.
SETUPS = {
    "sqlite": {"workers": 1, "threads": 16, "job_workers": 1},
    "postgresql": {"workers": 4, "threads": 8, "job_workers": 2},
}
APP = "bench_api_paths:server_app()"


# ---------------------------------------------------------------- processes and memory


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _tree(pids: list[int]) -> list[int]:
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(_children(pid))
    return out


def _kib(pid: int, path: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Memory:
    """Peak RSS and PSS, summed over the process trees of ``pids``, sampled in a thread."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peak_rss = self.peak_pss = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        tree = _tree(self.pids)
        rss = sum(_kib(p, "status", "VmRSS:") for p in tree)
        pss = sum(_kib(p, "smaps_rollup", "Pss:") for p in tree)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.processes = max(self.processes, len(tree))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- set-up


def _create_postgres_databases(admin_url: str, names: list[str]) -> list[str]:
    """Make (or reuse) the bench's own databases next to ``admin_url``'s; returns their URLs."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        have = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
        for name in names:
            if name not in have:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    base = admin_url.rsplit("/", 1)[0]
    return [f"{base}/{name}" for name in names]


SEED = """
import os, sys
from app import create_app
from rights.holdings import records
from rights.ledger import apikeys
from flask_migrate import upgrade
from sqlalchemy import text
from storage.db import db
n = int(sys.argv[1])
app = create_app(None, instance_path=os.environ['LETHE_BENCH_INSTANCE'])
with app.app_context():
    # The schema as a deployment has it (migrations, so that /readyz finds them current).
    db.drop_all()
    for engine in db.engines.values():
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()
    for i in range(n):
        member = f"m-{i:06d}"
        records.upsert_member({"member_id": member, "email": f"{member}@example.org",
                               "name": f"Member {i}"}, source="bench", actor="seed")
        for j in range(3):
            records.upsert_award({"award_id": f"{member}-aw-{j}", "member_id": member,
                                  "perk_id": f"p-{j}", "brand_id": "b-nova",
                                  "status": "received"}, source="bench", actor="seed")
        if i % 100 == 99:
            db.session.commit()
    _, key = apikeys.create("bench", sorted(apikeys.SCOPES), actor="bench")
    db.session.commit()
print(key)
"""


def _seed(tree: Path, env: dict, members: int) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", SEED, str(members)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"set-up failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


# The server's own clock: from the request's verification to its receipt's issue, read from
# the database (no client polling in between).
SERVER_TIMES = """
import json, os, sys
from sqlalchemy import select
from app import create_app
from storage.db import db
from storage.models import Receipt, RightsRequest
app = create_app(None, instance_path=os.environ['LETHE_BENCH_INSTANCE'])
ids = json.loads(sys.stdin.read())
with app.app_context():
    rows = db.session.execute(
        select(RightsRequest.verified_at, Receipt.issued_at)
        .join(Receipt, Receipt.request_id == RightsRequest.id)
        .where(RightsRequest.id.in_(ids))
    ).all()
print(json.dumps([(issued - verified).total_seconds() for verified, issued in rows]))
"""


def _server_times(tree: Path, env: dict, ids: list[str]) -> list[float]:
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", SERVER_TIMES],
        cwd=tree,
        env=env,
        input=json.dumps(ids),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"reading the server's times failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _start(tree: Path, env: dict, port: int, shape: dict, log) -> list[subprocess.Popen]:
    """The server (gunicorn, with the repository's gunicorn.conf.py) and the job workers:
    forked by gunicorn (LETHE_JOB_WORKERS), or ``flask worker`` processes of their own."""
    bin_dir = Path(sys.executable).parent
    server_env = {
        **env,
        "LETHE_BIND": f"127.0.0.1:{port}",
        "LETHE_WORKERS": str(shape["workers"]),
        "LETHE_THREADS": str(shape["threads"]),
        "LETHE_JOB_WORKERS": "0" if shape["separate"] else str(shape["job_workers"]),
    }
    procs = [
        subprocess.Popen(  # noqa: S603
            [str(bin_dir / "gunicorn"), "--config", str(tree / "gunicorn.conf.py"), APP],
            cwd=tree,
            env=server_env,
            stdout=log,
            stderr=log,
        )
    ]
    for _ in range(shape["job_workers"] if shape["separate"] else 0):
        procs.append(
            subprocess.Popen(  # noqa: S603
                [str(bin_dir / "flask"), "--app", APP, "worker"],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _first_200(port: int, path: str, procs, started: float, limit: float = 60) -> float:
    while time.monotonic() - started < limit:
        if any(p.poll() is not None for p in procs):
            sys.exit("a Lethe process exited at start (see its log)")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.005)
    sys.exit(f"no 200 from {path} within {limit} s")


# ---------------------------------------------------------------- the client


class Client:
    """One kept-alive connection with the platform's key."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, url, body=data, headers=self.headers)
            resp = self.conn.getresponse()
            payload = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
            return resp.status, payload
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""

    def file(self, kind: str, member: str) -> str | None:
        status, body = self.call(
            "POST", "/api/v1/requests", {"type": kind, "member_id": member, "verified": True}
        )
        return json.loads(body)["id"] if status == 201 else None

    def receipt(self, request_id: str) -> bool:
        status, body = self.call("GET", f"/api/v1/requests/{request_id}")
        if status != 200:
            return False
        result = json.loads(body).get("result") or {}
        return bool(result.get("receipt"))

    def close(self) -> None:
        self.conn.close()


def _access(client: Client, member: str) -> bool:
    request_id = client.file("access", member)
    if request_id is None:
        return False
    status, _ = client.call("GET", f"/api/v1/requests/{request_id}/report")
    return status == 200


def _wait_receipts(port: int, key: str, ids: set[str], limit: float) -> dict[str, float]:
    """When each of ``ids`` held its receipt (monotonic), watched through the list of completed
    erasures (newest first): one poller, whatever the number waited for."""
    client = Client(port, key)
    seen: dict[str, float] = {}
    deadline = time.monotonic() + limit
    while len(seen) < len(ids) and time.monotonic() < deadline:
        page = 1
        while True:
            status, body = client.call(
                "GET",
                f"/api/v1/requests?type=erasure&status=completed&per_page=200&page={page}",
            )
            if status != 200:
                break
            doc = json.loads(body)
            now = time.monotonic()
            for item in doc["items"]:
                if item["id"] in ids and item["id"] not in seen:
                    seen[item["id"]] = now
            if page * 200 >= doc["total"] or len(seen) == len(ids):
                break
            page += 1
        time.sleep(0.005 if len(ids) <= 50 else 0.1)
    # Completed in the list must mean a receipt in the request: checked for every one.
    missing = [i for i in seen if not client.receipt(i)]
    client.close()
    for request_id in missing:
        seen.pop(request_id)
    return seen


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Members:
    """Hands out members: access may ask again about the same ones, erasure needs new ones."""

    def __init__(self, count: int, access_pool: int):
        self.access = [f"m-{i:06d}" for i in range(access_pool)]
        self._erasable = iter(f"m-{i:06d}" for i in range(access_pool, count))
        self._lock = threading.Lock()

    def to_erase(self) -> str:
        with self._lock:
            try:
                return next(self._erasable)
            except StopIteration:
                sys.exit("not enough members: raise --members")


def _at_once(port, key, members: Members, kind: str, n: int) -> tuple[float, list[float], int]:
    """``n`` clients start together: (seconds until the last is done, each one's seconds,
    failures)."""
    clients = [Client(port, key) for _ in range(n)]
    for c in clients:  # connected before the clock starts
        c.call("GET", "/healthz")
    barrier = threading.Barrier(n + 1)
    times: list[float] = []
    filed: dict[str, float] = {}
    failures = 0
    lock = threading.Lock()

    def run(i: int, client: Client) -> None:
        nonlocal failures
        member = members.access[i % len(members.access)] if kind == "access" else members.to_erase()
        barrier.wait()
        t0 = time.monotonic()
        if kind == "access":
            ok = _access(client, member)
            with lock:
                times.append(time.monotonic() - t0)
                failures += not ok
        else:
            request_id = client.file("erasure", member)
            with lock:
                if request_id is None:
                    failures += 1
                else:
                    filed[request_id] = t0

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.monotonic()
    for t in threads:
        t.join()
    end = time.monotonic()
    if kind == "erasure":
        done = _wait_receipts(port, key, set(filed), limit=120)
        failures += len(filed) - len(done)
        times = [done[i] - filed[i] for i in done]
        end = max(done.values(), default=end)
    for c in clients:
        c.close()
    return end - start, times, failures


def _queued(port, key, members: Members, kind: str, n: int, clients: int = 20):
    """``n`` requests sent by ``clients`` threads as fast as they are taken: (seconds until the
    last is done, failures)."""
    todo = list(range(n))
    lock = threading.Lock()
    filed: list[str] = []
    failures = 0

    def run() -> None:
        nonlocal failures
        client = Client(port, key)
        while True:
            with lock:
                if not todo:
                    break
                i = todo.pop()
            if kind == "access":
                ok = _access(client, members.access[i % len(members.access)])
            else:
                request_id = client.file("erasure", members.to_erase())
                ok = request_id is not None
                if ok:
                    with lock:
                        filed.append(request_id)
            if not ok:
                with lock:
                    failures += 1
        client.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic()
    if kind == "erasure":
        done = _wait_receipts(port, key, set(filed), limit=600)
        failures += len(filed) - len(done)
        end = max(done.values(), default=end)
    return end - start, failures


def _singles(port, key, members: Members, n: int) -> tuple[list[tuple[float, float]], list[str]]:
    """Erasures one at a time, polled every 2 ms on one connection: for each, (submit →
    receipt, filing answered → receipt), and the requests' ids. The platform files them as
    verified, so the request is verified before its filing is answered."""
    client = Client(port, key)
    out, ids = [], []
    for _ in range(n):
        t0 = time.monotonic()
        request_id = client.file("erasure", members.to_erase())
        if request_id is None:
            continue
        ids.append(request_id)
        verified = time.monotonic()
        while not client.receipt(request_id):
            if time.monotonic() - t0 > 60:
                break
            time.sleep(0.002)
        else:
            done = time.monotonic()
            out.append((done - t0, done - verified))
    client.close()
    return out, ids


# ---------------------------------------------------------------- one set-up


def run_setup(args, database: str) -> dict:
    shape = dict(SETUPS[database], separate=args.separate_job_workers)
    for field in ("workers", "threads", "job_workers"):
        if getattr(args, field) is not None:
            shape[field] = getattr(args, field)
    tmp = Path(tempfile.mkdtemp(prefix=f"lethe-bench-dsr-{database}-"))
    settings_args = argparse.Namespace(database_url=None, keystore_url=None)
    if database == "postgresql":
        url, keys = _create_postgres_databases(
            args.postgres_url, ["lethe_bench_dsr", "lethe_bench_dsr_keys"]
        )
        settings_args = argparse.Namespace(database_url=url, keystore_url=keys)
    settings = api._settings(settings_args, tmp)
    env = api._environment(settings, args.tree, tmp / "instance")
    t0 = time.monotonic()
    key = _seed(args.tree, env, args.members)
    seeded = time.monotonic() - t0
    members = Members(args.members, access_pool=min(100, args.members // 4))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    out: dict = {"shape": shape, "seeded_s": seeded, "at_once": args.at_once}
    log_path = tmp / "lethe.log"
    with open(log_path, "w") as log:
        started = time.monotonic()
        procs = _start(args.tree, env, port, shape, log)
        try:
            out["startup_s"] = _first_200(port, "/", procs, started)
            out["ready_s"] = _first_200(port, "/readyz", procs, started)
            with Memory([p.pid for p in procs]) as memory:
                out["single_s"], single_ids = _singles(port, key, members, args.singles)
                out["single_server_s"] = _server_times(args.tree, env, single_ids)
                for kind in ("access", "erasure") if not args.singles_only else ():
                    rounds = [
                        _at_once(port, key, members, kind, args.at_once) for _ in range(args.rounds)
                    ]
                    out[f"{kind}_at_once"] = {
                        "rate": statistics.median(args.at_once / r[0] for r in rounds),
                        "times": [t for r in rounds for t in r[1]],
                        "failures": sum(r[2] for r in rounds),
                    }
                for kind in ("access", "erasure") if not args.singles_only else ():
                    seconds, failures = _queued(port, key, members, kind, args.queued)
                    out[f"{kind}_queued"] = {
                        "rate": args.queued / seconds,
                        "failures": failures,
                    }
                for path in ("hello", "statement") if not args.singles_only else ():
                    count, statuses, seconds = api._drive(
                        port, _path_maker(path, key), 8, args.seconds
                    )
                    wrong = {k: v for k, v in statuses.items() if k != api.EXPECTED[path]}
                    out[path] = {"rate": count / seconds, "unexpected": wrong}
                memory.sample()
            out["memory"] = {
                "rss_mib": memory.peak_rss / 1024,
                "pss_mib": memory.peak_pss / 1024,
                "processes": memory.processes,
            }
        finally:
            _stop(procs)
    if database == "sqlite":
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        out["log"] = str(log_path)
    return out


def _path_maker(path: str, key: str):
    if path == "statement":
        sys.path.insert(0, str(ROOT))
    return api._request_maker(path, key)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(database: str, out: dict) -> None:
    shape = out["shape"]
    print(
        f"\n{database}: gunicorn {shape['workers']} x {shape['threads']} threads"
        f" + {shape['job_workers']} job worker(s)"
        f" ({'flask worker processes' if shape['separate'] else 'forked by gunicorn'};"
        f" seeded in {out['seeded_s']:.1f} s)"
    )
    rows = [
        ("start-up to first 200 (GET /)", f"{out['startup_s']:.2f} s"),
        ("start-up to /readyz 200", f"{out['ready_s']:.2f} s"),
    ]
    single = out["single_s"]
    for label, times in (
        ("one erasure: submit -> receipt", [s[0] for s in single]),
        ("one erasure: filing answered -> receipt", [s[1] for s in single]),
        ("one erasure: verified -> receipt issued (server)", out["single_server_s"]),
    ):
        if times:
            rows.append(
                (
                    label,
                    f"median {_ms(statistics.median(times))}, worst {_ms(max(times))}"
                    f" ({len(times)} runs)",
                )
            )
    for kind in ("access", "erasure") if "access_at_once" in out else ():
        r = out[f"{kind}_at_once"]
        times = r["times"] or [0.0]
        rows.append(
            (
                f"{out['at_once']} {kind} at once",
                f"{r['rate']:.1f} /s  (each: p50 {_ms(_percentile(times, 50))},"
                f" p99 {_ms(_percentile(times, 99))}; failures {r['failures']})",
            )
        )
    for kind in ("access", "erasure") if "access_queued" in out else ():
        r = out[f"{kind}_queued"]
        rows.append((f"queued {kind}", f"{r['rate']:.1f} /s  (failures {r['failures']})"))
    if "hello" in out:
        hello, statement = out["hello"], out["statement"]
        rows.append(
            (
                "statement vs hello-world",
                f"{statement['rate']:.0f} vs {hello['rate']:.0f} /s"
                f" ({100 * statement['rate'] / max(hello['rate'], 1e-9):.0f} %)"
                + (f"  unexpected {statement['unexpected']}" if statement["unexpected"] else ""),
            )
        )
    mem = out["memory"]
    rows.append(
        (
            f"memory, all {mem['processes']} processes (peak)",
            f"PSS {mem['pss_mib']:.0f} MiB, RSS {mem['rss_mib']:.0f} MiB",
        )
    )
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite,postgresql")
    parser.add_argument("--members", type=int, default=700)
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--at-once", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--job-workers", type=int, default=None)
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=SETUPS["sqlite"]["workers"],
        help="the embedded default's gunicorn workers (make run's RUN_WORKERS)",
    )
    parser.add_argument(
        "--sqlite-threads",
        type=int,
        default=SETUPS["sqlite"]["threads"],
        help="the embedded default's threads per worker (make run's RUN_THREADS)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "LETHE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database on the server where the bench makes its own two (PostgreSQL set-up)",
    )
    parser.add_argument(
        "--separate-job-workers",
        action="store_true",
        help="job workers as `flask worker` processes, not forked by gunicorn",
    )
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument(
        "--singles-only", action="store_true", help="start-up, one erasure at a time, memory"
    )
    args = parser.parse_args()
    args.tree = args.tree.resolve()
    SETUPS["sqlite"].update(workers=args.sqlite_workers, threads=args.sqlite_threads)
    sys.path.insert(0, str(args.tree))
    if args.singles_only:
        args.rounds = args.queued = 0
    needed = args.singles + args.rounds * args.at_once + args.queued + 1
    if args.members < min(100, args.members // 4) + needed:
        sys.exit(f"--members must be at least {needed + min(100, args.members // 4)}")
    for database in [d for d in args.database.split(",") if d]:
        if database not in SETUPS:
            sys.exit(f"unknown database {database}: sqlite or postgresql")
        report(database, run_setup(args, database))


if __name__ == "__main__":
    main()
