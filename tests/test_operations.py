"""What operators rely on: /healthz, /readyz, /metrics (its figures, its access control, and
that it names no person), the request id on every answer, the JSON access line, and the
latency histogram shared by gunicorn's workers."""

import json
import logging
import re
import runpy
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text, update

from rights.ledger import audit, audit_checkpoints
from rights.reports import metrics
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    AuditEvent,
    Delivery,
    OutboxMessage,
    RetentionRun,
    RightsRequest,
    Subscriber,
)
from tests.helpers import API, award_body, deliver, member_body
from tests.processes import ROOT, free_port, serve

# --- helpers -----------------------------------------------------------------------------


def scrape(client, **headers) -> dict:
    """/metrics as {(name, ((label, value), ...)): value}."""
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def script(app) -> ScriptDirectory:
    migrate = app.extensions["migrate"]
    with app.app_context():
        return ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))


@pytest.fixture
def stamp(app):
    """Stamp a bind's version table (as `flask db upgrade` leaves it) without running
    migrations/env.py; the version tables go at the end (PostgreSQL's outlive the test)."""

    def do(bind_key, revision):
        with app.app_context(), db.engines[bind_key].begin() as conn:
            context = MigrationContext.configure(conn)
            if revision == "head":
                context.stamp(script(app), "head")
            else:
                conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

    yield do
    with app.app_context():
        for engine in db.engines.values():
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def migrated(stamp):
    for bind_key in (None, "keystore"):
        stamp(bind_key, "head")


# --- liveness and readiness --------------------------------------------------------------


def test_healthz_answers_ok_without_touching_a_database(app):
    statements = []
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            event.listen(engine, "connect", lambda *a: statements.append("connect"))
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == "ok"
    assert "Set-Cookie" not in resp.headers
    assert statements == []


def test_healthz_answers_while_every_database_is_away(app_factory, tmp_path):
    app_factory()
    away = app_factory(
        SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
        KEYSTORE_URL=f"sqlite:///{tmp_path / 'no-such-folder' / 'keystore.db'}",
    )
    assert away.test_client().get("/healthz").status_code == 200


def test_readyz_200_when_both_databases_answer_at_the_head(app, migrated):
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "database_migrations": "ok",
            "keystore": "ok",
            "keystore_migrations": "ok",
        },
        "failed": [],
    }
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize("where", ["missing file", "closed port"])
def test_readyz_503_when_the_key_store_is_unreachable(app_factory, stamp, tmp_path, where):
    app_factory()  # the schema, stamped at the head
    for bind_key in (None, "keystore"):
        stamp(bind_key, "head")
    if where == "missing file":
        url = f"sqlite:///{tmp_path / 'no-such-folder' / 'keystore.db'}"
    else:
        url = f"postgresql+psycopg://lethe:pw-s3cret@127.0.0.1:{free_port()}/lethe_keys"
    resp = app_factory(KEYSTORE_URL=url).test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["keystore", "keystore_migrations"]
    assert body["checks"] == {
        "database": "ok",
        "database_migrations": "ok",
        "keystore": "unreachable",
        "keystore_migrations": "unknown",
    }
    raw = resp.get_data(as_text=True)
    for leak in ("no-such-folder", "sqlite", "postgresql", "pw-s3cret", "127.0.0.1", "rror"):
        assert leak not in raw


def test_readyz_503_when_migrations_are_behind(app, stamp):
    stamp(None, "head")
    stamp("keystore", "head")
    head = script(app).get_revision(script(app).get_current_head())
    stamp(None, head.down_revision)  # the main database one migration behind
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["failed"] == ["database_migrations"]
    assert resp.get_json()["checks"]["keystore_migrations"] == "ok"


def test_readyz_503_when_never_migrated(app):
    resp = app.test_client().get("/readyz")  # tables made by create_all, no version table
    assert resp.status_code == 503
    assert resp.get_json()["failed"] == ["database_migrations", "keystore_migrations"]


def test_probes_need_no_session_csrf_or_rate_limit(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=True)
    client = app.test_client()
    for path in ("/healthz", "/readyz", "/metrics"):
        for _ in range(3):
            resp = client.get(path)
            assert resp.status_code in (200, 503), path
            assert "Set-Cookie" not in resp.headers, path
            assert not any(h.startswith("X-RateLimit") for h in resp.headers.keys()), path
    assert not client.get_cookie("session")


