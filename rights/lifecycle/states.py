"""The states a request goes through and the journal every transition writes.

Kept apart from the transitions themselves so that each right's handler can write to a
request's journal (``record_event``) with the same wording and audit entry as the lifecycle,
and so that the read side (``lookup``) shares the state sets without importing the transitions.
"""

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from rights.errors import Invalid, InvalidTransition
from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import RequestEvent, RequestStatus, RightsRequest, Subject

S = RequestStatus
TERMINAL = {S.COMPLETED, S.REFUSED, S.WITHDRAWN}
ACTIVE = [S.RECEIVED, S.AWAITING_VERIFICATION, S.OPEN, S.IN_PROGRESS]
ALLOWED = {
    S.RECEIVED: {S.AWAITING_VERIFICATION, S.OPEN},
    S.AWAITING_VERIFICATION: {S.OPEN, S.REFUSED, S.WITHDRAWN},
    S.OPEN: {S.IN_PROGRESS, S.COMPLETED, S.REFUSED, S.WITHDRAWN},
    S.IN_PROGRESS: {S.COMPLETED, S.REFUSED, S.WITHDRAWN},
}
MAX_TEXT = 4000  # officers' reasons and questions, subjects' answers


def required(value: str | None, field: str, message: str) -> str:
    """What a person must write (a reason, a question, an answer), trimmed and bounded."""
    value = (value or "").strip()
    if not value:
        raise Invalid(message, {field: ["required"]})
    if len(value) > MAX_TEXT:
        raise Invalid(message, {field: [f"at most {MAX_TEXT} characters"]})
    return value


def subject_ref(request: RightsRequest) -> str:
    return db.session.get(Subject, request.subject_id).ref


def record_event(
    request: RightsRequest,
    kind: str,
    actor: str,
    note: str | None = None,
    from_status: str | None = None,
    text: str | None = None,
) -> None:
    """``note`` is Lethe's own wording (kept in clear); ``text`` is what a person wrote
    (a reason, a question, an answer) and is kept under the subject's key."""
    db.session.add(
        RequestEvent(
            request_id=request.id,
            # Linked to the subject only when it carries what someone wrote about them: those
            # are the "messages about your requests" of the data map; the rest is process.
            subject_id=request.subject_id if text else None,
            at=utcnow(),
            kind=kind,
            from_status=from_status,
            to_status=request.status if from_status is not None else None,
            actor=actor,
            note=note,
            note_enc=vault.encrypt(request.subject_id, "request_events.note_enc", text)
            if text
            else None,
        )
    )
    audit.record(
        actor,
        f"request.{kind}",
        subject_ref=subject_ref(request),
        target=f"request:{request.id}",
        details={"type": request.type, "status": request.status},
    )


def move(
    request: RightsRequest,
    to: RequestStatus,
    kind: str,
    actor: str,
    note: str | None = None,
    text: str | None = None,
) -> None:
    """Change the request's state, if the state it is in allows it, and journal the change."""
    if to not in ALLOWED.get(RequestStatus(request.status), set()):
        raise InvalidTransition(f"A request that is {request.status} cannot be {kind}.")
    before = request.status
    # Compare-and-set: of two actors moving the same request at once (the subject withdraws as
    # an officer approves; two emailed links), one wins and the other is told it changed.
    moved = db.session.execute(
        update(RightsRequest)
        .where(RightsRequest.id == request.id, RightsRequest.status == before)
        .values(status=to)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        db.session.refresh(request)
        raise InvalidTransition(f"A request that is {request.status} cannot be {kind}.")
    # What the statement above wrote, as the session's known state: not written again.
    set_committed_value(request, "status", to)
    if to in TERMINAL:
        request.closed_at = utcnow()
    record_event(request, kind, actor, note, from_status=before, text=text)
