"""What downstream recipients are told (Art. 19): an event per change to data they received,
written to the outbox in the transaction of the change. Bodies are thin — the event type, a
pseudonymous subject reference, the records by their platform ids, what to do — never more
personal data than the recipient already holds — with one delivery per subscriber that wants
the event (signed webhooks, :mod:`rights.recipients.webhooks`).
"""

from sqlalchemy import select

from rights.delivery import outbox
from rights.recipients import webhooks
from storage.db import db
from storage.models import Disclosure, PerkAward, Promotion, RightsRequest, Subject


def record_ref(record) -> dict:
    if isinstance(record, dict):
        return record
    return {"type": record.__tablename__, "id": getattr(record, "external_id", None) or record.id}


def tell(topic: str, request: RightsRequest, records: list, action: str) -> None:
    """Queue ``topic`` about ``records`` changed by ``request`` (flushes)."""
    subject = db.session.get(Subject, request.subject_id)
    announce(
        topic,
        {
            "type": topic,
            "subject": subject.ref,
            "request": request.reference,
            "records": [record_ref(r) for r in records],
            "action": action,
        },
        request_id=request.id,
        subject_id=subject.id,
    )


def announce(
    topic: str, body: dict, *, request_id: str | None = None, subject_id: str | None = None
) -> None:
    """Write the event and its deliveries (flushes). ``subject_id`` lets each subscriber's own
    identifier for the person travel with its delivery; events about many people (an
    incident's batch) name records only."""
    webhooks.fan_out(outbox.enqueue_event(topic, request_id=request_id, body=body), subject_id)


# What recipients received about a member, by the platform ids they know it by.
SHARED = (PerkAward, Disclosure, Promotion)


def erased(request: RightsRequest) -> None:
    """``subject.erased`` for the request's subject, naming every record recipients may hold
    (flushes). Written when the erasure is planned, while the records can still be listed;
    ids only are read."""
    records = []
    for model in SHARED:
        records.extend(
            {"type": model.__tablename__, "id": external_id}
            for external_id in db.session.execute(
                select(model.external_id)
                .where(model.subject_id == request.subject_id)
                .order_by(model.id)
            ).scalars()
        )
    tell(
        "subject.erased",
        request,
        records,
        "erase what you hold about this person from the platform (keeping only what a law "
        "obliges you to keep), then confirm",
    )