# --- /metrics: access ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_name", "token", "header", "status"),
    [
        ("development", None, None, 200),
        ("development", "scrape-me", None, 401),
        ("development", "scrape-me", "Bearer wrong", 401),
        ("development", "scrape-me", "Bearer scrape-me", 200),
        ("production", None, None, 404),
        ("production", None, "Bearer anything", 404),
        ("production", "scrape-me", None, 401),
        ("production", "scrape-me", "Basic scrape-me", 401),
        ("production", "scrape-me", "Bearer scrape-me-too", 401),
        ("production", "scrape-me", "Bearer scrape-me", 200),
        ("production", 12345, "Bearer 12345", 200),  # LETHE_METRICS_TOKEN=12345 reads as a number
    ],
)
def test_metrics_token(app_factory, env_name, token, header, status):
    app = app_factory(ENV_NAME=env_name, METRICS_TOKEN=token)
    resp = app.test_client().get("/metrics", headers={"Authorization": header} if header else {})
    assert resp.status_code == status
    if status == 200:
        assert "lethe_requests_open" in resp.get_data(as_text=True)
    else:
        assert "lethe_" not in resp.get_data(as_text=True)
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


# --- /metrics: the ledger's figures --------------------------------------------------------


def test_open_requests_by_status_and_days_left(app, client, api_key):
    assert client.post(API + "/members", json=member_body(1), headers=api_key).status_code == 201
    ids = []
    for _ in range(5):
        body = {"type": "access", "member_id": "m-1", "verified": True}
        resp = client.post(API + "/requests", json=body, headers=api_key)
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    now = utcnow()
    placed = [
        ("open", now - timedelta(hours=1)),  # overdue
        ("open", now + timedelta(days=7, hours=20)),  # 7 whole days left
        ("in_progress", now + timedelta(days=8, hours=1)),
        ("awaiting_verification", now + timedelta(days=45)),
        ("completed", now - timedelta(days=3)),  # answered: not open
    ]
    with app.app_context():
        for id_, (status, due) in zip(ids, placed, strict=True):
            db.session.execute(
                update(RightsRequest)
                .where(RightsRequest.id == id_)
                .values(status=status, due_at=due)
            )
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "lethe_requests_open", status="open", days_left="overdue") == 1
    assert value(samples, "lethe_requests_open", status="open", days_left="0-7") == 1
    assert value(samples, "lethe_requests_open", status="in_progress", days_left="8-30") == 1
    assert (
        value(samples, "lethe_requests_open", status="awaiting_verification", days_left=">30") == 1
    )
    opened = [v for (name, _), v in samples.items() if name == "lethe_requests_open"]
    assert len(opened) == 4 * 4  # every status a request can be open in, by every bucket
    assert sum(opened) == 4


def _outbox(kind: str, status: str, age: timedelta) -> OutboxMessage:
    return OutboxMessage(
        kind=kind,
        topic="test",
        payload_enc=b"",
        sealed_with="none",
        status=status,
        created_at=utcnow() - age,
    )


def test_outbox_backlog_and_oldest_age(app, client):
    with app.app_context():
        db.session.add_all(
            [
                _outbox("email", "pending", timedelta(hours=1)),
                _outbox("email", "pending", timedelta(minutes=1)),
                _outbox("email", "sent", timedelta(days=2)),  # sent: not waiting
                _outbox("job", "pending", timedelta(minutes=10)),
                _outbox("job", "dead", timedelta(days=9)),  # dead: not waiting either
            ]
        )
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "lethe_outbox_backlog", kind="email") == 2
    assert value(samples, "lethe_outbox_backlog", kind="job") == 1
    assert value(samples, "lethe_outbox_backlog", kind="event") == 0
    assert 3600 <= value(samples, "lethe_outbox_oldest_age_seconds", kind="email") < 3660
    assert 600 <= value(samples, "lethe_outbox_oldest_age_seconds", kind="job") < 660
    assert value(samples, "lethe_outbox_oldest_age_seconds", kind="event") == 0


def test_webhook_deliveries_by_state_and_dead_letters(app, client):
    states = ["pending", "delivered", "confirmed", "confirmed", "dead", "dead", "dead"]
    with app.app_context():
        event_row = _outbox("event", "sent", timedelta(0))
        db.session.add(event_row)
        db.session.flush()
        for i, state in enumerate(states):
            # One event reaches each subscriber once: a subscriber per delivery.
            other = Subscriber(name=f"s{i}", url="https://s.example/hooks", events=[])
            db.session.add(other)
            db.session.flush()
            db.session.add(
                Delivery(
                    id=f"msg_{i}", outbox_id=event_row.id, subscriber_id=other.id, status=state
                )
            )
        db.session.commit()
    samples = scrape(client)
    for state in ("pending", "delivered", "confirmed", "dead", "disabled"):
        assert value(samples, "lethe_webhook_deliveries", state=state) == states.count(state)
    assert value(samples, "lethe_webhook_dead_letters") == 3


