"""Benchmark: start-up and memory of Lethe's real processes (issue 17, "Memory and start-up").

Not a test: prints figures. For each set-up it starts the processes as a deployment does,
from launch to the first 200 answer, then reads their memory after a few requests:

- ``import``: ``import app; create_app()`` in a fresh interpreter (no server), and which of
  the heavy packages that only some pages or jobs need (Pillow, segno, apispec, Playwright…)
  that loaded;
- ``gunicorn-1``, ``gunicorn-4``: ``gunicorn -c gunicorn.conf.py 'app:create_app()'`` with
  LETHE_WORKERS=1 or 4 (gthread, preload_app: the app is built once, in the master);
- the embedded default on SQLite, one server and one ``flask worker``: ``gunicorn-1+worker``
  (gunicorn with one worker of 16 threads) and ``flask-run+worker`` (Flask's server);
- ``gunicorn-4+2workers``: the PostgreSQL set-up, gunicorn with 4 workers and two
  ``flask worker`` processes.

Start-up is the time from launching the server to the first 200 on ``GET /healthz`` and on
``GET /`` (the public start page: templates, translations, a session). Memory is summed over
every process of the set-up (gunicorn's master and workers, the ``flask worker`` processes):
RSS from /proc/<pid>/status, and PSS from /proc/<pid>/smaps_rollup, which splits each page
shared after the fork (preload_app) between the processes that share it — RSS counts it
once per process. Memory is read after --requests requests spread over the public pages, the
probes and the metrics, and the dashboard's sign-in page, and after each ``flask worker``
has started and run a round.

Throwaway databases: SQLite files in a temporary folder, or with --database postgresql
--database-url / --keystore-url (default LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL);
``flask db upgrade`` runs on them first, outside the timings (at start Lethe itself runs no
migration). Lethe's own modules are compiled to bytecode once, before any timing, in a folder
of the run's own, as a deployed tree has them (PYTHONDONTWRITEBYTECODE would otherwise make
every start compile them again). Each set-up runs --runs times; the table shows the medians.
--tree runs another checkout (e.g. a ``git archive`` of the commit before a change).

    python scripts/bench_startup.py [--database sqlite|postgresql] [--runs 3]
        [--setups SET-UP,…] [--requests 40] [--tree PATH]
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUPS = (
    "import",
    "gunicorn-1",
    "gunicorn-4",
    "gunicorn-1+worker",
    "flask-run+worker",
    "gunicorn-4+2workers",
)
DEFAULT_SETUPS = {
    "sqlite": "import,gunicorn-4,gunicorn-1+worker,flask-run+worker",
    "postgresql": "import,gunicorn-1,gunicorn-4,gunicorn-4+2workers",
}
# gunicorn's workers and threads, and how many ``flask worker`` processes, per set-up.
SERVERS = {
    "gunicorn-1": ("1", "8", 0),
    "gunicorn-4": ("4", "8", 0),
    "gunicorn-1+worker": ("1", "16", 1),
    "gunicorn-4+2workers": ("4", "8", 2),
    "flask-run+worker": (None, None, 1),
}
# Packages only some pages or jobs need: none of them should load with the app.
HEAVY = ("PIL", "segno", "apispec", "playwright", "openpyxl", "qrcode", "weasyprint", "reportlab")
# What the few requests before the memory reading ask for (each a 200).
PAGES = ("/", "/healthz", "/readyz", "/metrics", "/dashboard/login", "/verify-receipt")
START_TIMEOUT = 30  # seconds: a server that takes this long is broken, not slow


@dataclass
class Run:
    healthz: float | None = None
    start_page: float | None = None
    processes: int = 0
    rss: float = 0.0  # MiB
    pss: float = 0.0  # MiB
    notes: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def _environment(args, tmp: Path) -> dict:
    key = lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()  # noqa: E731
    settings = {
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'lethe.db'}",
        "KEYSTORE_URL": args.keystore_url or f"sqlite:///{tmp / 'keystore.db'}",
        "SECRET_KEY": "bench",
        "KEY_ENCRYPTION_KEY": key(),
        "BLIND_INDEX_KEY": key(),
        "MAIL_BACKEND": "file",
        "MAIL_DIR": str(tmp / "mail"),
        "EPOCH_KEY_DIR": str(tmp / "epoch-keys"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LETHE_", "FLASK_"))}
    env.update({f"LETHE_{k}": v for k, v in settings.items()})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["PYTHONPATH"] = str(args.tree)
    return env


def _app_spec(tmp: Path) -> str:
    """The factory as production names it, with the instance folder moved to ``tmp``."""
    return f"app:create_app(instance_path={str(tmp / 'instance')!r})"


def _set_up(args, tmp: Path, env: dict) -> None:
    """Migrate the databases (and compile Lethe's bytecode) before anything is timed."""
    done = subprocess.run(  # noqa: S603 - our own interpreter's flask
        [_bin("flask"), "--app", _app_spec(tmp), "db", "upgrade"],
        cwd=args.tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"flask db upgrade failed:\n{done.stderr[-3000:]}")
    # Compile every module of the tree, not only those the set-up imported.
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "compileall", "-q", "-x", r"(\.venv|node_modules|tests)", "."],
        cwd=args.tree,
        env=env,
        capture_output=True,
    )


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


