"""Sending webhook deliveries, and what officers, subjects and subscribers see of them.

The worker delivers due deliveries: Standard Webhooks 1.0 headers and signature (the
``standardwebhooks`` library), the delivery's id as ``webhook-id`` on every retry, through
:mod:`rights.recipients.outbound_http` (the checked address pinned, no redirects followed, one
deadline per attempt). Failures back off exponentially with jitter over about three days, then
go to the dead-letter list; a 410 disables the subscription. Each delivery is claimed — its
attempt counted and leased — in a commit of its own before it is sent, so no database lock is
held while a receiver answers, any number of workers can run, and a worker killed mid-delivery
loses nothing: the delivery is sent again, same id, when the lease is over. Delivery is written
as steps (:mod:`storage.steps`): the claim's ``yield`` is that commit, made by the runner
before any POST.
"""

import http.client
import json
import logging
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from rights.errors import Forbidden, Invalid, NotFound
from rights.ledger import audit
from rights.recipients import outbound_http
from rights.recipients.webhook_events import ref_label
from rights.recipients.webhook_subscribers import STATES, STOPPED, check_target, secrets_of
from storage import trace, vault, wakeup
from storage.clock import utcnow
from storage.db import db
from storage.models import ApiKey, Delivery, OutboxMessage, Subscriber
from storage.steps import Steps, run_steps

log = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 12 * 3600
MAX_ATTEMPTS = 15  # 30 s doubling, capped at 12 h: about three days in all
BATCH = 200  # deliveries per deliver_due() call (one worker round)
CLAIM = 32  # claimed, sent and settled together
LEASE_SLACK_SECONDS = 5
_DELIVERY_ID = re.compile(r"msg_[0-9a-f]{24}")


def lease(timeout: float, size: int) -> timedelta:
    """How long a claimed batch of ``size`` is another worker's to leave alone: longer than its
    POSTs can take (each connects, then has its deadline; ``WEBHOOK_PARALLEL`` at once)."""
    waves = -(-size // max(1, current_app.config["WEBHOOK_PARALLEL"]))
    return timedelta(seconds=waves * 2 * timeout + LEASE_SLACK_SECONDS)


def _claim(limit: int, timeout: float) -> Steps[list[Delivery]]:
    """Take up to ``limit`` due deliveries: count their attempt and lease them, committed (a
    step of its own) before anything is sent, so no database lock is held while receivers
    answer and a worker killed mid-batch leaves them to be sent again (same ids) once the
    lease is over. On PostgreSQL workers skip rows another is claiming (SKIP LOCKED);
    everywhere the UPDATE only takes rows still due, so two workers never both win one."""
    now = utcnow()
    query = (
        select(Delivery.id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = db.session.execute(query).scalars().all()
    won = []
    if ids:
        won = (
            db.session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                )
                .values(
                    attempts=Delivery.attempts + 1, next_attempt_at=now + lease(timeout, len(ids))
                )
                .returning(Delivery.id)
            )
            .scalars()
            .all()
        )
    yield
    if not won:
        return []
    rows = db.session.execute(select(Delivery).where(Delivery.id.in_(won))).scalars().all()
    return sorted(rows, key=lambda d: (d.next_attempt_at, d.id))


def signed(delivery: Delivery, subscriber: Subscriber, body: str) -> dict:
    """Standard Webhooks headers for this attempt (one signature per live secret)."""
    now = utcnow()
    signatures = [Webhook(s).sign(delivery.id, now, body) for s in secrets_of(subscriber)]
    return {
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "Lethe-Webhooks/1.0",
    }


def body_of(delivery: Delivery) -> str:
    """The event as this subscriber gets it: with the delivery's id and, when the subscriber
    gave one, its own identifier for the subject — nothing it does not already hold."""
    event = db.session.get(OutboxMessage, delivery.outbox_id)
    payload = {**json.loads(event.payload_enc), "delivery": delivery.id}
    if delivery.recipient_ref_enc is not None:
        payload["recipient_subject_id"] = vault.unseal(
            ref_label(delivery.id), delivery.recipient_ref_enc
        ).decode()
    return json.dumps(payload, sort_keys=True)


def _backoff(attempts: int) -> timedelta:
    seconds = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def deliver_due(limit: int = BATCH) -> dict[str, int]:
    """:func:`deliver_due_steps` now, each step committed. Returns counts."""
    return run_steps(deliver_due_steps(limit))


def deliver_due_steps(limit: int = BATCH) -> Steps[dict[str, int]]:
    """Deliver due deliveries: claimed ``CLAIM`` at a time (a step each), their POSTs
    ``WEBHOOK_PARALLEL`` at once (one slow receiver does not hold up the others), each batch
    settled in one step. Each delivery gets its line on ``lethe.jobs`` once its batch is
    settled, with its event's trace id (:mod:`storage.trace`). Returns counts."""
    counts = {"delivered": 0, "retry": 0, "dead": 0, "disabled": 0}
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    remaining = limit
    while remaining > 0:
        batch = yield from _claim(min(CLAIM, remaining), timeout)
        if not batch:
            break
        remaining -= len(batch)
        events = _events_of(batch)
        lines = []
        for delivery, subscriber, code, error, seconds in _attempt_all(batch, timeout):
            outcome = _settle(delivery, subscriber, code, error)
            counts[outcome] += 1
            topic, trace_id = events.get(delivery.outbox_id, (None, None))
            lines.append(
                {
                    "kind": "webhook",
                    "topic": topic,
                    "outcome": outcome,
                    "attempt": delivery.attempts,
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": trace_id,
                    "status_code": code,  # the receiver's answer; never its body or the error
                }
            )
        yield
        for line in lines:
            trace.jobs_log.info(trace.json_line(line))
    return counts


def _events_of(batch: list[Delivery]) -> dict[str, tuple[str, str | None]]:
    """Each delivery's event: its topic and trace id, by outbox id (one query a batch)."""
    rows = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.trace_id).where(
            OutboxMessage.id.in_({d.outbox_id for d in batch})
        )
    )
    return {row.id: (row.topic, row.trace_id) for row in rows}


