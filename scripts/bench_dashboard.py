"""Benchmark: the dashboard with a large ledger — home figures, queue pages, a subject's
requests and the CSV export of everything — through the real app (signed in as an admin).

Not a test: prints figures. Builds a throwaway SQLite database (or uses
LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL for PostgreSQL) with N requests from
N/50 subjects, received over the last 180 days: older ones answered (one in eight refused,
with a reason under the subject's key, which the CSV decrypts) but for 1% overdue stragglers,
the last month's still open.

    python scripts/bench_dashboard.py [--requests 100000]
"""

import argparse
import random
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyotp  # noqa: E402
from benchdata import make_app  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from rights.ledger import officers  # noqa: E402
from rights.lifecycle.deadlines import due_date  # noqa: E402
from storage import vault  # noqa: E402
from storage.clock import utcnow  # noqa: E402
from storage.db import db  # noqa: E402
from storage.models import RequestType, RightsRequest, Subject  # noqa: E402
from storage.models.platform import new_uuid  # noqa: E402

PASSWORD = "bench password 123"  # noqa: S105 - a throwaway benchmark account


def seed(n: int) -> str:
    rng = random.Random(7)
    now = utcnow()
    subjects = []
    for i in range(max(1, n // 50)):
        subject = Subject(ref=f"sub_bench{i:06d}", email_index=vault.blind_index(f"b{i}@x.org"))
        db.session.add(subject)
        subjects.append(subject)
    db.session.flush()
    for subject in subjects:
        vault.create_subject_key(subject.id)
    types = [t.value for t in RequestType]
    rows = []
    for i in range(n):
        subject = subjects[i % len(subjects)]
        received = now - timedelta(days=rng.uniform(0, 180))
        due = due_date(received)
        # As in a team that keeps up: what is older than a month is answered, but for a few
        # stragglers (overdue); the last month's requests are still being worked on.
        age = (now - received).days
        if age > 30 and rng.random() > 0.01:
            status = rng.choice(["completed"] * 6 + ["refused", "withdrawn"])
        elif age > 30:
            status = "open"
        else:
            status = rng.choice(["open", "in_progress", "awaiting_verification", "completed"])
        row = {
            "id": new_uuid(),
            "reference": _reference(i),
            "type": rng.choice(types),
            "status": status,
            "subject_id": subject.id,
            "channel": rng.choice(["web", "api"]),
            "received_at": received,
            "original_due_at": due,
            "due_at": due,
            "contact_enc": vault.encrypt(subject.id, "rights_requests.contact_enc", "x@x.org"),
        }
        if status in ("completed", "refused"):
            closed = min(now, received + timedelta(days=rng.uniform(1, 35)))
            row.update(decided_at=closed, decided_by="officer:1", decision="granted")
            if status == "completed":
                row["completed_at"] = closed
            else:
                row["decision"] = "refused"
                row["decision_reason_enc"] = vault.encrypt(
                    subject.id, "rights_requests.decision_reason_enc", "Manifestly unfounded."
                )
        rows.append(row)
        if len(rows) == 5000:
            db.session.execute(insert(RightsRequest), rows)
            rows = []
    if rows:
        db.session.execute(insert(RightsRequest), rows)
    return subjects[len(subjects) // 2].ref


def _reference(i: int) -> str:
    body = f"{i:08d}"
    return f"LR-{body[:4]}-{body[4:]}"


def timed(client, url: str, label: str, *, memory: bool = False) -> None:
    times = []
    size = 0
    for _ in range(3):
        start = time.perf_counter()
        resp = client.get(url)
        size = len(resp.get_data())
        resp.close()
        assert resp.status_code == 200, (url, resp.status_code)
        times.append(time.perf_counter() - start)
    extra = ""
    if memory:
        tracemalloc.start()
        resp = client.get(url)
        for _ in resp.response:
            pass
        resp.close()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        extra = f"  peak Python memory {peak / 1e6:6.1f} MB"
    print(f"{label:44} best {min(times) * 1000:8.1f} ms  {size / 1e3:9.1f} kB{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    app = make_app()
    app.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False, DASHBOARD_IDLE_MINUTES=600)
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        subject_ref = seed(args.requests)
        _, uri = officers.create(
            "bench@perkly.example", name="Bench", role="admin", password=PASSWORD, by="bench"
        )
        db.session.commit()
        print(f"seeded {args.requests} requests in {time.perf_counter() - start:.1f} s")
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    client = app.test_client()
    resp = client.post(
        "/dashboard/login",
        data={
            "email": "bench@perkly.example",
            "password": PASSWORD,
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert resp.status_code == 303, resp.status_code
    timed(client, "/dashboard/", "home (figures, charts)")
    timed(client, "/dashboard/requests", "queue, first page (needs an answer)")
    timed(client, "/dashboard/requests?status=all&page=1000", "queue, page 1000 of everything")
    timed(client, "/dashboard/requests?due=overdue", "queue, overdue")
    timed(client, f"/dashboard/requests?status=all&subject={subject_ref}", "one subject's requests")
    start = time.perf_counter()
    resp = client.get("/dashboard/requests.csv?status=all")
    lines = resp.get_data(as_text=True).count("\n") - 1
    resp.close()
    elapsed = time.perf_counter() - start
    print(f"{'CSV export of every request':44} {elapsed:8.2f} s   {lines / elapsed:9.0f} rows/s")
    timed(client, "/dashboard/requests.csv?status=all", "CSV export (best of 3)", memory=True)


if __name__ == "__main__":
    main()
