"""Signed webhooks to downstream recipients (Art. 19), with guaranteed delivery.

Events are written to the outbox with the change that causes them (:mod:`rights.downstream`),
with one :class:`Delivery` per subscriber that wants it, in the same transaction. The worker
delivers due deliveries: Standard Webhooks 1.0 headers and signature (the ``standardwebhooks``
library), the delivery's id as ``webhook-id`` on every retry, a timeout, no redirects followed.
Failures back off exponentially with jitter over about three days, then go to the dead-letter
list; a 410 disables the subscription. Targets that resolve to private, loopback or link-local
addresses are refused unless ``WEBHOOK_ALLOW_PRIVATE_TARGETS`` (tests, local receivers).
Deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and committed one by one,
so any number of workers can run and a worker killed mid-delivery loses nothing.
"""

import base64
import ipaddress
import json
import logging
import random
import secrets
import socket
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from rights import apikeys, audit
from rights.errors import Forbidden, Invalid, NotFound
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import ApiKey, Delivery, OutboxMessage, RecipientIdentifier, Subscriber

log = logging.getLogger(__name__)
EVENTS = (
    "subject.erased",
    "subject.rectified",
    "subject.restricted",
    "subject.restriction_lifted",
    "subject.objected",
    "consent.withdrawn",
)
FIRST_RETRY_SECONDS = 30
MAX_BACKOFF_SECONDS = 12 * 3600
MAX_ATTEMPTS = 15  # 30 s doubling, capped at 12 h: about three days in all
BATCH = 50


def _seal_label(subscriber_id: int) -> str:
    return f"webhook-secret:{subscriber_id}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_target(url: str) -> None:
    """Refuse URLs Lethe must not call: not http(s), or resolving to an internal address."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("The URL must be http(s)://host/…", {"url": ["an http or https URL"]})
    if current_app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]:
        return
    if current_app.config["ENV_NAME"] == "production" and parts.scheme != "https":
        raise Invalid("Webhook URLs must use https.", {"url": ["https only"]})
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise Invalid("The host does not resolve.", {"url": ["unknown host"]}) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise Invalid(
                "The URL points inside the network.", {"url": ["private address refused"]}
            )


def add(name: str, url: str, events: list[str], *, actor: str) -> tuple[Subscriber, str, str]:
    """Register a subscriber (flushes): returns it, its whsec_ secret and its API key (for
    confirmations), both shown once."""
    errors = {}
    if not (name or "").strip():
        errors["name"] = ["required"]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        errors["events"] = [f"known events: {', '.join(EVENTS)}"]
    if errors:
        raise Invalid("The subscriber cannot be added.", errors)
    check_target(url)
    key_row, key = apikeys.create(f"subscriber {name.strip()}", ["deliveries:confirm"], actor=actor)
    subscriber = Subscriber(
        name=name.strip(), url=url, events=sorted(set(events)), api_key_id=key_row.id
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


def fan_out(event: OutboxMessage, subject_id: str | None) -> list[Delivery]:
    """One delivery per active subscriber that wants ``event``, written in the transaction of
    the change (flushes), each carrying the subscriber's own identifier for the subject when it
    gave one. Subscribers added later are not told: they never received the data."""
    subscribers = [
        s
        for s in db.session.execute(select(Subscriber).where(Subscriber.active.is_(True)))
        .scalars()
        .all()
        if event.topic in (s.events or [])
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
        if sub.id in refs:
            delivery.recipient_ref_enc = vault.seal(_ref_label(delivery.id), refs[sub.id].encode())
        db.session.add(delivery)
        made.append(delivery)
    event.status, event.sent_at = "sent", utcnow()
    db.session.flush()
    return made


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


def set_identifier(subscriber_id: int, subject_id: str, identifier: str | None) -> bool:
    """Record (or, with None, forget) what a subscriber calls the subject (flushes). Returns
    whether one is recorded now."""
    if db.session.get(Subscriber, subscriber_id) is None:
        raise Invalid("Unknown subscriber.", {"subscriber_id": ["no such subscriber"]})
    row = db.session.execute(
        select(RecipientIdentifier).where(
            RecipientIdentifier.subject_id == subject_id,
            RecipientIdentifier.subscriber_id == subscriber_id,
        )
    ).scalar_one_or_none()
    if identifier is None:
        if row is not None:
            db.session.delete(row)
            db.session.flush()
        return False
    sealed = vault.encrypt(subject_id, "recipient_identifiers.identifier_enc", identifier)
    if row is None:
        row = RecipientIdentifier(subscriber_id=subscriber_id, subject_id=subject_id)
        db.session.add(row)
    row.identifier_enc, row.created_at = sealed, utcnow()
    db.session.flush()
    return True


def _claim() -> Delivery | None:
    query = (
        select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= utcnow())
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.execute(query).scalar_one_or_none()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer (a failure), never followed


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: str, headers: dict, timeout: float) -> int:
    # Only http(s) URLs that check_target passed reach here.
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(req, timeout=timeout) as resp:  # noqa: S310 - checked by check_target
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


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
    """Deliver due deliveries, one commit each (commits). Returns counts."""
    counts = {"delivered": 0, "retry": 0, "dead": 0, "disabled": 0}
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    for _ in range(limit):
        delivery = _claim()
        if delivery is None:
            break
        subscriber = db.session.get(Subscriber, delivery.subscriber_id)
        delivery.attempts += 1
        if not subscriber.active:
            delivery.status, delivery.last_error = "disabled", "subscription disabled"
            db.session.commit()
            counts["disabled"] += 1
            continue
        try:
            check_target(subscriber.url)
            body = body_of(delivery)
            code = _post(subscriber.url, body, signed(delivery, subscriber, body), timeout)
            error = None
        except Invalid as exc:
            code, error = None, exc.message[:200]
        except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
            code, error = None, type(exc).__name__
        delivery.last_status_code, delivery.last_error = code, error
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
            counts["delivered"] += 1
        elif code == 410:
            delivery.status = "disabled"
            subscriber.active = False
            subscriber.disabled_reason = "the receiver answered 410 Gone"
            audit.record(
                "lethe",
                "subscriber.disabled",
                target=f"subscriber:{subscriber.id}",
                details={"reason": "410"},
            )
            counts["disabled"] += 1
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "dead"
            counts["dead"] += 1
        else:
            delivery.next_attempt_at = utcnow() + _backoff(delivery.attempts)
            counts["retry"] += 1
        db.session.commit()
    return counts


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


def redeliver(delivery_id: str, *, actor: str) -> Delivery:
    """Put a failed delivery back in line with the same id (flushes): a dead one, or one
    stopped by a disabled subscription once the subscription is active again."""
    delivery = db.session.get(Delivery, str(delivery_id)[:40])
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
    delivery = db.session.get(Delivery, str(delivery_id)[:40])
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
