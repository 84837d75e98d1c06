"""Links back to a request: the subject asks for a fresh one by reference, the worker sends it
(at most one an hour), and following it opens the request's page and downloads.

And links between requests: a person who asks again for what an open request of theirs already
asks (same right, same records) has the second linked to the first when it is verified, and is
told the two are answered together (:func:`link_to_earlier`)."""

from datetime import timedelta

from sqlalchemy import select

from rights.delivery import outbox
from rights.ledger import audit
from rights.lifecycle import notices, verification
from rights.lifecycle.lookup import REFERENCE, by_reference, details
from rights.lifecycle.registry import handler_for
from rights.lifecycle.states import S, record_event, subject_ref
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


# --- Asked again: a second request for the same thing is answered with the first --------------


def _about(request: RightsRequest) -> tuple[set[str], set[str]]:
    """What a request is about, from its details: the records it names, and the use or
    consent it names (an objection's purpose, a consent withdrawal's)."""
    given = details(request)
    records = {r for r in given.get("records") or [] if isinstance(r, str)}
    purposes = {f"{k}:{given[k]}" for k in ("purpose", "consent_purpose") if given.get(k)}
    return records, purposes


def _same_ask(request: RightsRequest, other: RightsRequest) -> bool:
    """Whether ``other`` asks what ``request`` asks. A right that names records: they name a
    record in common (two that name none say nothing to tell them apart by, and are not
    linked). A right about one use or consent: the same one. Any other right: any request of
    it is the same ask."""
    records, purposes = _about(request)
    other_records, other_purposes = _about(other)
    if handler_for(request.type).names_records:
        return bool(records & other_records)
    return purposes == other_purposes


def link_to_earlier(request: RightsRequest) -> RightsRequest | None:
    """On verification: the same person's earliest other open request of the same type that
    asks the same (:func:`_same_ask`), linked to this one and noted on both (flushes). Only
    verified requests count: an unconfirmed one may not be theirs. Returns it, or None."""
    candidates = db.session.execute(
        select(RightsRequest)
        .where(
            RightsRequest.subject_id == request.subject_id,
            RightsRequest.type == request.type,
            RightsRequest.id != request.id,
            RightsRequest.status.in_((S.OPEN, S.IN_PROGRESS)),
        )
        .order_by(RightsRequest.received_at, RightsRequest.id)
    ).scalars()
    earlier = next((c for c in candidates if _same_ask(request, c)), None)
    if earlier is None:
        return None
    request.linked_to_id = earlier.id
    request.linked_to = earlier
    record_event(request, "answered_together", "lethe", note=f"with {earlier.reference}")
    record_event(earlier, "answered_together", "lethe", note=f"with {request.reference}")
    audit.record(
        "lethe",
        "request.linked",
        subject_ref=subject_ref(request),
        target=f"request:{request.id}",
        details={"linked_to": earlier.id},
    )
    return earlier
