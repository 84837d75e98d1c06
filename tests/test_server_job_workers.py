"""The server as `make run` starts it (issue 17): gunicorn with the repository's
gunicorn.conf.py, threads, and the outbox worker forked from the loaded app
(LETHE_JOB_WORKERS) — no separate ``flask worker`` process.

- 50 clients at once on the embedded SQLite default get no server error;
- the forked job worker runs the erasure a request queues and issues its receipt;
- SIGTERM stops the server and its job worker with it, and nothing is left running;
- a job worker that dies on its own stops the server (never a server taking requests that
  nothing works through), and a server killed outright takes its job worker with it.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from rights.holdings import records
from rights.ledger import apikeys
from storage.db import db
from tests.processes import BIN, ROOT, free_port, server_env, stop, wait_up

CLIENTS = 50


@pytest.fixture
def server(app, tmp_path):
    """gunicorn as make run starts it, on the test app's databases: (url, process, log path)."""
    port = free_port()
    instance = tmp_path / "server-instance"
    instance.mkdir()
    env = server_env(app, WORKERS="1", THREADS="16", JOB_WORKERS="1", BIND=f"127.0.0.1:{port}")
    env["LETHE_INSTANCE_PATH"] = str(instance)
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own executable
            [
                str(BIN / "gunicorn"),
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "tests.processes:make_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        yield url, proc, log_path
    finally:
        stop(proc)


def _job_worker_pid(log_path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"Booting job worker with pid: (\d+)", log_path.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError("no job worker started:\n" + log_path.read_text()[-2000:])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _call(url: str, key: str, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 server
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.fixture
def platform_key(app):
    with app.app_context():
        for n in range(2):
            records.upsert_member(
                {"member_id": f"m-{n}", "email": f"m{n}@example.org"}, source="t", actor="t"
            )
        _, key = apikeys.create("platform", sorted(apikeys.SCOPES), actor="test")
        db.session.commit()
    return key


def test_fifty_clients_at_once_and_the_forked_worker_issues_the_receipt(server, platform_key):
    url, proc, log_path = server
    statuses: list[int] = []
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        body = (
            {"type": "access", "member_id": "m-0", "verified": True}
            if n % 2
            else {"type": "access", "email": f"p{n}@example.org"}
        )
        start.wait()
        statuses.append(_call(url, platform_key, "POST", "/api/v1/requests", body)[0])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(201) == CLIENTS, sorted(statuses)

    # No flask worker runs: the erasure is worked through by the one gunicorn forked.
    status, filed = _call(
        url,
        platform_key,
        "POST",
        "/api/v1/requests",
        {"type": "erasure", "member_id": "m-1", "verified": True},
    )
    assert status == 201
    deadline = time.monotonic() + 30
    result = None
    while time.monotonic() < deadline:
        _, shown = _call(url, platform_key, "GET", f"/api/v1/requests/{filed['id']}")
        result = shown.get("result") or {}
        if result.get("receipt"):
            break
        time.sleep(0.05)
    assert result and result["receipt"].count(".") == 2, log_path.read_text()[-3000:]
    assert _alive(_job_worker_pid(log_path))


def test_sigterm_stops_the_server_and_its_job_worker(server):
    url, proc, log_path = server
    job_worker = _job_worker_pid(log_path)
    assert _alive(job_worker)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    # Gone before the master was: it waited for it (not left to the kernel's orphan signal).
    assert not _alive(job_worker)
    assert "worker stopped" in log_path.read_text()
    assert "stopping the server" not in log_path.read_text()


def test_a_whole_process_group_told_to_stop_is_no_failure(server):
    """Ctrl-C or a supervisor signals every process: the job worker stops first, cleanly,
    and the server does not take that for a death."""
    url, proc, log_path = server
    job_worker = _job_worker_pid(log_path)
    os.kill(job_worker, signal.SIGTERM)
    time.sleep(1.0)  # the master hears of it later than its job worker did
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "stopping the server" not in log_path.read_text()


def test_a_job_worker_that_dies_stops_the_server_with_a_failing_status(server):
    """Exit status 1: a supervisor set to restart on failure starts it all again."""
    url, proc, log_path = server
    job_worker = _job_worker_pid(log_path)
    os.kill(job_worker, signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    assert f"job worker {job_worker} exited: stopping the server" in log_path.read_text()


def test_after_a_reload_the_server_still_stops_its_job_worker(server):
    """SIGHUP reads gunicorn.conf.py again into a new module: the job worker forked before
    goes on working, and SIGTERM still stops it gracefully, through the server."""
    url, proc, log_path = server
    job_worker = _job_worker_pid(log_path)
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "Hang up" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert _alive(job_worker)
    assert log_path.read_text().count("Booting job worker") == 1
    with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not _alive(job_worker)
    assert "worker stopped" in log_path.read_text()


def test_a_server_killed_outright_takes_its_job_worker_with_it(server):
    """SIGKILL leaves the master no say: the kernel tells the job worker (PR_SET_PDEATHSIG),
    which stops instead of running on, orphaned."""
    url, proc, log_path = server
    job_worker = _job_worker_pid(log_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(job_worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(job_worker)
