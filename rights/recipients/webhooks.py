"""Signed webhooks to downstream recipients (Art. 19), with guaranteed delivery.

Events are written to the outbox with the change that causes them
(:mod:`rights.recipients.downstream`), with one :class:`Delivery` per subscriber that wants it,
in the same transaction (rectification, erasure and restriction go to every subscriber). The
worker delivers due deliveries: Standard Webhooks 1.0 headers and signature (the
``standardwebhooks`` library), the delivery's id as ``webhook-id`` on every retry, through
:mod:`rights.recipients.outbound_http` (the checked address pinned, no redirects followed, one
deadline per attempt). Failures back off exponentially with jitter over about three days, then
go to the dead-letter list; a 410 disables the subscription. Each delivery is claimed — its
attempt counted and leased — in a commit of its own before it is sent, so no database lock is
held while a receiver answers, any number of workers can run, and a worker killed mid-delivery
loses nothing: the delivery is sent again, same id, when the lease is over. """

import base64
import http.client
import json
import logging
import random
import re
import secrets
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from rights.errors import Forbidden, Invalid, NotFound
from rights.ledger import apikeys, audit
from rights.recipients import outbound_http
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    ApiKey,
    Delivery,
    OutboxMessage,
    RecipientIdentifier,
    RightsRequest,
    Subject,
    Subscriber,
)

log = logging.getLogger(__name__)
EVENTS = (
    "subject.erased",
    "subject.rectified",
    "subject.restricted",
    "subject.restriction_lifted",
    "subject.objected",
    "consent.withdrawn",
)
# Art. 19: rectification, erasure and restriction are told to every recipient, whatever else
# it chose to hear.
ALWAYS = ("subject.erased", "subject.rectified", "subject.restricted")
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 12 * 3600
MAX_ATTEMPTS = 15  # 30 s doubling, capped at 12 h: about three days in all
BATCH = 200  # deliveries per deliver_due() call (one worker round)
CLAIM = 32  # claimed, sent and settled together
STOPPED = "subscription disabled"  # why a delivery waits
LEASE_SLACK_SECONDS = 5
_DELIVERY_ID = re.compile(r"msg_[0-9a-f]{24}")


def _seal_label(subscriber_id: int) -> str:
    return f"webhook-secret:{subscriber_id}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_target(url: str) -> outbound_http.Target:
    """Refuse URLs Lethe must not call (see :mod:`rights.recipients.outbound_http`); the checked
    target."""
    cfg = current_app.config
    return outbound_http.resolve(
        url,
        allow_private=cfg["WEBHOOK_ALLOW_PRIVATE_TARGETS"],
        https_only=cfg["ENV_NAME"] == "production" and not cfg["WEBHOOK_ALLOW_PRIVATE_TARGETS"],
    )


def add(name: str, url: str, events: list[str], *, actor: str) -> tuple[Subscriber, str, str]:
    """Register a subscriber (flushes): returns it, its whsec_ secret and its API key (for
    confirmations), both shown once."""
    errors = {}
    if not (name or "").strip():
        errors["name"] = ["required"]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        errors["events"] = [f"known events: {', '.join(EVENTS)}"]
    if errors:
        raise Invalid("The subscriber cannot be added.", errors)
    url = outbound_http.normalise(url)
    check_target(url)
    key_row, key = apikeys.create(f"subscriber {name.strip()}", ["deliveries:confirm"], actor=actor)
    subscriber = Subscriber(
        name=name.strip(), url=url, events=sorted(set(events) | set(ALWAYS)), api_key_id=key_row.id
    )
    db.session.add(subscriber)
    db.session.flush()
    secret = new_secret()
    subscriber.secret_enc = vault.seal(_seal_label(subscriber.id), secret.encode())
    audit.record(
        actor,
        "subscriber.added",
        target=f"subscriber:{subscriber.id}",
        details={"events": subscriber.events},
    )
    return subscriber, secret, key


def rotate_secret(subscriber: Subscriber, *, actor: str, overlap_hours: int = 24) -> str:
    """A new secret; the old one keeps signing alongside for ``overlap_hours``."""
    subscriber.previous_secret_enc = subscriber.secret_enc
    subscriber.previous_secret_until = utcnow() + timedelta(hours=overlap_hours)
    secret = new_secret()
    subscriber.secret_enc = vault.seal(_seal_label(subscriber.id), secret.encode())
    audit.record(actor, "subscriber.secret_rotated", target=f"subscriber:{subscriber.id}")
    return secret


def _secrets(subscriber: Subscriber) -> list[str]:
    out = [vault.unseal(_seal_label(subscriber.id), subscriber.secret_enc).decode()]
    if (
        subscriber.previous_secret_enc
        and subscriber.previous_secret_until
        and (utcnow() < subscriber.previous_secret_until)
    ):
        out.append(
            vault.unseal(_seal_label(subscriber.id), subscriber.previous_secret_enc).decode()
        )
    return out


