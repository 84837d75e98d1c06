"""What downstream recipients are told (Art. 19): an event per change to data they received,
written to the outbox in the transaction of the change. Bodies are thin — the event type, a
pseudonymous subject reference, the records by their platform ids, what to do — never more
personal data than the recipient already holds — with one delivery per subscriber that wants
the event (signed webhooks, :mod:`rights.webhooks`).
"""

from sqlalchemy import select

from rights import outbox, webhooks
from storage.db import db
from storage.models import Disclosure, PerkAward, Promotion, RightsRequest, Subject


def record_ref(record) -> dict:
    return {"type": record.__tablename__, "id": getattr(record, "external_id", None) or record.id}


def tell(topic: str, request: RightsRequest, records: list, action: str) -> None:
    """Queue ``topic`` about ``records`` changed by ``request`` (flushes)."""
    subject = db.session.get(Subject, request.subject_id)
    event = outbox.enqueue_event(
        topic,
        request_id=request.id,
        body={
            "type": topic,
            "subject": subject.ref,
            "request": request.reference,
            "records": [record_ref(r) for r in records],
            "action": action,
        },
    )
    webhooks.fan_out(event, subject.id)


# What recipients received about a member, by the platform ids they know it by.
SHARED = (PerkAward, Disclosure, Promotion)


def erased(request: RightsRequest) -> None:
    """``subject.erased`` for the request's subject, naming every record recipients may hold
    (flushes). Written when the erasure is planned, while the records can still be listed."""
    records = []
    for model in SHARED:
        records.extend(
            db.session.execute(select(model).where(model.subject_id == request.subject_id))
            .scalars()
            .all()
        )
    tell(
        "subject.erased",
        request,
        records,
        "erase everything you hold about this person that came from the platform, and confirm",
    )
