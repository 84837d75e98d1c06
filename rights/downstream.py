"""What downstream recipients are told (Art. 19): an event per change to data they received,
written to the outbox in the transaction of the change. Bodies are thin — the event type, a
pseudonymous subject reference, the records by their platform ids, what to do — never more
personal data than the recipient already holds. Delivery (signed webhooks) reads the outbox.
"""

from rights import outbox
from storage.db import db
from storage.models import RightsRequest, Subject


def record_ref(record) -> dict:
    return {"type": record.__tablename__, "id": getattr(record, "external_id", None) or record.id}


def tell(topic: str, request: RightsRequest, records: list, action: str) -> None:
    """Queue ``topic`` about ``records`` changed by ``request`` (flushes)."""
    subject = db.session.get(Subject, request.subject_id)
    outbox.enqueue_event(
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
