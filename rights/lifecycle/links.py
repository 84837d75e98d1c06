"""Links back to a request: the subject asks for a fresh one by reference, the worker sends it
(at most one an hour), and following it opens the request's page and downloads."""

from datetime import timedelta

from sqlalchemy import select

from rights.delivery import outbox
from rights.ledger import audit
from rights.lifecycle import notices, verification
from rights.lifecycle.lookup import REFERENCE, by_reference
from rights.lifecycle.states import subject_ref
from storage.clock import utcnow
from storage.db import db
from storage.models import OutboxMessage, RightsRequest

RESUME_LINKS_EVERY = timedelta(hours=1)


def ask_for_resume_link(reference: str) -> None:
    """ "Email me a new link": the same work, and so the same time, whether or not the
    reference exists — one job is queued (flushes); the worker looks the reference up."""
    reference = reference.strip().upper() if isinstance(reference, str) else ""
    if REFERENCE.fullmatch(reference):  # a malformed one cannot exist, and its sender knows
        outbox.enqueue_job("request.resume_link", argument=reference)


def resume_link_job(reference: str) -> None:
    """The worker's half of :func:`ask_for_resume_link`: a fresh link to the address on the
    request, at most one an hour per request however often it is asked for."""
    request = by_reference(reference)
    if request is None:
        return
    # Two workers running two such jobs at once: one checks and sends, the other waits for it.
    db.session.execute(
        select(RightsRequest.id).where(RightsRequest.id == request.id).with_for_update()
    )
    recent = db.session.execute(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.request_id == request.id,
            OutboxMessage.topic == "notice.resume",
            OutboxMessage.created_at > utcnow() - RESUME_LINKS_EVERY,
        )
        .limit(1)
    ).first()
    if recent is None:
        send_resume_link(request)


def send_resume_link(request: RightsRequest) -> None:
    """Email the subject a fresh single-use link back to their request."""
    notices.resume_link(request, verification.issue(request, "resume"))
    audit.record(
        "subject",
        "request.resume_link_sent",
        subject_ref=subject_ref(request),
        target=f"request:{request.id}",
    )


def resume(token: str) -> RightsRequest:
    request = verification.consume(token, "resume")
    audit.record(
        "subject",
        "request.resumed",
        subject_ref=subject_ref(request),
        target=f"request:{request.id}",
    )
    return request
