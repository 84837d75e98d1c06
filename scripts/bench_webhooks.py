"""Benchmark: one webhook worker delivering N events to a local receiver, against a plain
loop of HTTP POSTs of the same bodies to the same receiver.

Not a test: prints figures. One run, one database: a throwaway SQLite database (or
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL for PostgreSQL) with one subscriber and
N subject.erased events, each with its delivery, written in bulk as fan-out writes them. A
receiver in a thread (http.server, HTTP/1.0: a connection per request) answers 204. Each
round POSTs every body in a plain urllib loop (a connection each, as the worker opens), then
runs webhooks.deliver_due in batches, a fresh app context per batch as `flask worker` does,
until nothing is pending; the deliveries are then put back in line. Best of --rounds. Every
delivery must end delivered, the receiver must see each webhook-id once with the body the
plain loop sent, and every signature must verify with the standardwebhooks library.
--profile adds two worker rounds: one with a timer on each step of a delivery (its own time,
with the SQL statements and commits per delivery), one under cProfile (the top functions by
own time).

    python scripts/bench_webhooks.py [--events 2000] [--rounds 3] [--batch 200] [--profile]
                                     [--latency MS] [--parallel N]
"""

import argparse
import cProfile
import importlib
import json
import pstats
import re
import secrets
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdata import make_app  # noqa: E402
from sqlalchemy import event, func, insert, select, update  # noqa: E402
from standardwebhooks.webhooks import Webhook  # noqa: E402

from rights.recipients import webhooks  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import Delivery, OutboxMessage  # noqa: E402
from storage.models.platform import new_uuid  # noqa: E402

TOPIC = "subject.erased"
ACTION = "erase everything you hold about this person that came from the platform, and confirm"


