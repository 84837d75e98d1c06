"""The outbox: side effects written with their cause, delivered by the worker after commit.

Delivery claims one due message at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any
number of workers can run), sends it and commits, so a crash re-sends at most the message in
hand. Failures back off exponentially; after ``MAX_ATTEMPTS`` a message is marked dead.
Delivery is written as steps (:mod:`storage.steps`): each ``yield`` is a commit, which the
runner (the worker's round, :mod:`rights.jobs`) makes.

Workers may take only some kinds (a ``mail`` worker emails, a ``jobs`` worker jobs: a long
erasure never holds up a verification email), and queuing wakes the workers of that kind on
PostgreSQL (:func:`storage.wakeup.notify`, at commit) instead of leaving the row to a poll.

Every message carries a trace id (:mod:`storage.trace`): the id of the HTTP request that queued
it, or — for what a job queues — the trace id of that job's message, which the worker binds
while it runs the job; a message queued outside both (a CLI command, a sweep) starts a trace of
its own (a new uuid4 hex). The worker writes one JSON line per message it handles on the logger
``lethe.jobs``: its kind, topic, outcome, attempt, time taken and trace id (as ``request_id``,
as on the access line) — never an address, a subject, a reference or an error's text (at most
its class). One batch's emails share one SMTP session (:class:`rights.delivery.mail.Session`).
"""

import json
import logging
import random
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from rights.delivery import mail
from storage import trace, vault, wakeup
from storage.clock import utcnow
from storage.db import db
from storage.models import OutboxMessage
from storage.steps import Steps

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12


JOB_LEASE = timedelta(minutes=10)
# Which workers each kind wakes (the worker's roles, rights.jobs.ROLES).
ROLE_OF_KIND = {"email": "mail", "job": "jobs"}


class JobFailed(Exception):
    pass


def enqueue_email(
    *,
    subject_id: str,
    to: str,
    title: str,
    body: str,
    topic: str,
    request_id: str | None,
    sealed_with: str = "subject",
) -> OutboxMessage:
    """Queue an email to a subject (flushes). The whole message is encrypted with their key,
    or, for the last message to a person being erased, sealed with the service key and wiped
    once sent (``sealed_with="service"``)."""
    msg = OutboxMessage(
        kind="email",
        topic=topic,
        subject_id=subject_id,
        request_id=request_id,
        sealed_with=sealed_with,
        trace_id=trace.current_or_new(),
    )
    payload = {"to": to, "subject": title, "body": body}
    if sealed_with == "service":
        msg.payload_enc = vault.seal("outbox", json.dumps(payload).encode())
    else:
        msg.payload_enc = vault.encrypt_json(subject_id, "outbox.payload_enc", payload)
    db.session.add(msg)
    db.session.flush()
    wakeup.notify(ROLE_OF_KIND["email"])
    return msg


def enqueue_job(
    topic: str,
    *,
    request_id: str | None = None,
    subject_id: str | None = None,
    argument: str | None = None,
) -> OutboxMessage:
    """Queue background work for the worker (flushes). Jobs carry ids only: the request's, or
    — for work that must not look anything up where it is queued, so that queuing costs the
    same whatever exists — one ``argument`` (a request reference, never personal data) that
    the handler receives instead."""
    msg = OutboxMessage(
        kind="job",
        topic=topic,
        request_id=request_id,
        subject_id=subject_id,
        payload_enc=argument.encode() if argument else b"",
        sealed_with="none",
        trace_id=trace.current_or_new(),
    )
    db.session.add(msg)
    db.session.flush()
    wakeup.notify(ROLE_OF_KIND["job"])
    return msg


def enqueue_event(topic: str, *, request_id: str | None, body: dict) -> OutboxMessage:
    """Queue an event for downstream recipients (Art. 19), in the transaction of the change
    that causes it (flushes). Bodies are thin — a pseudonymous reference, record ids, what to
    do — never personal data, so they are stored as they are."""
    # Not linked to the subject row: the body names them only by their pseudonymous reference,
    # and the subject's notices (the data map's "notices") are the emails sent to them.
    msg = OutboxMessage(
        kind="event",
        topic=topic,
        subject_id=None,
        request_id=request_id,
        payload_enc=json.dumps(body, sort_keys=True).encode(),
        sealed_with="none",
        trace_id=trace.current_or_new(),
    )
    db.session.add(msg)
    db.session.flush()
    return msg


# Kinds this worker delivers. Events wait for their subscribers' delivery (webhooks).
DELIVERED_KINDS = ("email", "job")


def _claim_one(kinds: tuple[str, ...]) -> OutboxMessage | None:
    """The next due message of ``kinds``, locked on PostgreSQL (skipping rows another worker
    holds) until this message's step commits."""
    if not set(kinds) <= set(DELIVERED_KINDS):
        raise ValueError(f"the worker delivers only {DELIVERED_KINDS}, not {kinds}")
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= utcnow(),
            OutboxMessage.kind.in_(tuple(kinds)),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.execute(query).scalar_one_or_none()


