"""The webhook worker scales out and survives crashes: two ``flask worker`` processes on one
PostgreSQL database never send the same delivery twice; a worker killed with SIGKILL in the
middle of a batch loses nothing (the delivery in hand is sent again once its lease is over,
with the same webhook-id); a receiver slower than the timeout, or failing every other time,
still gets every event, delivered once. Workers are real subprocesses against the test
database; time for backoff is moved with a frozen clock."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select, text, update

from storage.clock import utcnow
from storage.db import db
from storage.models import Delivery
from tests.conftest import PG_URL
from tests.helpers import deliver, wait_for
from tests.test_webhooks import _event, _subscribe

ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A local HTTP receiver, safe to call from many threads at once. ``plan(index, webhook_id,
    client_port)`` decides the answer for the index-th POST (in order of arrival); it may
    sleep or wait on ``gate`` first. ``arrivals`` lists the webhook-id of every POST as it
    comes in, ``answers`` (webhook-id, code) as it is answered."""

    def __init__(self, plan):
        self.plan = plan
        self.lock = threading.Lock()
        self.arrivals: list[str] = []
        self.answers: list[tuple[str, int]] = []
        self.gate = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                webhook_id = self.headers["webhook-id"]
                with receiver.lock:
                    index = len(receiver.arrivals)
                    receiver.arrivals.append(webhook_id)
                code = receiver.plan(index, webhook_id, self.client_address[1])
                with receiver.lock:
                    receiver.answers.append((webhook_id, code))
                try:
                    self.send_response(code)
                    self.end_headers()
                except OSError:
                    pass  # the worker gave up (timed out) or is gone (killed)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.arrivals)

    def answered(self) -> list[tuple[str, int]]:
        with self.lock:
            return list(self.answers)

    def close(self):
        self.gate.set()  # nothing stays blocked in a handler
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receivers():
    made = []

    def make(plan) -> Receiver:
        made.append(Receiver(plan))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Worker:
    """``flask worker`` in a subprocess, against the test app's database and keys."""

    def __init__(self, app, tmp_path: Path, name: str, *args: str):
        # The test app's own config (its database, its random keys), passed to create_app by
        # the flask CLI itself (``--app 'app:create_app({...})'`` takes literal arguments).
        config = {
            k: v
            for k, v in app.config.items()
            if k.isupper() and isinstance(v, (str, int, float, bool))
        }
        factory = f"app:create_app({config!r}, instance_path={str(tmp_path / name)!r})"
        self.name = name
        self.out_path, self.err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        self._out, self._err = open(self.out_path, "wb"), open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", factory, "worker", *args],
            cwd=ROOT,
            stdout=self._out,
            stderr=self._err,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "FLASK_SKIP_DOTENV": "1",
                "PGAPPNAME": name,  # how the test tells the workers' connections apart
            },
        )
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.out_path.read_text()[-2000:] + self.err_path.read_text()[-3000:]

    def check_alive(self):
        code = self.proc.poll()
        assert code is None, f"{self.name} exited with {code}:\n{self.output()}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()
        self._err.close()


@pytest.fixture
def workers(tmp_path):
    """Start workers with ``start(app, name, *args)``; all are stopped at the end, whatever
    happened."""
    started = []

    def start(app, name, *args) -> Worker:
        started.append(Worker(app, tmp_path, name, *args))
        return started[-1]

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def hooks_app(app_factory):
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


def _deliveries(app) -> dict[str, Delivery]:
    with app.app_context():
        rows = db.session.execute(select(Delivery)).scalars().all()
        db.session.expunge_all()
        return {d.id: d for d in rows}


def _not_delivered(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status != "delivered")
        )


def _all_delivered(app, *running: Worker):
    for w in running:
        w.check_alive()
    return _not_delivered(app) == 0


def _owner_of(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the client end of a TCP connection to ``server_port`` (Linux:
    /proc). Called while the client still waits for its answer."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == client_port
                    and int(remote.rsplit(":", 1)[1], 16) == server_port
                ):
                    inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(f"{fd_dir}/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


@pytest.mark.skipif(not PG_URL, reason="concurrent workers need PostgreSQL (SQLite has one)")
def test_two_workers_on_postgresql_never_deliver_the_same_attempt_twice(
    hooks_app, receivers, workers
):
    n_events = 60
    pids: list[int] = []
    owners: list[int | None] = []
    by_proc = sys.platform == "linux"

    def plan(index, webhook_id, client_port):
        if by_proc:
            owner = _owner_of(client_port, receiver.port, pids)
            with receiver.lock:
                owners.append(owner)
        time.sleep(0.03)  # long enough for the two workers' deliveries to overlap
        return 200

    receiver = receivers(plan)
    _subscribe(hooks_app, receiver.url)
    for n in range(1, n_events + 1):
        _event(hooks_app, n)
    with hooks_app.app_context():
        # Held back until both workers are up, then released at once: they race for them.
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow() + timedelta(days=1)))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == n_events

    running = [workers(hooks_app, f"lethe-worker-{i}", "--interval", "0.1") for i in (1, 2)]
    pids.extend(w.pid for w in running)

    def both_connected():
        for w in running:
            w.check_alive()
        with hooks_app.app_context():
            names = set(
                db.session.execute(
                    text(
                        "SELECT application_name FROM pg_stat_activity"
                        " WHERE datname = current_database()"
                    )
                ).scalars()
            )
        return {w.name for w in running} <= names

    wait_for(both_connected, timeout=30, interval=0.1)
    with hooks_app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        db.session.commit()
    wait_for(lambda: _all_delivered(hooks_app, *running), timeout=60, interval=0.1)
    for w in running:
        w.check_alive()
        w.stop()
        assert "Traceback" not in w.output(), w.output()

    rows = _deliveries(hooks_app)
    seen = Counter(receiver.seen())
    assert len(rows) == n_events
    assert sum(seen.values()) == n_events, seen.most_common(3)
    assert set(seen) == set(rows) and set(seen.values()) == {1}
    assert {(d.status, d.attempts) for d in rows.values()} == {("delivered", 1)}
    if by_proc:
        # Both workers took part: the delivery was spread, not one worker doing it all.
        by_worker = Counter(owners)
        assert set(by_worker) == set(pids), by_worker


