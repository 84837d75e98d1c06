"""Evidence attached to a request (pictures a subject sends with a rectification, …): stored
under the subject's key, shown only to the subject and to officers, each viewing audited."""

from sqlalchemy import select

from rights import audit
from rights.errors import NotFound
from storage import vault
from storage.db import db
from storage.models import EvidenceAttachment, RightsRequest, Subject


def for_request(request: RightsRequest) -> list[EvidenceAttachment]:
    return list(
        db.session.execute(
            select(EvidenceAttachment)
            .where(EvidenceAttachment.request_id == request.id)
            .order_by(EvidenceAttachment.id)
        ).scalars()
    )


def read(request: RightsRequest, attachment_id: int, *, actor: str) -> tuple[str, bytes]:
    """(media type, content) of one of this request's attachments; audited (flushes)."""
    item = db.session.get(EvidenceAttachment, attachment_id)
    if item is None or item.request_id != request.id:
        raise NotFound("No such attachment on this request.")
    try:
        content = vault.decrypt_bytes(
            item.subject_id, "evidence_attachments.content_enc", item.content_enc
        )
    except vault.KeyMissing:
        raise NotFound("This attachment was erased with the subject's data.") from None
    audit.record(
        actor,
        "evidence.viewed",
        subject_ref=db.session.get(Subject, item.subject_id).ref,
        target=f"evidence:{item.id}",
    )
    return item.media_type, content