def wants(subscriber: Subscriber, topic: str) -> bool:
    return topic in ALWAYS or topic in (subscriber.events or [])


def fan_out(event: OutboxMessage, subject_id: str | None) -> list[Delivery]:
    """One delivery per subscriber that wants ``event``, written in the transaction of the
    change (flushes), each carrying the subscriber's own identifier for the subject when it
    gave one. A disabled subscription's delivery waits, stopped, until it is enabled again:
    the recipient still has to be told. Subscribers added later are not told: they never
    received the data."""
    subscribers = [
        s
        for s in db.session.execute(select(Subscriber).order_by(Subscriber.id)).scalars()
        if wants(s, event.topic)
    ]
    refs = _identifiers(subject_id, [s.id for s in subscribers]) if subject_id else {}
    made = []
    for sub in subscribers:
        delivery = Delivery(
            id="msg_" + secrets.token_hex(12),
            outbox_id=event.id,
            subscriber_id=sub.id,
            request_id=event.request_id,
            next_attempt_at=utcnow(),
        )
        if not sub.active:
            delivery.status, delivery.last_error = "disabled", STOPPED
        if sub.id in refs:
            delivery.recipient_ref_enc = vault.seal(_ref_label(delivery.id), refs[sub.id].encode())
        db.session.add(delivery)
        made.append(delivery)
    event.status, event.sent_at = "sent", utcnow()
    db.session.flush()
    return made


