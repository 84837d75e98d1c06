"""The outbox: side effects written with their cause, delivered by the worker after commit.

Delivery claims one due message at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any
number of workers can run), sends it and commits, so a crash re-sends at most the message in
hand. Failures back off exponentially; after ``MAX_ATTEMPTS`` a message is marked dead.
"""

import logging
import random
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from rights import mail
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12


def enqueue_email(
    *, subject_id: str, to: str, title: str, body: str, topic: str, request_id: str | None
) -> OutboxMessage:
    """Queue an email to a subject (flushes). The whole message is encrypted with their key."""
    msg = OutboxMessage(kind="email", topic=topic, subject_id=subject_id, request_id=request_id)
    msg.payload_enc = vault.encrypt_json(
        subject_id, "outbox.payload_enc", {"to": to, "subject": title, "body": body}
    )
    db.session.add(msg)
    db.session.flush()
    return msg


def _claim_one() -> OutboxMessage | None:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.execute(query).scalar_one_or_none()


def _deliver(msg: OutboxMessage) -> None:
    if msg.kind != "email":
        raise ValueError(f"unknown outbox kind {msg.kind}")
    payload = vault.decrypt_json(msg.subject_id, "outbox.payload_enc", msg.payload_enc)
    mail.send(mail.build(payload["to"], payload["subject"], payload["body"], msg.id))


def deliver_due(limit: int | None = None) -> dict[str, int]:
    """Deliver due messages until none is due (or ``limit`` were handled). Returns counts."""
    limit = limit or current_app.config["OUTBOX_BATCH"]
    counts = {"sent": 0, "retry": 0, "dead": 0}
    for _ in range(limit):
        msg = _claim_one()
        if msg is None:
            break
        try:
            _deliver(msg)
        except vault.KeyMissing:
            # The subject was erased after this was queued: nothing may be sent any more.
            msg.status, msg.last_error = "dead", "subject key destroyed"
            counts["dead"] += 1
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
            msg.attempts += 1
            msg.last_error = type(exc).__name__  # never the text: it may quote an address
            if msg.attempts >= MAX_ATTEMPTS:
                msg.status = "dead"
                counts["dead"] += 1
            else:
                delay = min(2**msg.attempts * 30, 6 * 3600) * random.uniform(0.8, 1.2)
                msg.next_attempt_at = utcnow() + timedelta(seconds=delay)
                counts["retry"] += 1
            log.warning("outbox %s failed (%s), attempt %d", msg.id, msg.last_error, msg.attempts)
        else:
            msg.status, msg.sent_at = "sent", utcnow()
            msg.attempts += 1
            counts["sent"] += 1
        db.session.commit()
    if any(counts.values()):
        log.info("outbox: %s", counts)
    return counts
