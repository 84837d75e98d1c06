"""Finding requests and reading them: by id or reference, filtered and paged for the queue and
the API, and their sealed fields and journal as the subject or an officer may read them.

Nothing here changes a request; the transitions are in :mod:`rights.lifecycle.requests`.
"""

import re
import secrets
import uuid

from sqlalchemy import select

from rights.errors import NotFound
from rights.lifecycle.registry import handler_for
from rights.lifecycle.states import ACTIVE, TERMINAL, S
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import RequestEvent, RightsRequest, Subject

REFERENCE = re.compile(r"LR-[0-9A-Z]{4}-[0-9A-Z]{4}")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def new_reference() -> str:
    while True:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        ref = f"LR-{body[:4]}-{body[4:]}"
        if not db.session.execute(
            select(RightsRequest.id).where(RightsRequest.reference == ref)
        ).first():
            return ref


def get(request_id: str) -> RightsRequest:
    try:
        request_id = str(uuid.UUID(request_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound("No such request.") from None
    request = db.session.get(RightsRequest, request_id)
    if request is None:
        raise NotFound("No such request.")
    return request


def by_reference(reference: str) -> RightsRequest | None:
    """The request with this reference, or None (also for anything not shaped like one)."""
    reference = reference.strip().upper() if isinstance(reference, str) else ""
    if not REFERENCE.fullmatch(reference):
        return None
    return db.session.execute(
        select(RightsRequest).where(RightsRequest.reference == reference)
    ).scalar_one_or_none()


def seal(request: RightsRequest, column: str, text: str) -> bytes:
    return vault.encrypt(request.subject_id, f"rights_requests.{column}", text)


def _open(request: RightsRequest, column: str, *, as_json: bool = False):
    """A sealed field of the request; None once the subject's key is destroyed (erasure)."""
    read = vault.decrypt_json if as_json else vault.decrypt
    try:
        return read(request.subject_id, f"rights_requests.{column}", getattr(request, column))
    except vault.KeyMissing:
        return None


def extension_reason(request: RightsRequest) -> str | None:
    return _open(request, "extension_reason_enc")


def decision_reason(request: RightsRequest) -> str | None:
    return _open(request, "decision_reason_enc")


def contact(request: RightsRequest) -> str | None:
    """Where the subject's notices go; None once they are erased."""
    return _open(request, "contact_enc")


def details(request: RightsRequest) -> dict:
    return _open(request, "details_enc", as_json=True) or {}


def events(request: RightsRequest) -> list[RequestEvent]:
    return list(
        db.session.execute(
            select(RequestEvent)
            .where(RequestEvent.request_id == request.id)
            .order_by(RequestEvent.at, RequestEvent.id)
        ).scalars()
    )


def event_text(request: RightsRequest, event: RequestEvent) -> str | None:
    """What a person wrote on this event; None if nothing, or once the subject is erased."""
    if not event.note_enc:
        return None
    try:
        return vault.decrypt(request.subject_id, "request_events.note_enc", event.note_enc)
    except vault.KeyMissing:
        return None


def awaiting_answer(request: RightsRequest) -> bool:
    """Whether the last question asked of the subject is still unanswered."""
    last = db.session.execute(
        select(RequestEvent.kind)
        .where(
            RequestEvent.request_id == request.id,
            RequestEvent.kind.in_(("information_requested", "information_received")),
        )
        .order_by(RequestEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return last == "information_requested" and request.status not in TERMINAL


def downloads_available(request: RightsRequest) -> bool:
    """Reports and exports of a completed request, until they expire — and never once the
    subject has been erased (there is nothing left to report, and no key to read it with)."""
    return (
        request.status == S.COMPLETED
        and handler_for(request.type).self_service
        and request.downloads_expire_at is not None
        and utcnow() < request.downloads_expire_at
        and db.session.get(Subject, request.subject_id).erased_at is None
    )


def filtered(
    *,
    status=None,
    type=None,
    channel=None,
    due_before=None,
    due_after=None,
    subject_id=None,
    assignee_id=None,
    api_key_id=None,
):
    """A query of the requests matching the filters (no order). ``status="active"`` means
    every state that still needs an answer; ``assignee_id=0`` means nobody's; ``api_key_id``
    keeps the requests that key filed."""
    query = select(RightsRequest)
    if status == "active":
        # IN over the open states (not NOT IN the closed ones): the (status, due_at) index
        # serves it.
        query = query.where(RightsRequest.status.in_([s.value for s in ACTIVE]))
    elif status:
        query = query.where(RightsRequest.status == status)
    if type:
        query = query.where(RightsRequest.type == type)
    if channel:
        query = query.where(RightsRequest.channel == channel)
    if due_before:
        query = query.where(RightsRequest.due_at < due_before)
    if due_after:
        query = query.where(RightsRequest.due_at >= due_after)
    if subject_id:
        query = query.where(RightsRequest.subject_id == subject_id)
    if api_key_id is not None:
        query = query.where(RightsRequest.api_key_id == api_key_id)
    if assignee_id == 0:
        query = query.where(RightsRequest.assignee_id.is_(None))
    elif assignee_id:
        query = query.where(RightsRequest.assignee_id == assignee_id)
    return query


def search(*, page: int = 1, per_page: int = 50, **filters):
    """Requests matching the filters, newest first, one page (a Flask-SQLAlchemy Pagination)."""
    query = filtered(**filters).order_by(RightsRequest.received_at.desc(), RightsRequest.id)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)
