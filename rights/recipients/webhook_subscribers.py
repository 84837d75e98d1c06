"""Webhook subscribers (Art. 19 recipients): adding one (its ``whsec_`` secret and its
confirmation API key, shown once), rotating the secret, disabling and enabling, and what each
wants to hear. Events and their deliveries are :mod:`rights.recipients.webhook_events`; sending
them is :mod:`rights.recipients.webhook_delivery`."""

import base64
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from rights.errors import Invalid
from rights.ledger import apikeys, audit
from rights.recipients import outbound_http
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import Delivery, Subscriber
from storage.recipients import RECIPIENTS

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
STOPPED = "subscription disabled"  # why a delivery waits
# What a delivery's status means to a person reading it.
STATES = {
    "pending": "pending",
    "delivered": "delivered",
    "confirmed": "confirmed",
    "dead": "failed",
    "disabled": "failed",
}


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


def _recipient_errors(recipient: str | None) -> list[str]:
    if recipient is None or recipient in RECIPIENTS:
        return []
    return [f"known recipients: {', '.join(RECIPIENTS)}"]


def add(
    name: str, url: str, events: list[str], *, actor: str, recipient: str | None = None
) -> tuple[Subscriber, str, str]:
    """Register a subscriber (flushes): returns it, its whsec_ secret and its API key (for
    confirmations), both shown once. ``recipient``: the key of the data map's recipient it
    speaks for (:data:`storage.recipients.RECIPIENTS`), if any."""
    recipient = recipient or None
    errors = {}
    if not (name or "").strip():
        errors["name"] = ["required"]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        errors["events"] = [f"known events: {', '.join(EVENTS)}"]
    if bad := _recipient_errors(recipient):
        errors["recipient"] = bad
    if errors:
        raise Invalid("The subscriber cannot be added.", errors)
    url = outbound_http.normalise(url)
    check_target(url)
    key_row, key = apikeys.create(f"subscriber {name.strip()}", ["deliveries:confirm"], actor=actor)
    subscriber = Subscriber(
        name=name.strip(),
        url=url,
        events=sorted(set(events) | set(ALWAYS)),
        recipient=recipient,
        api_key_id=key_row.id,
    )
    db.session.add(subscriber)
    db.session.flush()
    secret = new_secret()
    subscriber.secret_enc = vault.seal(_seal_label(subscriber.id), secret.encode())
    audit.record(
        actor,
        "subscriber.added",
        target=f"subscriber:{subscriber.id}",
        details={"events": subscriber.events, "recipient": recipient},
    )
    return subscriber, secret, key


def set_recipient(subscriber: Subscriber, recipient: str | None, *, actor: str) -> None:
    """Say which recipient of the data map the subscriber speaks for, or none (flushes;
    audited with what it was, so it can be put back)."""
    recipient = recipient or None
    if bad := _recipient_errors(recipient):
        raise Invalid("No such recipient in the data map.", {"recipient": bad})
    if recipient == subscriber.recipient:
        return
    was, subscriber.recipient = subscriber.recipient, recipient
    audit.record(
        actor,
        "subscriber.recipient_set",
        target=f"subscriber:{subscriber.id}",
        details={"recipient": recipient, "was": was},
    )
    db.session.flush()


def rotate_secret(subscriber: Subscriber, *, actor: str, overlap_hours: int = 24) -> str:
    """A new secret; the old one keeps signing alongside for ``overlap_hours``."""
    subscriber.previous_secret_enc = subscriber.secret_enc
    subscriber.previous_secret_until = utcnow() + timedelta(hours=overlap_hours)
    secret = new_secret()
    subscriber.secret_enc = vault.seal(_seal_label(subscriber.id), secret.encode())
    audit.record(actor, "subscriber.secret_rotated", target=f"subscriber:{subscriber.id}")
    return secret


def secrets_of(subscriber: Subscriber) -> list[str]:
    """The live signing secrets: the current one, and the previous one while it overlaps."""
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
