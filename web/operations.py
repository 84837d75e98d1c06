"""What a load balancer, an orchestrator and Prometheus ask of Lethe.

- ``GET /healthz``: the process answers ("ok"), nothing else is touched — a liveness probe
  must not fail, and restart the process, because a database is away.
- ``GET /readyz``: the main database and the key store answer, and each is at the migrations'
  head (both binds Lethe migrates): 200, else 503 naming the checks that failed — never a
  connection string or an error's text, which can carry both.
- ``GET /metrics``: Prometheus text. Request latency by route rule (never a path), method and
  status class, observed in the process (in prometheus-client's multiprocess files when
  ``PROMETHEUS_MULTIPROC_DIR`` is set, so that one scrape sees every gunicorn worker); the
  ledger's figures read from the database at scrape time (rights/reports/metrics.py). Open in
  development and tests while ``METRICS_TOKEN`` is unset; otherwise, and always in production,
  only with ``Authorization: Bearer <METRICS_TOKEN>``.

None of them uses a session, CSRF or a rate limit: probes come every few seconds, from
addresses that a limit would soon refuse, and need no cookie.
"""

import hashlib
import hmac
import logging
import os

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from rights.reports import metrics
from storage.db import db

bp = Blueprint("operations", __name__)
log = logging.getLogger(__name__)

# The binds Lethe migrates (migrations/env.py): the main database and the key store.
BINDS = {"database": None, "keystore": "keystore"}

# No "_created" series beside each histogram: it doubles the output and says only when this
# process first saw a route.
disable_created_metrics()
LATENCY = Histogram(
    "lethe_http_request_duration_seconds",
    "Time to answer a request, by URL rule, method and status class.",
    ["route", "method", "status_class"],
)


# --- liveness and readiness --------------------------------------------------------------


@bp.get("/healthz")
def healthz():
    return current_app.response_class("ok", mimetype="text/plain")


_heads: dict[str, frozenset[str]] = {}


def _migration_heads() -> frozenset[str]:
    """The head revision(s) of migrations/, read once per process (the files do not change
    under a running process; a deployment restarts it)."""
    migrate = current_app.extensions["migrate"]
    if migrate.directory not in _heads:
        script = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
        _heads[migrate.directory] = frozenset(script.get_heads())
    return _heads[migrate.directory]


def _probe(bind_key: str | None, heads: frozenset[str]) -> tuple[bool, bool | None]:
    """(answers a trivial query, is at the head — None when it did not answer). Only the
    error's class is logged: its text may hold the connection string."""
    name = bind_key or "database"
    try:
        conn = db.engines[bind_key].connect()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("readyz: %s unreachable (%s)", name, type(exc).__name__)
        return False, None
    with conn:
        try:
            conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("readyz: %s unreachable (%s)", name, type(exc).__name__)
            return False, None
        try:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("readyz: %s migrations unread (%s)", name, type(exc).__name__)
            return True, False
    return True, current == heads


def readiness() -> dict[str, str]:
    """Each check's outcome: ``ok``, ``unreachable``, ``not_current`` or ``unknown`` (the
    migrations of a database that did not answer)."""
    heads = _migration_heads()
    checks = {}
    for name, bind_key in BINDS.items():
        answers, current = _probe(bind_key, heads)
        checks[name] = "ok" if answers else "unreachable"
        checks[f"{name}_migrations"] = {True: "ok", False: "not_current", None: "unknown"}[current]
    return checks


@bp.get("/readyz")
def readyz():
    checks = readiness()
    failed = sorted(name for name, outcome in checks.items() if outcome != "ok")
    body = {"status": "not_ready" if failed else "ready", "checks": checks, "failed": failed}
    return jsonify(body), 503 if failed else 200


# --- metrics -----------------------------------------------------------------------------


def _status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