class Receiver:
    """A local receiver answering 204, keeping the worker's requests (headers, body) to check
    after the clock stops, and counting the plain ones."""

    def __init__(self, latency: float = 0.0):
        self.hooks = []
        self.plain = []
        receiver, latency = self, latency

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if latency:
                    time.sleep(latency)  # a receiver across a network, doing some work
                if "webhook-id" in self.headers:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.hooks.append((headers, body.decode()))
                else:
                    receiver.plain.append(len(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.request_queue_size = 128  # a real server's backlog, not 5
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def clear(self) -> None:
        self.hooks, self.plain = [], []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def seed(n: int, url: str) -> tuple[str, dict[str, str]]:
    """One subscriber to subject.erased and ``n`` events with a delivery each, as
    downstream.tell and fan_out write them (bodies: type, subject ref, request reference,
    the records recipients may hold, action). Returns the subscriber's secret and, by
    delivery id, the body the worker will send."""
    subscriber, secret, _ = webhooks.add("Bench brand", url, [TOPIC], actor="bench")
    db.session.flush()
    now = utcnow()
    expected = {}
    for start in range(0, n, 5000):
        events, deliveries = [], []
        for i in range(start, min(n, start + 5000)):
            body = {
                "type": TOPIC,
                "subject": f"sub_bench{i:06d}",
                "request": _reference(i),
                "records": [{"type": "perk_awards", "id": f"aw-b{i}-{k}"} for k in range(3)]
                + [{"type": "disclosures", "id": f"dl-b{i}-{k}"} for k in range(2)]
                + [{"type": "promotions", "id": f"pr-b{i}"}],
                "action": ACTION,
            }
            event_id, delivery_id = new_uuid(), "msg_" + secrets.token_hex(12)
            # Each its own time, as fan_out's utcnow() per delivery gives them.
            made = now - timedelta(seconds=1, microseconds=n - i)
            events.append(
                {
                    "id": event_id,
                    "kind": "event",
                    "topic": TOPIC,
                    "subject_id": None,
                    "request_id": None,
                    "payload_enc": json.dumps(body, sort_keys=True).encode(),
                    "status": "sent",
                    "sealed_with": "none",
                    "attempts": 0,
                    "next_attempt_at": made,
                    "created_at": made,
                    "sent_at": made,
                }
            )
            deliveries.append(
                {
                    "id": delivery_id,
                    "outbox_id": event_id,
                    "subscriber_id": subscriber.id,
                    "request_id": None,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": made,
                    "created_at": made,
                }
            )
            expected[delivery_id] = json.dumps({**body, "delivery": delivery_id}, sort_keys=True)
        db.session.execute(insert(OutboxMessage), events)
        db.session.execute(insert(Delivery), deliveries)
    db.session.commit()
    return secret, expected


def _reference(i: int) -> str:
    body = f"{i:08d}"
    return f"LR-{body[:4]}-{body[4:]}"


def plain_loop(url: str, bodies: list[str]) -> float:
    """POST every body with urllib, one connection each (the lower bound). Returns seconds."""
    headers = {"content-type": "application/json"}
    start = time.perf_counter()
    for body in bodies:
        req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the local receiver
            assert resp.status == 204, resp.status
    return time.perf_counter() - start


def worker(app, batch: int) -> tuple[float, int]:
    """deliver_due until nothing is claimed, a fresh app context per batch (as the worker
    runs it). Returns seconds and deliveries delivered."""
    delivered = 0
    start = time.perf_counter()
    while True:
        with app.app_context():
            counts = webhooks.deliver_due(limit=batch)
        delivered += counts["delivered"]
        if not any(counts.values()):
            return time.perf_counter() - start, delivered


def check(app, receiver: Receiver, expected: dict[str, str], secret: str, *, verify: bool):
    """Every delivery delivered; the receiver saw each webhook-id once, with the expected body
    (and, with ``verify``, a valid signature)."""
    n = len(expected)
    with app.app_context():
        states = dict(
            db.session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ).all()
        )
    assert states == {"delivered": n}, states
    ids = [headers["webhook-id"] for headers, _ in receiver.hooks]
    assert len(ids) == n and set(ids) == set(expected), (len(ids), len(set(ids)), n)
    hook = Webhook(secret)
    for headers, body in receiver.hooks:
        delivery_id = headers["webhook-id"]
        assert body == expected[delivery_id], delivery_id
        if verify:
            payload = hook.verify(body, headers)
            assert payload["delivery"] == delivery_id and payload["type"] == TOPIC


def put_back(app) -> None:
    """Every delivery pending and due again, in the order fan-out made them."""
    with app.app_context():
        db.session.execute(
            update(Delivery).values(
                status="pending",
                attempts=0,
                next_attempt_at=Delivery.created_at,
                delivered_at=None,
                last_status_code=None,
                last_error=None,
            )
        )
        db.session.commit()


# The steps of a delivery, timed where they exist (the worker's code moves): (label, module,
# attribute). Labels may repeat: whichever exists is timed under it.
STEPS = (
    ("claim", "rights.recipients.webhooks", "_claim"),
    ("check_target (resolve)", "rights.recipients.webhooks", "check_target"),
    ("body_of (outbox row, json)", "rights.recipients.webhooks", "body_of"),
    ("signed (headers)", "rights.recipients.webhooks", "signed"),
    ("vault.unseal (the secret)", "storage.vault", "unseal"),
    ("Webhook.sign (HMAC)", "standardwebhooks.webhooks", "Webhook.sign"),
    ("POST", "rights.recipients.webhooks", "_post"),
    ("POST", "rights.recipients.outbound_http", "post"),
    ("commit (flush, COMMIT)", "flask_sqlalchemy.session", "Session.commit"),
    # Since the split of webhooks.py (the claim is a step generator now: its timer sees only
    # the generator being made, so the claim's time shows under "other").
    ("check_target (resolve)", "rights.recipients.webhook_delivery", "check_target"),
    ("body_of (outbox row, json)", "rights.recipients.webhook_delivery", "body_of"),
    ("signed (headers)", "rights.recipients.webhook_delivery", "signed"),
    ("POST", "rights.recipients.webhook_delivery", "_post"),
)


def steps(app, batch: int, n: int) -> None:
    """One worker round with a timer around each step of a delivery (cheap, unlike a
    tracing profiler; each step's own time, without the timed steps it calls) and every SQL
    statement and commit counted."""
    spent, calls, stack, originals = Counter(), Counter(), [], []
    for label, module, attr in STEPS:
        try:
            owner = importlib.import_module(module)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = getattr(owner, name)
        except (ImportError, AttributeError):
            continue
        originals.append((owner, name, original))

        def timer(*args, _label=label, _original=original, **kwargs):
            stack.append(0.0)  # time spent in timed steps this one calls
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                inner = stack.pop()
                spent[_label] += took - inner
                calls[_label] += 1
                if stack:
                    stack[-1] += took

        setattr(owner, name, timer)
    statements = Counter()

    def count(conn, cursor, statement, parameters, context, executemany):
        verb = statement.split(None, 1)[0].upper()
        table = re.search(r"\b(?:FROM|UPDATE|INTO)\s+(\w+)", statement, re.IGNORECASE)
        statements[f"{verb} {table.group(1) if table else ''}".strip()] += 1

    def commit(conn):
        statements["COMMIT"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", commit)
    try:
        elapsed, delivered = worker(app, batch)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(engine, "commit", commit)
        for owner, name, original in originals:
            setattr(owner, name, original)
    assert delivered == n, delivered
    print(f"\nwhere a delivery's time goes (one more round, timed per step: {elapsed:.2f} s)")
    print(f"{'step (own time)':32} {'calls':>6} {'ms each':>8} {'share':>6}")
    for label in dict.fromkeys(label for label, _, _ in STEPS):
        if calls[label]:
            print(
                f"{label:32} {calls[label] / n:6.2f} {spent[label] / n * 1000:8.3f} "
                f"{spent[label] / elapsed:6.0%}"
            )
    other = elapsed - sum(spent.values())
    label = "other (ORM gets, app context)"
    print(f"{label:32} {'':6} {other / n * 1000:8.3f} {other / elapsed:6.0%}")
    print(f"{'in all':32} {'':6} {elapsed / n * 1000:8.3f} {1:6.0%}")
    per = ", ".join(f"{k} {v / n:.2f}" for k, v in statements.most_common())
    print(f"per delivery: {per}")


def profile(app, batch: int, n: int) -> None:
    """One more worker round under cProfile: the top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, delivered = worker(app, batch)
    profiler.disable()
    assert delivered == n, delivered
    stats = pstats.Stats(profiler).stats
    title = f"top 5 by own time, under cProfile ({elapsed:.2f} s)"
    print(f"\n{title:58} {'calls':>8} {'s':>6}")
    for (file, line, name), row in sorted(stats.items(), key=lambda i: i[1][2], reverse=True)[:5]:
        where = name if file == "~" else f"{name} ({'/'.join(Path(file).parts[-2:])}:{line})"
        print(f"{where[:58]:58} {row[1]:8d} {row[2]:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=webhooks.BATCH, help="deliver_due limit")
    parser.add_argument("--profile", action="store_true", help="where the worker's time goes")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="ms the receiver takes to answer each POST"
    )
    parser.add_argument(
        "--parallel", type=int, default=None, help="WEBHOOK_PARALLEL (default: the config's)"
    )
    args = parser.parse_args()
    app = make_app()
    app.config.update(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
    if args.parallel is not None:
        app.config.update(WEBHOOK_PARALLEL=args.parallel)
    print(
        f"receiver answers in {args.latency:g} ms; worker sends "
        f"{app.config['WEBHOOK_PARALLEL']} POSTs at once"
    )
    receiver = Receiver(latency=args.latency / 1000)
    with app.app_context():
        db.create_all()
        if db.session.execute(select(func.count()).select_from(Delivery)).scalar():
            sys.exit("The bench database already has deliveries: give it an empty one.")
        start = time.perf_counter()
        secret, expected = seed(args.events, receiver.url)
        print(
            f"seeded {args.events} events (+ deliveries) in {time.perf_counter() - start:.1f} s"
            f"  [{app.config['SQLALCHEMY_DATABASE_URI'][:10]}]"
        )
    bodies = list(expected.values())
    plain_times, worker_times = [], []
    for round_no in range(args.rounds):
        receiver.clear()
        plain_times.append(plain_loop(receiver.url, bodies))
        assert len(receiver.plain) == args.events, len(receiver.plain)
        assert not receiver.hooks, len(receiver.hooks)
        elapsed, delivered = worker(app, args.batch)
        worker_times.append(elapsed)
        assert delivered == args.events, delivered
        assert len(receiver.plain) == args.events, len(receiver.plain)
        check(app, receiver, expected, secret, verify=round_no == 0)
        put_back(app)
    n = args.events
    plain, work = min(plain_times), min(worker_times)
    print(f"\n{'best of ' + str(args.rounds):32} {'s':>8} {'ms each':>8} {'per s':>8}")
    print(f"{'plain urllib POSTs':32} {plain:8.2f} {plain / n * 1000:8.3f} {n / plain:8.0f}")
    print(f"{'worker (deliver_due)':32} {work:8.2f} {work / n * 1000:8.3f} {n / work:8.0f}")
    print(
        f"worker / plain {work / plain:.2f}x; overhead per delivery "
        f"{(work - plain) / n * 1000:.3f} ms"
    )
    print(
        f"checked: {n} deliveries delivered, each webhook-id seen once with the plain loop's "
        f"body, {n} signatures verified (round 1)"
    )
    if args.profile:
        for run in (steps, profile):
            receiver.clear()
            run(app, args.batch, n)
            check(app, receiver, expected, secret, verify=False)
            put_back(app)
    receiver.close()


if __name__ == "__main__":
    main()