def test_kill_minus_nine_of_a_worker_mid_batch_loses_no_event(app_factory, receivers, workers):
    # A short timeout keeps the lease on the killed worker's delivery short (2 x 2 s + 5 s).
    hooks_app = app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_TIMEOUT_SECONDS=2)
    n_events, in_flight_at = 8, 2

    def plan(index, webhook_id, client_port):
        if index == in_flight_at:
            receiver.gate.wait(timeout=30)  # hangs until the worker holding it is killed
        return 200

    receiver = receivers(plan)
    _subscribe(hooks_app, receiver.url)
    for n in range(1, n_events + 1):
        _event(hooks_app, n)

    first = workers(hooks_app, "lethe-worker-1", "--interval", "0.1")
    wait_for(lambda: first.check_alive() or len(receiver.seen()) > in_flight_at, timeout=30)
    # Mid-batch: the batch is claimed (each attempt counted, leased) and being sent, one POST
    # hanging; nothing is settled yet.
    assert _not_delivered(hooks_app) == n_events
    assert {d.attempts for d in _deliveries(hooks_app).values()} == {1}
    os.kill(first.pid, signal.SIGKILL)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    receiver.gate.set()  # the hung request ends; its answer goes nowhere

    second = workers(hooks_app, "lethe-worker-2", "--interval", "0.1")
    wait_for(lambda: _all_delivered(hooks_app, second), timeout=30, interval=0.1)
    second.stop()
    assert "Traceback" not in second.output(), second.output()

    arrivals = receiver.seen()
    in_flight = arrivals[in_flight_at]
    rows = _deliveries(hooks_app)
    seen = Counter(arrivals)
    assert set(seen) == set(rows)  # no event lost
    assert all(d.status == "delivered" for d in rows.values())
    # At least once, never under a new id: the killed worker's batch is sent again, by the
    # second worker once the lease is over, with the same webhook-ids (receivers de-duplicate
    # on them); the hanging one certainly, the others at most twice.
    assert seen[in_flight] == 2
    assert set(seen.values()) <= {1, 2}
    # The killed attempts count (they were claimed, committed, before they were sent), so a
    # delivery that kills its worker every time still ends in the dead-letter list.
    assert {d.attempts for d in rows.values()} == {2}


def test_a_slow_receiver_times_out_and_is_retried(app_factory, receivers):
    app = app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_TIMEOUT_SECONDS=0.5)

    def plan(index, webhook_id, client_port):
        if index == 0:
            receiver.gate.wait(timeout=5)  # far longer than the timeout
        return 200

    receiver = receivers(plan)
    _subscribe(app, receiver.url)
    _event(app)
    with freeze_time(utcnow()) as frozen:
        deliver(app)
        # The worker gave up before the receiver answered: it is still holding the request.
        assert receiver.seen() and receiver.answered() == []
        receiver.gate.set()
        (delivery,) = _deliveries(app).values()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert "timeout" in (delivery.last_error or "").lower(), delivery.last_error
        assert delivery.last_status_code is None
        assert delivery.next_attempt_at >= utcnow() + timedelta(seconds=24)
        deliver(app)  # not due yet
        assert receiver.seen() == [delivery.id]
        frozen.tick(timedelta(seconds=40))
        deliver(app)
    (after,) = _deliveries(app).values()
    assert after.status == "delivered" and after.attempts == 2 and after.last_error is None
    assert receiver.seen() == [delivery.id, delivery.id]  # the retry kept the webhook-id


def test_a_receiver_failing_half_the_time_still_gets_everything_delivered_once(
    hooks_app, receivers
):
    n_events = 20
    receiver = receivers(lambda index, webhook_id, client_port: 500 if index % 2 == 0 else 200)
    _subscribe(hooks_app, receiver.url)
    for n in range(1, n_events + 1):
        _event(hooks_app, n)
    rounds = 0
    with freeze_time(utcnow()) as frozen:
        while _not_delivered(hooks_app):
            rounds += 1
            assert rounds <= 12, "deliveries still pending after 12 rounds"
            deliver(hooks_app)
            frozen.tick(timedelta(hours=2))  # past any backoff these few attempts reach
    rows = _deliveries(hooks_app)
    answered = receiver.answered()
    assert len(rows) == n_events and rounds >= 4
    assert {d.status for d in rows.values()} == {"delivered"}
    assert {i for i, _ in answered} == set(rows)  # failures were retried under their own id
    for delivery_id, delivery in rows.items():
        codes = [code for i, code in answered if i == delivery_id]
        # Answered 200 exactly once, last; every attempt counted, each one seen.
        assert codes.count(200) == 1 and codes[-1] == 200, (delivery_id, codes)
        assert delivery.attempts == len(codes)
        assert delivery.last_status_code == 200
    assert sum(1 for _, code in answered if code == 500) >= n_events // 2
    assert max(d.attempts for d in rows.values()) >= 3
