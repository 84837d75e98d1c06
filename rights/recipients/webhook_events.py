"""Events for downstream recipients and their deliveries: one :class:`Delivery` per subscriber
that wants an event, written in the transaction of the change that causes it, each carrying
the subscriber's own identifier for the subject when it gave one (kept under the subject's
key, sealed on the delivery, and let go of once told or when the person is erased)."""

import secrets

from sqlalchemy import select, update

from rights.errors import Invalid
from rights.ledger import audit
from rights.recipients.webhook_subscribers import STOPPED, wants
from storage import vault, wakeup
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    Delivery,
    OutboxMessage,
    RecipientIdentifier,
    RightsRequest,
    Subject,
    Subscriber,
)
from storage.steps import Steps


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
            delivery.recipient_ref_enc = vault.seal(ref_label(delivery.id), refs[sub.id].encode())
        db.session.add(delivery)
        made.append(delivery)
    event.status, event.sent_at = "sent", utcnow()
    db.session.flush()
    if any(d.status != "disabled" for d in made):
        wakeup.notify("webhooks")  # at commit: the webhook workers send them at once
    return made


def fan_out_left_over_steps(limit: int = 200) -> Steps[int]:
    """Events written before deliveries were made with them (an older release left them
    pending): give them their deliveries now (one step). Returns how many events."""
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
    yield
    return len(events)


def ref_label(delivery_id: str) -> str:
    """What a delivery's copy of the recipient's identifier is sealed under."""
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