def _deliver(msg: OutboxMessage, smtp: mail.Session | None = None) -> None:
    if msg.kind != "email":
        raise ValueError(f"unknown outbox kind {msg.kind}")
    if msg.sealed_with == "service":
        payload = json.loads(vault.unseal("outbox", msg.payload_enc))
    else:
        payload = vault.decrypt_json(msg.subject_id, "outbox.payload_enc", msg.payload_enc)
    email = mail.build(payload["to"], payload["subject"], payload["body"], msg.id)
    # The last message to an erased person (service-sealed) does not bring their development
    # mail folder back: it goes with everyone's, a week after it was written.
    mail.send(
        email,
        subject_id=msg.subject_id if msg.sealed_with != "service" else None,
        session=smtp,
    )


def _finish(msg: OutboxMessage, status: str) -> None:
    msg.status = status
    if status == "sent":
        msg.sent_at = utcnow()
    if msg.sealed_with == "service" and status in ("sent", "dead"):
        msg.payload_enc = b""  # the only copy of an erased person's address: gone once used


def _run_job(msg: OutboxMessage, handlers: dict) -> Steps[int]:
    """Run a job under a lease: claimed rows are pushed ``JOB_LEASE`` ahead and committed, so
    no other worker takes the job while it runs (jobs commit as they go: their steps are this
    delivery's); a worker killed mid-job leaves it to be taken again, and jobs are written to
    resume. Returns the attempt it was."""
    handler = handlers.get(msg.topic)
    if handler is None:
        raise ValueError(f"no handler for job {msg.topic}")
    msg_id = msg.id
    msg.attempts += 1
    msg.next_attempt_at = utcnow() + JOB_LEASE
    argument = msg.payload_enc.decode() if msg.payload_enc else msg.request_id
    yield
    yield from handler(argument)
    yield
    msg = db.session.get(OutboxMessage, msg_id)
    _finish(msg, "sent")
    return msg.attempts


def deliver_due_steps(
    limit: int | None = None,
    handlers: dict | None = None,
    *,
    kinds: tuple[str, ...] = DELIVERED_KINDS,
    stop=None,
) -> Steps[dict]:
    """Deliver due messages and run due jobs until none is due (or ``limit`` were handled),
    each message settled in a step of its own. ``handlers`` maps job topics to generators of
    steps taking a request id (or the job's argument); ``kinds`` are the kinds taken
    (``DELIVERED_KINDS``: all); ``stop``, when given, is asked before each message and ends the
    batch when it says so (the worker was told to stop). The batch's emails share one SMTP
    session, opened at the first and closed when the batch ends, however it ends. Each message
    is handled under its trace id, and gets its line on ``lethe.jobs``. Returns counts."""
    limit = limit or current_app.config["OUTBOX_BATCH"]
    counts = {"sent": 0, "retry": 0, "dead": 0}
    with mail.Session() as smtp:
        for _ in range(limit):
            msg = None if stop is not None and stop() else _claim_one(kinds)
            if msg is None:
                break
            with trace.bound(msg.trace_id):
                line = yield from _handle(msg, handlers or {}, smtp)
            counts[line["outcome"]] += 1
            trace.jobs_log.info(trace.json_line(line))
    if any(counts.values()):
        log.info("outbox: %s", counts)
    return counts


def _handle(msg: OutboxMessage, handlers: dict, smtp: mail.Session) -> Steps[dict]:
    """Send one message or run one job, settle it and commit (the last step). Returns its
    line for ``lethe.jobs``, written once the outcome is committed."""
    started = time.perf_counter()
    msg_id, kind, topic, trace_id = msg.id, msg.kind, msg.topic, msg.trace_id
    error = None
    try:
        if kind == "job":
            try:
                attempt = yield from _run_job(msg, handlers)
            except vault.KeyMissing as exc:
                # A job is retried, never dead-lettered for a missing key: jobs resume.
                raise JobFailed("job met a destroyed subject key") from exc
        else:
            _deliver(msg, smtp)
            msg.attempts += 1
            attempt = msg.attempts
            _finish(msg, "sent")
    except vault.KeyMissing as exc:
        # The subject was erased after this was queued: nothing may be sent any more.
        db.session.rollback()
        msg = db.session.get(OutboxMessage, msg_id)
        msg.last_error = "subject key destroyed"
        _finish(msg, "dead")
        outcome, error, attempt = "dead", type(exc).__name__, msg.attempts
    except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
        db.session.rollback()
        msg = db.session.get(OutboxMessage, msg_id)
        if msg.kind != "job":
            msg.attempts += 1
        msg.last_error = type(exc).__name__  # never the text: it may quote an address
        error = msg.last_error
        if msg.attempts >= MAX_ATTEMPTS:
            _finish(msg, "dead")
            outcome = "dead"
        else:
            delay = min(2**msg.attempts * 30, 6 * 3600) * random.uniform(0.8, 1.2)
            msg.next_attempt_at = utcnow() + timedelta(seconds=delay)
            outcome = "retry"
        log.warning("outbox %s failed (%s), attempt %d", msg.id, msg.last_error, msg.attempts)
        attempt = msg.attempts
    else:
        outcome = "sent"
    yield
    line = {
        "kind": kind,
        "topic": topic,
        "outcome": outcome,
        "attempt": attempt,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "request_id": trace_id,
    }
    if error is not None:
        line["error"] = error  # the exception's class, never its text
    return line