def _attempt_all(batch: list[Delivery], timeout: float):
    """Prepare each delivery here (database, vault, signing: this thread only), then POST them
    on a pool of threads that touch nothing but the network. Yields (delivery, subscriber,
    status code or None, error or None, seconds its POST took)."""
    subscribers = {
        s.id: s
        for s in db.session.execute(
            select(Subscriber).where(Subscriber.id.in_({d.subscriber_id for d in batch}))
        ).scalars()
    }
    ready = []
    for delivery in batch:
        subscriber = subscribers[delivery.subscriber_id]
        if not subscriber.active:
            yield delivery, subscriber, None, STOPPED, 0.0
            continue
        try:
            target = check_target(subscriber.url)
            body = body_of(delivery)
            ready.append((delivery, subscriber, target, body, signed(delivery, subscriber, body)))
        except Invalid as exc:
            yield delivery, subscriber, None, exc.message[:200], 0.0
        except Exception as exc:  # never let one delivery stop the others
            log.exception("webhook delivery %s could not be prepared", delivery.id)
            yield delivery, subscriber, None, f"internal error ({type(exc).__name__})", 0.0
    if not ready:
        return
    parallel = min(current_app.config["WEBHOOK_PARALLEL"], len(ready))
    if parallel <= 1:
        for delivery, subscriber, target, body, headers in ready:
            yield delivery, subscriber, *_post(target, body, headers, timeout)
        return
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {
            pool.submit(_post, target, body, headers, timeout): (delivery, subscriber)
            for delivery, subscriber, target, body, headers in ready
        }
        for future in as_completed(futures):
            delivery, subscriber = futures[future]
            yield delivery, subscriber, *future.result()


def _post(target, body: str, headers: dict, timeout: float):
    """One POST: (status code, None) or (None, what went wrong — no personal data), and the
    seconds it took."""
    started = time.perf_counter()
    code, error = _answer(target, body, headers, timeout)
    return code, error, time.perf_counter() - started


def _answer(target, body: str, headers: dict, timeout: float):
    try:
        return outbound_http.post(target, body.encode(), headers, timeout), None
    except TimeoutError:
        return None, "TimeoutError: no answer within the deadline"
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, TLS, bad answer
        return None, type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - reported on the delivery, never raised
        return None, f"internal error ({type(exc).__name__})"