# --- the import set-up ---------------------------------------------------------------------

IMPORT_PROBE = """
import json, sys, time
start = time.perf_counter()
import app
imported = time.perf_counter()
app.create_app(instance_path=sys.argv[1])
built = time.perf_counter()
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"import": imported - start, "total": built - start, "modules": len(sys.modules),
                  "heavy": heavy}))
"""


def _import_run(args, tmp: Path, env: dict) -> dict:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", IMPORT_PROBE, str(tmp / "instance"), ",".join(HEAVY)],
        cwd=args.tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"create_app() failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- servers -------------------------------------------------------------------------------


def _launch(setup: str, args, tmp: Path, env: dict, port: int, logs: Path) -> list:
    """Start the set-up's processes; the server first. Returns the Popen objects."""
    spec = _app_spec(tmp)
    procs = []

    def start(name, cmd, extra=None):
        log = (logs / f"{name}-{len(procs)}.log").open("w")
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter's tools
                cmd,
                cwd=args.tree,
                env={**env, **(extra or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    workers, threads, outbox_workers = SERVERS[setup]
    if workers:
        start(
            "gunicorn",
            [_bin("gunicorn"), "-c", "gunicorn.conf.py", spec],
            {"LETHE_BIND": f"127.0.0.1:{port}", "LETHE_WORKERS": workers, "LETHE_THREADS": threads},
        )
    else:
        start("flask-run", [_bin("flask"), "--app", spec, "run", "--port", str(port)])
    for _ in range(outbox_workers):
        start("worker", [_bin("flask"), "--app", spec, "worker"])
    return procs


def _get(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def _first_200(port: int, path: str, launched: float, server: subprocess.Popen) -> float:
    deadline = launched + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        if _get(port, path) == 200:
            return time.monotonic() - launched
        time.sleep(0.01)
    raise RuntimeError(f"no 200 on {path} within {START_TIMEOUT} s")


def _requests(port: int, count: int) -> list[str]:
    """``count`` requests over PAGES from four clients at once (so every gunicorn worker gets
    some); returns what did not answer 200."""
    failures = []
    paths = [PAGES[i % len(PAGES)] for i in range(count)]

    def client(mine):
        for path in mine:
            status = _get(port, path)
            if status != 200:
                failures.append(f"{path}: {status}")

    threads = [threading.Thread(target=client, args=(paths[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def _wait_for_workers(logs: Path, count: int) -> None:
    """Each ``flask worker`` has logged that it started, and had a moment for a first round."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        started = sum("worker started" in p.read_text() for p in logs.glob("worker-*.log"))
        if started >= count:
            time.sleep(1.0)
            return
        time.sleep(0.05)
    raise RuntimeError("a flask worker did not start")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _kib(path: Path, field_name: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _memory(roots: list[int]) -> tuple[int, float, float]:
    """(processes, RSS MiB, PSS MiB) summed over ``roots`` and all their descendants."""
    tree = _children()
    pids, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    rss = pss = 0
    for pid in pids:
        try:
            rss += _kib(Path(f"/proc/{pid}/status"), "VmRSS")
            pss += _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
        except OSError:
            continue
    return len(pids), rss / 1024, pss / 1024


def _stop(procs: list) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _server_run(setup: str, args, tmp: Path, env: dict) -> Run:
    run = Run()
    logs = Path(tempfile.mkdtemp(prefix=f"{setup}-", dir=tmp))
    port = _free_port()
    launched = time.monotonic()
    procs = _launch(setup, args, tmp, env, port, logs)
    try:
        run.healthz = _first_200(port, "/healthz", launched, procs[0])
        run.start_page = _first_200(port, "/", launched, procs[0])
        run.notes = _requests(port, args.requests)
        if len(procs) > 1:
            _wait_for_workers(logs, len(procs) - 1)
        run.processes, run.rss, run.pss = _memory([p.pid for p in procs])
    except RuntimeError as exc:
        tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs.glob("*.log"))
        _stop(procs)
        sys.exit(f"{setup}: {exc}\n{tails}")
    _stop(procs)
    return run


# --- the table ------------------------------------------------------------------------------


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=os.environ.get("LETHE_BENCH_DATABASE_URL"))
    parser.add_argument("--keystore-url", default=os.environ.get("LETHE_BENCH_KEYSTORE_URL"))
    parser.add_argument("--setups", help=f"comma-separated, of: {', '.join(SETUPS)}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()
    args.tree = args.tree.resolve()
    if args.database == "postgresql":
        if not (args.database_url and args.keystore_url):
            sys.exit("--database postgresql needs --database-url and --keystore-url")
    else:
        args.database_url = args.keystore_url = None
    setups = (args.setups or DEFAULT_SETUPS[args.database]).split(",")
    unknown = set(setups) - set(SETUPS)
    if unknown:
        sys.exit(f"unknown set-up(s): {', '.join(sorted(unknown))}")

    tmp = Path(tempfile.mkdtemp(prefix="lethe-bench-startup-"))
    try:
        env = _environment(args, tmp)
        _set_up(args, tmp, env)
        print(
            f"Lethe start-up and memory, {args.database}, median of {args.runs} run(s), "
            f"tree {args.tree}"
        )
        for setup in setups:
            if setup == "import":
                probes = [_import_run(args, tmp, env) for _ in range(args.runs)]
                heavy = sorted({name for probe in probes for name in probe["heavy"]})
                print(
                    f"{'import':<20} import app {_median([p['import'] for p in probes]):.2f} s"
                    f", + create_app() {_median([p['total'] for p in probes]):.2f} s"
                    f", {probes[0]['modules']} modules"
                    f", loaded of {'/'.join(HEAVY[:4])}…: {', '.join(heavy) or 'none'}"
                )
                continue
            runs = [_server_run(setup, args, tmp, env) for _ in range(args.runs)]
            failed = sorted({note for run in runs for note in run.notes})
            print(
                f"{setup:<20} first 200 /healthz {_median([r.healthz for r in runs]):.2f} s"
                f", / {_median([r.start_page for r in runs]):.2f} s"
                f"; {runs[0].processes} processes"
                f", RSS {_median([r.rss for r in runs]):.0f} MiB"
                f", PSS {_median([r.pss for r in runs]):.0f} MiB"
                + (f"  (not 200: {'; '.join(failed)})" if failed else "")
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