def fan_out_left_over(limit: int = 200) -> int:
    """Events written before deliveries were made with them (an older release left them
    pending): give them their deliveries now (commits). Returns how many events."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.kind == "event", OutboxMessage.status == "pending")
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = db.session.execute(query).scalars().all()
    for event in events:
        fan_out(event, None)
    db.session.commit()
    return len(events)


def _ref_label(delivery_id: str) -> str:
    return f"recipient-ref:{delivery_id}"


def _identifiers(subject_id: str, subscriber_ids: list[int]) -> dict[int, str]:
    if not subscriber_ids:
        return {}
    rows = db.session.execute(
        select(RecipientIdentifier).where(
            RecipientIdentifier.subject_id == subject_id,
            RecipientIdentifier.subscriber_id.in_(subscriber_ids),
        )
    ).scalars()
    return {
        r.subscriber_id: vault.decrypt(
            subject_id, "recipient_identifiers.identifier_enc", r.identifier_enc
        )
        for r in rows
    }


def forget_identifiers(subject_id: str, *, subscriber_id: int | None = None, keep=None) -> int:
    """Drop the copies of a subscriber's identifier for the subject that deliveries not yet
    sent carry (flushes): when it is forgotten, or the person is erased (``keep``: the
    erasure's own request, whose deliveries still have to tell it). Returns how many."""
    requests_of = select(RightsRequest.id).where(RightsRequest.subject_id == subject_id)
    query = update(Delivery).where(
        Delivery.request_id.in_(requests_of), Delivery.recipient_ref_enc.is_not(None)
    )
    if subscriber_id is not None:
        query = query.where(Delivery.subscriber_id == subscriber_id)
    if keep is not None:
        query = query.where(Delivery.request_id != keep)
    return db.session.execute(query.values(recipient_ref_enc=None)).rowcount


def set_identifier(
    subscriber_id: int, subject_id: str, identifier: str | None, *, actor: str
) -> bool:
    """Record (or, with None, forget) what a subscriber calls the subject (flushes; audited
    without the identifier). Returns whether one is recorded now."""
    if db.session.get(Subscriber, subscriber_id) is None:
        raise Invalid("Unknown subscriber.", {"subscriber_id": ["no such subscriber"]})
    row = db.session.execute(
        select(RecipientIdentifier).where(
            RecipientIdentifier.subject_id == subject_id,
            RecipientIdentifier.subscriber_id == subscriber_id,
        )
    ).scalar_one_or_none()
    subject_ref = db.session.get(Subject, subject_id).ref
    audit.record(
        actor,
        "recipient_identifier.forgotten" if identifier is None else "recipient_identifier.set",
        subject_ref=subject_ref,
        target=f"subscriber:{subscriber_id}",
    )
    if identifier is None:
        if row is not None:
            db.session.delete(row)
        forget_identifiers(subject_id, subscriber_id=subscriber_id)
        db.session.flush()
        return False
    sealed = vault.encrypt(subject_id, "recipient_identifiers.identifier_enc", identifier)
    if row is None:
        row = RecipientIdentifier(subscriber_id=subscriber_id, subject_id=subject_id)
        db.session.add(row)
    row.identifier_enc, row.created_at = sealed, utcnow()
    db.session.flush()
    return True


def lease(timeout: float, size: int) -> timedelta:
    """How long a claimed batch of ``size`` is another worker's to leave alone: longer than its
    POSTs can take (each connects, then has its deadline; ``WEBHOOK_PARALLEL`` at once)."""
    waves = -(-size // max(1, current_app.config["WEBHOOK_PARALLEL"]))
    return timedelta(seconds=waves * 2 * timeout + LEASE_SLACK_SECONDS)


def _claim(limit: int, timeout: float) -> list[Delivery]:
    """Take up to ``limit`` due deliveries: count their attempt and lease them, committed
    before anything is sent, so no database lock is held while receivers answer and a worker
    killed mid-batch leaves them to be sent again (same ids) once the lease is over. On
    PostgreSQL workers skip rows another is claiming (SKIP LOCKED); everywhere the UPDATE
    only takes rows still due, so two workers never both win one."""
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
    db.session.commit()
    if not won:
        return []
    rows = db.session.execute(select(Delivery).where(Delivery.id.in_(won))).scalars().all()
    return sorted(rows, key=lambda d: (d.next_attempt_at, d.id))


def signed(delivery: Delivery, subscriber: Subscriber, body: str) -> dict:
    """Standard Webhooks headers for this attempt (one signature per live secret)."""
    now = utcnow()
    signatures = [Webhook(s).sign(delivery.id, now, body) for s in _secrets(subscriber)]
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
            _ref_label(delivery.id), delivery.recipient_ref_enc
        ).decode()
    return json.dumps(payload, sort_keys=True)


def _backoff(attempts: int) -> timedelta:
    seconds = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def deliver_due(limit: int = BATCH) -> dict[str, int]:
    """Deliver due deliveries (commits): claimed ``CLAIM`` at a time, their POSTs
    ``WEBHOOK_PARALLEL`` at once (one slow receiver does not hold up the others), each batch
    settled in one commit. Returns counts."""
    counts = {"delivered": 0, "retry": 0, "dead": 0, "disabled": 0}
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    remaining = limit
    while remaining > 0:
        batch = _claim(min(CLAIM, remaining), timeout)
        if not batch:
            break
        remaining -= len(batch)
        for delivery, subscriber, code, error in _attempt_all(batch, timeout):
            counts[_settle(delivery, subscriber, code, error)] += 1
        db.session.commit()
    return counts


def _attempt_all(batch: list[Delivery], timeout: float):
    """Prepare each delivery here (database, vault, signing: this thread only), then POST them
    on a pool of threads that touch nothing but the network. Yields (delivery, subscriber,
    status code or None, error or None)."""
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
            yield delivery, subscriber, None, STOPPED
            continue
        try:
            target = check_target(subscriber.url)
            body = body_of(delivery)
            ready.append((delivery, subscriber, target, body, signed(delivery, subscriber, body)))
        except Invalid as exc:
            yield delivery, subscriber, None, exc.message[:200]
        except Exception as exc:  # never let one delivery stop the others
            log.exception("webhook delivery %s could not be prepared", delivery.id)
            yield delivery, subscriber, None, f"internal error ({type(exc).__name__})"
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
    """One POST: (status code, None) or (None, what went wrong — no personal data)."""
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


# What a delivery's status means to a person reading it.
STATES = {
    "pending": "pending",
    "delivered": "delivered",
    "confirmed": "confirmed",
    "dead": "failed",
    "disabled": "failed",
}


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
    return delivery


def get(subscriber_id) -> Subscriber | None:
    try:
        return db.session.get(Subscriber, int(subscriber_id))
    except (TypeError, ValueError):
        return None


def set_active(subscriber: Subscriber, active: bool, *, actor: str) -> int:
    """Disable or enable a subscription (flushes). Enabling puts the deliveries its disabling
    stopped back in line: the recipients still have to be told. Returns how many."""
    subscriber.active = active
    resumed = 0
    if active:
        subscriber.disabled_reason = None
        resumed = db.session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == subscriber.id, Delivery.status == "disabled")
            .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
        ).rowcount
    else:
        subscriber.disabled_reason = "disabled by an admin"
    audit.record(
        actor,
        "subscriber.enabled" if active else "subscriber.disabled",
        target=f"subscriber:{subscriber.id}",
        details={"resumed": resumed} if active else {"reason": "admin"},
    )
    db.session.flush()
    return resumed


def overview() -> list[tuple[Subscriber, dict[str, int]]]:
    """Every subscriber with its deliveries counted by state (one grouped query)."""
    subscribers = db.session.execute(select(Subscriber).order_by(Subscriber.name)).scalars().all()
    counts = {
        s.id: dict.fromkeys(("pending", "delivered", "confirmed", "failed"), 0) for s in subscribers
    }
    for sub_id, status, n in db.session.execute(
        select(Delivery.subscriber_id, Delivery.status, func.count()).group_by(
            Delivery.subscriber_id, Delivery.status
        )
    ):
        counts[sub_id][STATES[status]] += n
    return [(s, counts[s.id]) for s in subscribers]


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