def _settle(delivery: Delivery, subscriber: Subscriber, code: int | None, error: str | None):
    delivery.last_status_code, delivery.last_error = code, error
    if error == STOPPED:
        delivery.status = "disabled"
        return "disabled"
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.delivered_at = "delivered", utcnow()
        # Told: the recipient holds its identifier; Lethe's copy is not needed any more.
        delivery.recipient_ref_enc = None
        return "delivered"
    if code == 410:
        delivery.status = "disabled"
        subscriber.active = False
        subscriber.disabled_reason = "the receiver answered 410 Gone"
        audit.record(
            "lethe",
            "subscriber.disabled",
            target=f"subscriber:{subscriber.id}",
            details={"reason": "410"},
        )
        return "disabled"
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "dead"
        return "dead"
    delivery.next_attempt_at = utcnow() + _backoff(delivery.attempts)
    return "retry"


def recipients_of(request_id: str) -> list[dict]:
    """Who was told about a request's changes (Art. 19), with each delivery's state, in one
    query: the recipient's name, the event, the delivery id and when it was confirmed."""
    rows = db.session.execute(
        select(Delivery, Subscriber.name, OutboxMessage.topic)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
        .where(Delivery.request_id == request_id)
        .order_by(Delivery.created_at, Subscriber.name, Delivery.id)
    ).all()
    return [
        {
            "recipient": name,
            "event": topic,
            "delivery": d.id,
            "state": STATES[d.status],
            "confirmed_at": d.confirmed_at.isoformat() if d.confirmed_at else None,
        }
        for d, name, topic in rows
    ]


def find_delivery(delivery_id: object) -> Delivery | None:
    """The delivery with this id, or None — for anything that is not one of our ids too."""
    if not isinstance(delivery_id, str) or not _DELIVERY_ID.fullmatch(delivery_id):
        return None
    return db.session.get(Delivery, delivery_id)


def redeliver(delivery_id: str, *, actor: str) -> Delivery:
    """Put a failed delivery back in line with the same id (flushes): a dead one, or one
    stopped by a disabled subscription once the subscription is active again."""
    delivery = find_delivery(delivery_id)
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.status not in ("dead", "disabled"):
        raise Invalid("Only failed deliveries are redelivered.", {"status": [delivery.status]})
    if not db.session.get(Subscriber, delivery.subscriber_id).active:
        raise Invalid(
            "The subscription is disabled: enable it first.", {"subscriber": ["disabled"]}
        )
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    delivery.last_error = None
    audit.record(actor, "delivery.redelivered", target=f"delivery:{delivery.id}")
    wakeup.notify("webhooks")
    return delivery


def deliveries(
    *,
    subscriber_id: int | None = None,
    request_id: str | None = None,
    state: str | None = None,
    page: int = 1,
):
    """Deliveries newest first, 50 a page, by subscriber, request and state (pending, delivered,
    confirmed, failed). Returns the page and, per delivery on it, (subscriber name, event) —
    looked up for the whole page in one query."""
    query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc())
    if subscriber_id is not None:
        query = query.where(Delivery.subscriber_id == subscriber_id)
    if request_id is not None:
        query = query.where(Delivery.request_id == request_id)
    if state:
        query = query.where(Delivery.status.in_([k for k, v in STATES.items() if v == state]))
    result = db.paginate(query, page=page, per_page=50, error_out=False)
    labels = {
        d_id: (name, topic)
        for d_id, name, topic in db.session.execute(
            select(Delivery.id, Subscriber.name, OutboxMessage.topic)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
            .where(Delivery.id.in_([d.id for d in result.items]))
        )
    }
    return result, labels


def confirm(delivery_id: str, key: ApiKey) -> Delivery:
    """The subscriber says it has acted (flushes). Only its own deliveries."""
    delivery = find_delivery(delivery_id)
    subscriber = db.session.get(Subscriber, delivery.subscriber_id) if delivery else None
    if delivery is None or subscriber is None:
        raise NotFound("No such delivery.")
    if subscriber.api_key_id != key.id:
        raise Forbidden("This delivery went to another subscriber.")
    if delivery.status not in ("delivered", "confirmed"):
        raise Invalid("Not delivered yet.", {"status": [delivery.status]})
    if delivery.confirmed_at is None:
        delivery.status, delivery.confirmed_at = "confirmed", utcnow()
        audit.record(
            f"subscriber:{subscriber.id}", "delivery.confirmed", target=f"delivery:{delivery.id}"
        )
    return delivery
