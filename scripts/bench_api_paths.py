"""Benchmark: requests per second of the API's hot paths against a real server, next to a
hello-world route of the same app (issue 17: "a CPU budget per request").

Not a test: prints figures. Builds throwaway databases (SQLite files in a temporary folder, or
--database-url / --keystore-url, default LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL,
for PostgreSQL: their tables are dropped and made again), one API key and one member, then
serves the app from gunicorn (gthread: --workers x --threads, as gunicorn.conf.py runs it) or
``flask run --with-threads`` (--server flask: the embedded default), with the rate limiter
off, and drives each path from --clients threads on kept-alive connections for --seconds
(after a second of warm-up):

- ``hello``: GET a route that answers "hello" (added to the app here), through every hook a
  request passes (session, transaction, security headers): the floor;
- ``hello+key``: the same behind an API key (``web.api.keys.require``): what authenticating
  a key costs;
- ``statement``: POST /api/v1/statements with a well-formed record key nobody holds (404);
- ``ingest``: POST /api/v1/perk-awards with one API key, a new award each time (201);
- ``file`` (only when asked for): POST /api/v1/requests, access requests, half verified for
  the one member, half from new addresses (201) — with ``--server flask --clients 50``, the
  embedded default under 50 concurrent clients.

--tree runs the server (and the set-up) from another checkout, e.g. a ``git archive`` of the
commit before a change, so that before and after are measured in one run on one machine.

    python scripts/bench_api_paths.py [--database sqlite|postgresql] [--seconds 5]
        [--clients 8] [--server gunicorn|flask] [--workers 2] [--threads 8] [--tree PATH]
        [--paths hello,hello+key,statement,ingest,file]
"""

import argparse
import base64
import http.client
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATHS = ("hello", "hello+key", "statement", "ingest")
EXPECTED = {"hello": 200, "hello+key": 200, "statement": 404, "ingest": 201, "file": 201}


def server_app():
    """What the server process runs (gunicorn / flask --app): the app from the environment,
    plus the hello-world routes the figures are compared with."""
    from app import create_app
    from web.api.keys import require

    app = create_app(None, instance_path=os.environ["LETHE_BENCH_INSTANCE"])
    app.add_url_rule("/bench/hello", "bench_hello", lambda: "hello")

    @require("records:write")
    def hello_with_key():
        return "hello"

    app.add_url_rule("/bench/hello-key", "bench_hello_key", hello_with_key)
    return app


def _settings(args, tmp: Path) -> dict:
    key = lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()  # noqa: E731
    return {
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'lethe.db'}",
        "KEYSTORE_URL": args.keystore_url or f"sqlite:///{tmp / 'keystore.db'}",
        "SECRET_KEY": "bench",
        "KEY_ENCRYPTION_KEY": key(),
        "BLIND_INDEX_KEY": key(),
        "MAIL_BACKEND": "file",
        "MAIL_DIR": str(tmp / "mail"),
        "RATELIMIT_ENABLED": "false",
        "RETENTION_SWEEP_HOURS": "0",
    }


def _environment(settings: dict, tree: Path, instance: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_")}
    env.update({f"LETHE_{k}": v for k, v in settings.items()})
    env["LETHE_BENCH_INSTANCE"] = str(instance)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(HERE)])
    return env