def test_last_sweep_time_and_rows(app, client):
    samples = scrape(client)
    assert value(samples, "lethe_retention_last_sweep_timestamp_seconds") == 0
    now = utcnow()

    def run(policy, hours_ago, dry_run=False, **counts):
        at = now - timedelta(hours=hours_ago)
        return RetentionRun(
            policy=policy, started_at=at, finished_at=at, dry_run=dry_run, counts=counts
        )

    with app.app_context():
        db.session.add_all(
            [
                run("influence_topics", 48, expired=500, retained_removed=0, held=0),
                run("perk_awards", 48, expired=40, retained_removed=2, held=1),
                run("influence_topics", 2, expired=7, retained_removed=0, held=0),
                run("perk_awards", 2, expired=3, retained_removed=1, held=2),
                run("perk_awards", 1, dry_run=True, expired=999),  # says, does not sweep
            ]
        )
        db.session.commit()
    samples = scrape(client)
    stamp = value(samples, "lethe_retention_last_sweep_timestamp_seconds")
    assert abs(stamp - (now - timedelta(hours=2)).timestamp()) < 1
    assert value(samples, "lethe_retention_last_sweep_rows", outcome="expired") == 10
    assert value(samples, "lethe_retention_last_sweep_rows", outcome="retained_removed") == 1
    assert value(samples, "lethe_retention_last_sweep_rows", outcome="held") == 2


def test_audit_chain_length_counts_since_the_chain_began(app, client):
    def rows() -> int:
        with app.app_context():
            return db.session.query(AuditEvent).count()

    with app.app_context():
        for i in range(5):
            audit.record("test", "test.entry", target=str(i))
        db.session.commit()
    assert value(scrape(client), "lethe_audit_chain_length") == rows() == 5
    with app.app_context():
        audit_checkpoints.write()
        audit.record("test", "test.after")
        db.session.commit()
    entries = rows()
    assert value(scrape(client), "lethe_audit_chain_length") == entries
    with app.app_context():
        # What retention's pruning does: the entries up to the checkpoint go; the chain
        # goes on counting from its beginning.
        checkpoint = audit_checkpoints._latest()
        db.session.execute(AuditEvent.__table__.delete().where(AuditEvent.id <= checkpoint.last_id))
        db.session.commit()
    assert rows() < entries
    assert value(scrape(client), "lethe_audit_chain_length") == entries


def test_figures_cost_the_same_queries_whatever_the_ledger_holds(app, client, api_key):
    def count_statements() -> int:
        seen = []

        def listener(*args):
            if args[2].lstrip().upper().startswith("SELECT"):  # not a connection's set-up
                seen.append(args[2])

        with app.app_context():
            for engine in db.engines.values():
                event.listen(engine, "before_cursor_execute", listener)
            try:
                metrics.figures()
            finally:
                for engine in db.engines.values():
                    event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    empty = count_statements()
    assert client.post(API + "/members", json=member_body(1), headers=api_key).status_code == 201
    for _ in range(12):
        body = {"type": "access", "member_id": "m-1", "verified": True}
        assert client.post(API + "/requests", json=body, headers=api_key).status_code == 201
    deliver(app)
    assert count_statements() == empty <= 6


# --- /metrics: no person in it -------------------------------------------------------------

EMAIL = "zephyrine.quillfeather-7731@example.org"
NAME = "Zephyrine Quillfeather"
HANDLE = "@zquill7731"


def test_metrics_name_no_person_reference_or_token(app, client, api_key, mailbox):
    member = member_body(1, email=EMAIL, name=NAME, handle=HANDLE, member_id="m-zq-7731")
    assert client.post(API + "/members", json=member, headers=api_key).status_code == 201
    award = award_body(1, member_id="m-zq-7731")
    assert client.post(API + "/perk-awards", json=award, headers=api_key).status_code == 201
    references, ids = [], []
    for type_ in ("access", "erasure"):
        body = {"type": type_, "email": EMAIL}
        resp = client.post(API + "/requests", json=body, headers=api_key)
        assert resp.status_code == 201, resp.get_json()
        references.append(resp.get_json()["reference"])
        ids.append(resp.get_json()["id"])
    # The public form too, then its emailed link, and a page with the reference in its path.
    assert client.post("/requests/new", data={"type": "access", "email": EMAIL}).status_code == 303
    deliver(app)
    link = re.search(
        r"http://lethe\.test(/verify/[A-Za-z0-9_\-]+)", mailbox.body(mailbox.last_to(EMAIL))
    )
    token = link.group(1).rsplit("/", 1)[1]
    assert client.get(link.group(1)).status_code == 200
    located = client.post(link.group(1)).headers["Location"]
    references.append(located.rsplit("/", 1)[1])
    for ref in references:
        client.get(f"/requests/{ref}?email={EMAIL}")
        client.get(f"/requests/{ref}/report.json")
    body = client.get("/metrics").get_data(as_text=True)
    for personal in (EMAIL, "zephyrine", "quillfeather", NAME, HANDLE, "m-zq-7731", token):
        assert personal.lower() not in body.lower()
    assert "LR-" not in body
    for ref in references + ids:
        assert ref not in body
    # What the routes are called instead: their rules.
    assert 'route="/requests/<reference>"' in body
    assert 'route="/verify/<token>"' in body