def observe_latency(method: str, route: str, status: int, seconds: float) -> None:
    """A request's time in the histogram (web/logging.py calls it at the end of each one)."""
    LATENCY.labels(route, method, _status_class(status)).observe(seconds)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _refused():
    """None when this scrape may read the metrics, else the answer. Compared as digests in
    constant time: neither the token's bytes nor its length show in the time taken."""
    token = current_app.config.get("METRICS_TOKEN")
    token = str(token) if token not in (None, "") else None  # LETHE_ values may parse as JSON
    if not token:
        if current_app.config["ENV_NAME"] == "production":
            return current_app.response_class("not found", 404, mimetype="text/plain")
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(_digest(given.strip()), _digest(token)):
        return None
    return current_app.response_class(
        "unauthorized", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain"
    )


def _gauge(name: str, doc: str, labels: tuple[str, ...] = (), values: dict | None = None):
    """A gauge family; ``values`` maps label values (a tuple, or one string) to a value."""
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for key, value in (values or {}).items():
        family.add_metric([key] if isinstance(key, str) else list(key), value)
    return family


def _ledger_families(figures: metrics.Figures | None) -> list:
    up = _gauge(
        "lethe_metrics_database_up",
        "1 when the ledger's figures below were read.",
        values={(): 0 if figures is None else 1},
    )
    if figures is None:
        return [up]
    sweep = figures.last_sweep_at
    return [
        up,
        _gauge(
            "lethe_requests_open",
            "Rights requests not yet answered, by status and whole days left to the deadline.",
            ("status", "days_left"),
            figures.requests_open,
        ),
        _gauge(
            "lethe_outbox_backlog",
            "Outbox messages waiting to be sent or run, by kind.",
            ("kind",),
            figures.outbox_backlog,
        ),
        _gauge(
            "lethe_outbox_oldest_age_seconds",
            "Age of the oldest waiting outbox message, by kind (0 when none waits).",
            ("kind",),
            figures.outbox_oldest_age_seconds,
        ),
        _gauge(
            "lethe_webhook_deliveries",
            "Webhook deliveries by state.",
            ("state",),
            figures.webhook_deliveries,
        ),
        _gauge(
            "lethe_webhook_dead_letters",
            "Webhook deliveries given up after every retry.",
            values={(): figures.webhook_dead_letters},
        ),
        _gauge(
            "lethe_retention_last_sweep_timestamp_seconds",
            "When the last retention sweep finished (Unix time; 0: never).",
            values={(): sweep.timestamp() if sweep else 0},
        ),
        _gauge(
            "lethe_retention_last_sweep_rows",
            "Rows the last sweep expired, removed at the end of retention, or kept for a hold.",
            ("outcome",),
            figures.last_sweep_rows,
        ),
        _gauge(
            "lethe_audit_chain_length",
            "Entries in the audit trail's hash chain since it began.",
            values={(): figures.audit_chain_length},
        ),
        _gauge(
            "lethe_transparency_log_size",
            "Leaves in the transparency log's latest signed checkpoint.",
            values={(): figures.log_size},
        ),
        _gauge(
            "lethe_transparency_log_pending",
            "Signed documents waiting to be appended to the transparency log.",
            values={(): figures.log_pending},
        ),
        _gauge(
            "lethe_transparency_log_oldest_pending_age_seconds",
            "Age of the oldest document waiting for the log (0: none waits).",
            values={(): figures.log_oldest_pending_seconds},
        ),
    ]


class _Scrape:
    """One scrape: the process's (or every worker's) latency histogram and the ledger."""

    def __init__(self, process, ledger: list):
        self.process, self.ledger = process, ledger

    def collect(self):
        yield from self.process.collect()
        yield from self.ledger


def _process_registry():
    """Every gunicorn worker's samples when PROMETHEUS_MULTIPROC_DIR is set (each writes its
    own files there), else this process's own registry."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@bp.get("/metrics")
def scrape():
    refused = _refused()
    if refused is not None:
        return refused
    try:
        figures = metrics.figures()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("metrics: ledger figures unread (%s)", type(exc).__name__)
        figures = None
    body = generate_latest(_Scrape(_process_registry(), _ledger_families(figures)))
    return current_app.response_class(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