def _set_up(tree: Path, env: dict) -> str:
    """Tables, one member and one key with every scope, made by ``tree``'s code in a process
    of its own (the server's environment); returns the key."""
    code = (
        "import os\n"
        "from app import create_app\n"
        "from rights.holdings import records\n"
        "from rights.ledger import apikeys\n"
        "from storage.db import db\n"
        "app = create_app(None, instance_path=os.environ['LETHE_BENCH_INSTANCE'])\n"
        "with app.app_context():\n"
        "    db.drop_all()\n"
        "    db.create_all()\n"
        "    records.upsert_member({'member_id': 'm-bench', 'email': 'bench@example.org'},\n"
        "                          source='bench', actor='bench')\n"
        "    _, key = apikeys.create('bench', sorted(apikeys.SCOPES), actor='bench')\n"
        "    db.session.commit()\n"
        "print(key)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"set-up failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def _serve(args, tree: Path, env: dict, port: int, log) -> subprocess.Popen:
    bin_dir = Path(sys.executable).parent
    if args.server == "gunicorn":
        cmd = [
            str(bin_dir / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
            "--config",
            "/dev/null",
            "bench_api_paths:server_app()",
        ]
    else:
        cmd = [
            str(bin_dir / "flask"),
            "--app",
            "bench_api_paths:server_app()",
            "run",
            "--port",
            str(port),
            "--with-threads",
            "--no-reload",
            "--no-debugger",
        ]
    return subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=log)  # noqa: S603


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench/hello")
            up = conn.getresponse().status == 200
            conn.close()
            if up:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not start in time")


def _request_maker(path: str, key: str):
    """A function returning (method, url, body, headers) for the next request of ``path``."""
    auth = {"Authorization": f"Bearer {key}"}
    json_headers = {"Content-Type": "application/json"}
    counter = itertools.count()
    if path == "hello":
        return lambda: ("GET", "/bench/hello", None, {})
    if path == "hello+key":
        return lambda: ("GET", "/bench/hello-key", None, auth)
    if path == "statement":
        from rights.erasure import record_keys

        def statement():
            body = json.dumps({"record_key": record_keys.new()})
            return "POST", "/api/v1/statements", body, json_headers

        return statement
    run = os.urandom(3).hex()
    if path == "file":

        def file():
            n = next(counter)
            body = {"type": "access", "email": f"p-{run}-{n}@example.org"}
            if n % 2:  # a verified request for the member, answered at once
                body = {"type": "access", "member_id": "m-bench", "verified": True}
            return "POST", "/api/v1/requests", json.dumps(body), {**json_headers, **auth}

        return file

    def award():
        award = {
            "award_id": f"aw-{run}-{next(counter)}",
            "member_id": "m-bench",
            "perk_id": "p-phone",
            "brand_id": "b-nova",
            "status": "offered",
            "source": "bench",
            "actor": "bench",
        }
        return "POST", "/api/v1/perk-awards", json.dumps(award), {**json_headers, **auth}

    return award


def _drive(port: int, make, clients: int, seconds: float) -> tuple[int, Counter, float]:
    """``clients`` threads sending ``make()`` requests until the time is up: (count, statuses,
    seconds measured). Each thread keeps its connection alive and reconnects if it drops."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    warm_until = time.monotonic() + 1.0
    stop = warm_until + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: Counter = Counter()
        while (now := time.monotonic()) < stop:
            method, url, body, headers = make()
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                status = "connection error"
            if now >= warm_until:
                mine[status] += 1
        conn.close()
        with lock:
            statuses.update(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(statuses.values()), statuses, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keystore-url", default=None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--server", choices=("gunicorn", "flask"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    if args.database == "postgresql":
        args.database_url = args.database_url or os.environ.get("LETHE_BENCH_DATABASE_URL")
        args.keystore_url = args.keystore_url or os.environ.get("LETHE_BENCH_KEYSTORE_URL")
        if not (args.database_url and args.keystore_url):
            sys.exit("PostgreSQL needs --database-url and --keystore-url (two databases)")
    sys.path.insert(0, str(args.tree.resolve()))
    tree = args.tree.resolve()
    paths = [p for p in args.paths.split(",") if p]

    tmp = Path(tempfile.mkdtemp(prefix="lethe-bench-api-"))
    instance = tmp / "instance"
    env = _environment(_settings(args, tmp), tree, instance)
    key = _set_up(tree, env)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = (
        f"{args.server} {args.workers}x{args.threads} threads"
        if args.server == "gunicorn"
        else "flask run --with-threads"
    )
    print(
        f"{args.database}, {server}, {args.clients} clients, {args.seconds:.0f} s each, tree {tree}"
    )
    with open(tmp / "server.log", "w") as log:
        proc = _serve(args, tree, env, port, log)
        try:
            _wait_up(port, proc)
            for path in paths:
                count, statuses, seconds = _drive(
                    port, _request_maker(path, key), args.clients, args.seconds
                )
                unexpected = {k: v for k, v in statuses.items() if k != EXPECTED[path]}
                print(
                    f"  {path:<10} {count / seconds:8.1f} /s"
                    + (f"   unexpected answers: {unexpected}" if unexpected else "")
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if not args.database_url:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  (server log in {tmp / 'server.log'})")


if __name__ == "__main__":
    main()