# --- request ids and the access line -------------------------------------------------------


@pytest.mark.parametrize("given", ["abc", "req-1.2_3", "A" * 64, "0f" * 16])
def test_a_good_request_id_is_echoed(client, given):
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given",
    [None, "", "A" * 65, "has space", 'quote"d', "semi;colon", "slash/", "ümlaut", "{json}"],
)
def test_a_missing_or_bad_request_id_is_replaced_with_a_new_one(client, given):
    headers = {"X-Request-ID": given} if given is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_every_answer_carries_a_request_id(client):
    for path in ("/", "/no-such-page", "/api/v1/requests/LR-0000-0000", "/.well-known/jwks.json"):
        assert re.fullmatch(r"[0-9a-f]{32}", client.get(path).headers["X-Request-ID"]), path


def _access_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "lethe.access"]


def test_one_json_access_line_per_request(app, client, api_key, caplog):
    caplog.set_level(logging.INFO, logger="lethe.access")
    assert client.post(API + "/members", json=member_body(1), headers=api_key).status_code == 201
    body = {"type": "access", "email": EMAIL}
    filed = client.post(API + "/requests", json=body, headers=api_key).get_json()
    reference = filed["reference"]
    caplog.clear()
    resp = client.get(
        f"{API}/requests/{filed['id']}?email={EMAIL}",
        headers={**api_key, "X-Request-ID": "trace-42"},
    )
    assert resp.status_code == 200
    (line,) = _access_lines(caplog)
    assert set(line) == {"method", "route", "status", "duration_ms", "request_id"}
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/requests/<request_id>"
    assert line["status"] == 200
    assert line["request_id"] == "trace-42"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    raw = caplog.records[-1].getMessage()
    for leak in (reference, filed["id"], "email", "example.org"):
        assert leak not in raw


def test_access_line_for_an_unmatched_path_and_an_odd_method(client, caplog):
    caplog.set_level(logging.INFO, logger="lethe.access")
    client.get("/requests/LR-ABCD-EFGH/nothing-here?token=secret")
    client.open("/healthz", method="PROPFIND")
    lines = _access_lines(caplog)
    # A method the route does not take matches no rule either.
    assert [(x["route"], x["status"]) for x in lines] == [("unmatched", 404), ("unmatched", 405)]
    assert lines[1]["method"] == "OTHER"
    assert "LR-ABCD" not in caplog.text and "secret" not in caplog.text


def test_latency_histogram_by_rule_method_and_status_class(client):
    client.get("/healthz")
    client.get("/requests/LR-0000-0000/report.json")
    samples = scrape(client)
    ok = value(
        samples,
        "lethe_http_request_duration_seconds_count",
        route="/healthz",
        method="GET",
        status_class="2xx",
    )
    assert ok >= 1
    routes = {dict(labels).get("route") for (name, labels) in samples if "duration" in name}
    assert all(r == "unmatched" or r.startswith("/") for r in routes)
    assert not any("LR-" in r for r in routes)


# --- gunicorn: settings and many workers ---------------------------------------------------


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LETHE_BIND", "0.0.0.0:9000")
    monkeypatch.setenv("LETHE_WORKERS", "3")
    monkeypatch.setenv("LETHE_THREADS", "5")
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (settings["bind"], settings["workers"], settings["threads"]) == ("0.0.0.0:9000", 3, 5)
    assert settings["preload_app"] is True
    for name in ("LETHE_BIND", "LETHE_WORKERS", "LETHE_THREADS"):
        monkeypatch.delenv(name)
    defaults = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert defaults["bind"] == "127.0.0.1:8000" and defaults["threads"] == 8
    assert 1 <= defaults["workers"] <= 4


def test_one_scrape_counts_every_gunicorn_worker(app, tmp_path, monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR, whichever worker answers the scrape reports the
    requests every worker served (each worker would otherwise report its own)."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")  # a previous server's: removed
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    served = 30
    with serve(app, workers=2, config=str(ROOT / "gunicorn.conf.py")) as url:
        for _ in range(served):
            with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:  # noqa: S310
                assert resp.status == 200
        counts = set()
        for _ in range(4):
            with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:  # noqa: S310
                text_ = resp.read().decode()
            match = re.search(
                r'lethe_http_request_duration_seconds_count\{[^}]*route="/healthz"[^}]*\} (\S+)',
                text_,
            )
            counts.add(float(match.group(1)))
    assert counts == {served}
    assert not (folder / "counter_999999.db").exists()
    assert len(list(Path(folder).glob("histogram_*.db"))) >= 1
