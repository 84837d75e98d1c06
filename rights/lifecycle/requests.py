"""The request lifecycle, shared by all seven rights.

States: received -> awaiting_verification -> open -> in_progress -> completed | refused |
withdrawn. Every transition writes a request event and an audit entry, and queues the notice
the subject is owed. Services flush; the caller (view, CLI, job) commits.
"""

import re
import secrets
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from rights.contest import objections, rectification
from rights.delivery import outbox
from rights.errors import Invalid, InvalidTransition, NotFound
from rights.holdings import restrictions, subjects
from rights.ledger import audit
from rights.lifecycle import notices, verification
from rights.lifecycle.deadlines import due_date, extended_due_date
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import (
    ErasureRun,
    OutboxMessage,
    RequestEvent,
    RequestStatus,
    RequestType,
    RightsRequest,
    Subject,
)

S = RequestStatus
TERMINAL = {S.COMPLETED, S.REFUSED, S.WITHDRAWN}
ACTIVE = [S.RECEIVED, S.AWAITING_VERIFICATION, S.OPEN, S.IN_PROGRESS]
ALLOWED = {
    S.RECEIVED: {S.AWAITING_VERIFICATION, S.OPEN},
    S.AWAITING_VERIFICATION: {S.OPEN, S.REFUSED, S.WITHDRAWN},
    S.OPEN: {S.IN_PROGRESS, S.COMPLETED, S.REFUSED, S.WITHDRAWN},
    S.IN_PROGRESS: {S.COMPLETED, S.REFUSED, S.WITHDRAWN},
}
# Rights answered from the data map alone once identity is verified; no officer decision.
SELF_SERVICE = {RequestType.ACCESS, RequestType.PORTABILITY}
MAX_TEXT = 4000  # officers' reasons and questions, subjects' answers
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


REFERENCE = re.compile(r"LR-[0-9A-Z]{4}-[0-9A-Z]{4}")


def by_reference(reference: str) -> RightsRequest | None:
    """The request with this reference, or None (also for anything not shaped like one)."""
    reference = reference.strip().upper() if isinstance(reference, str) else ""
    if not REFERENCE.fullmatch(reference):
        return None
    return db.session.execute(
        select(RightsRequest).where(RightsRequest.reference == reference)
    ).scalar_one_or_none()


def subject_ref(request: RightsRequest) -> str:
    return db.session.get(Subject, request.subject_id).ref


def _event(
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


def _move(
    request: RightsRequest,
    to: RequestStatus,
    kind: str,
    actor: str,
    note: str | None = None,
    text: str | None = None,
) -> None:
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
    request.status = to
    if to in TERMINAL:
        request.closed_at = utcnow()
    _event(request, kind, actor, note, from_status=before, text=text)


def file(
    *,
    type: str,
    email: str | None = None,
    member_id: str | None = None,
    details: dict | None = None,
    channel: str,
    verified: bool = False,
    actor: str,
    api_key_id: int | None = None,
    idempotency_key: str | None = None,
) -> RightsRequest:
    """File a request. Unverified requests get a single-use emailed link; the answer and the
    work done are the same whether or not ``email`` belongs to a member."""
    if type not in set(RequestType):
        raise Invalid("Unknown request type.", {"type": ["unknown request type"]})
    if member_id is not None:
        member = subjects.member_by_external_id(member_id)
        if member is None:
            raise Invalid("No member with that id.", {"member_id": ["unknown member"]})
        subject = db.session.get(Subject, member.subject_id)
        contact = vault.decrypt(subject.id, "members.email_enc", member.email_enc)
    elif email:
        subject = subjects.get_or_create(email)
        contact = email.strip()
    else:
        raise Invalid("Give an email address or a member id.", {"email": ["required"]})

    now = utcnow()
    request = RightsRequest(
        reference=new_reference(),
        type=type,
        status=S.RECEIVED,
        subject_id=subject.id,
        channel=channel,
        received_at=now,
        original_due_at=due_date(now),
        due_at=due_date(now),
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
    )
    request.contact_enc = vault.encrypt(subject.id, "rights_requests.contact_enc", contact)
    request.details_enc = vault.encrypt_json(
        subject.id, "rights_requests.details_enc", details or {}
    )
    db.session.add(request)
    db.session.flush()
    _event(request, "received", actor, note=f"channel {channel}")

    if verified:
        _verified(request, actor, method=f"vouched by {actor}")
        notices.received(request)
        _maybe_fulfil(request, actor)
    else:
        _move(request, S.AWAITING_VERIFICATION, "verification_sent", actor)
        notices.verification(request, verification.issue(request, "verify"))
    return request


def _verified(request: RightsRequest, actor: str, method: str, text: str | None = None) -> None:
    request.verified_at = utcnow()
    request.verification_method = method
    _move(request, S.OPEN, "verified", actor, note=method, text=text)


def _required(value: str | None, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(message, {field: ["required"]})
    if len(value) > MAX_TEXT:
        raise Invalid(message, {field: [f"at most {MAX_TEXT} characters"]})
    return value


def verify_manually(request: RightsRequest, *, reason: str, actor: str) -> None:
    """An officer confirms the subject's identity by other means (the emailed link was lost,
    the person called in with their member number…), recording why they are satisfied or
    what doubt remained. Then the request goes on as if the link had been confirmed."""
    reason = _required(reason, "reason", "Say how identity was checked.")
    if request.status != S.AWAITING_VERIFICATION:
        raise InvalidTransition(f"A request that is {request.status} needs no verification.")
    _verified(request, actor, method="checked by an officer", text=reason)
    notices.received(request)
    _maybe_fulfil(request, actor)


def approve(
    request: RightsRequest, *, actor: str, note: str | None = None, profile: dict | None = None
) -> None:
    """Grant the request. Access and portability are answered from the data map; erasure is
    queued for the worker (it may be large) unless it already is; the other rights are
    recorded as granted and the subject told."""
    if request.status not in (S.OPEN, S.IN_PROGRESS):
        raise InvalidTransition(f"A request that is {request.status} cannot be approved.")
    note = (note or "").strip()[:MAX_TEXT] or None
    if request.type == RequestType.ERASURE:
        if db.session.get(ErasureRun, request.id) is not None or _erasure_queued(request):
            raise InvalidTransition("The erasure is already under way.")
        if request.status == S.OPEN:
            start(request, actor=actor)
        _event(request, "approved", actor, text=note)
        outbox.enqueue_job("erasure.run", request_id=request.id)
    elif request.type in SELF_SERVICE:
        complete(request, actor=actor, note="answered from the data map")
    else:
        _event(request, "approved", actor, text=note)
        if request.type == RequestType.RECTIFICATION:
            changed = rectification.accept(request, actor=actor, profile=profile)
            _event(request, "corrected", actor, note=f"{len(changed)} record(s) corrected")
        complete(request, actor=actor)


def erasure_started(request: RightsRequest) -> bool:
    """An erasure's run has begun: from then on it can only be carried through."""
    return (
        request.type == RequestType.ERASURE and db.session.get(ErasureRun, request.id) is not None
    )


def allowed_actions(request: RightsRequest) -> set[str]:
    """What an officer may do with this request now; the services enforce the same rules."""
    status = RequestStatus(request.status)
    if status in TERMINAL:
        # A granted restriction (or upheld objection) holds until lifted, with notice.
        return {"lift"} if status == S.COMPLETED and restrictions.held_open(request) else set()
    actions = {"ask"}
    started = erasure_started(request)
    if status == S.AWAITING_VERIFICATION:
        actions.add("verify")
    if status in (S.OPEN, S.IN_PROGRESS) and not started and not _erasure_queued(request):
        actions.add("approve")
    if not started:
        actions |= {"refuse", "cancel"}
    if request.extended_at is None and utcnow() <= request.original_due_at:
        actions.add("extend")
    return actions


def _erasure_queued(request: RightsRequest) -> bool:
    return (
        db.session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.request_id == request.id,
                OutboxMessage.topic == "erasure.run",
                OutboxMessage.status == "pending",
            )
        ).first()
        is not None
    )


def ask_for_information(request: RightsRequest, *, question: str, actor: str) -> None:
    """Ask the subject something the request needs (which records, which account…). The
    notice carries the question and a link back to the request, where they answer."""
    question = _required(question, "question", "Write the question for the subject.")
    if request.status in TERMINAL:
        raise InvalidTransition(f"A request that is {request.status} is closed.")
    _event(request, "information_requested", actor, text=question)
    notices.information_requested(request, question, verification.issue(request, "resume"))


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


def answer_information(request: RightsRequest, *, answer: str) -> None:
    """The subject's answer to an officer's question (from their request page)."""
    answer = _required(answer, "answer", "Write your answer.")
    if not awaiting_answer(request):
        raise InvalidTransition("There is no open question on this request.")
    _event(request, "information_received", "subject", text=answer)


def cancel(request: RightsRequest, *, reason: str, actor: str) -> None:
    """Withdraw on the subject's behalf (they asked by phone, by letter…): how they asked is
    recorded; the subject is sent the same notice as when they withdraw themselves."""
    reason = _required(reason, "reason", "Say how the subject asked to cancel.")
    withdraw(request, actor=actor, text=reason)


def assign(request: RightsRequest, officer_id: int | None, *, actor: str) -> None:
    if request.assignee_id == officer_id:
        return
    if request.status in TERMINAL:
        raise InvalidTransition("This request is closed: there is nobody to give it to.")
    request.assignee_id = officer_id
    target = f"officer:{officer_id}" if officer_id else "nobody"
    _event(request, "assigned", actor, note=f"to {target}")


def event_text(request: RightsRequest, event: RequestEvent) -> str | None:
    """What a person wrote on this event; None if nothing, or once the subject is erased."""
    if not event.note_enc:
        return None
    try:
        return vault.decrypt(request.subject_id, "request_events.note_enc", event.note_enc)
    except vault.KeyMissing:
        return None


def confirm(token: str) -> RightsRequest:
    """The subject pressed 'Confirm' on the emailed link (POST). Single use."""
    request = verification.consume(token, "verify")
    if request.status != S.AWAITING_VERIFICATION:
        raise InvalidTransition("This request is already confirmed.")
    _verified(request, "subject", method="emailed link")
    notices.received(request)
    _maybe_fulfil(request, "lethe")
    return request


def _maybe_fulfil(request: RightsRequest, actor: str) -> None:
    """Rights the data map answers alone run as soon as identity is verified: access and
    portability are completed at once; erasure is queued for the worker (it may be large),
    keeping what must be kept under its named Art. 17(3) exception."""
    if request.type in SELF_SERVICE:
        complete(request, actor="lethe", note="answered from the data map after verification")
    elif request.type == RequestType.ERASURE:
        start(request, actor="lethe")
        outbox.enqueue_job("erasure.run", request_id=request.id)
    elif request.type in (RequestType.RECTIFICATION, RequestType.RESTRICTION):
        # From the moment the request stands, what it names is held back (Art. 18(1)(a)).
        hold(request, details(request).get("records") or [], actor="lethe")
    elif request.type == RequestType.CONSENT_WITHDRAWAL:
        # As easy as giving it: no officer in between, effective from now on (Art. 7(3)).
        purpose = details(request).get("consent_purpose") or ""
        changed = objections.withdraw_consent(request, purpose, actor="lethe")
        _event(request, "consent_withdrawn", "lethe", note=f"{len(changed)} record(s) changed")
        complete(request, actor="lethe", note="consent withdrawn from now on")
    elif request.type == RequestType.OBJECTION:
        purpose = details(request).get("purpose") or ""
        if objections.object_to(request, purpose, actor="lethe"):
            complete(
                request, actor="lethe", note="absolute objection: acted on at once (Art. 21(3))"
            )


def lift(request: RightsRequest, *, reason: str, actor: str) -> None:
    """End a granted restriction: the subject is told first, and the hold ends after the
    notice period (Art. 18(3))."""
    reason = _required(reason, "reason", "Say why the restriction can end.")
    if request.status != S.COMPLETED or not restrictions.held_open(request):
        raise InvalidTransition("This request holds nothing back that could be lifted.")
    ends = rectification.refuse(request, actor=actor)
    _event(request, "restriction_lifting", actor, note=f"ends {ends.isoformat()}", text=reason)
    notices.restriction_lifting(request, reason, ends)


def profile_fields(request: RightsRequest) -> list[str]:
    """Profile fields a rectification names as wrong: the officer types the right values."""
    if request.type != RequestType.RECTIFICATION:
        return []
    return rectification.profile_fields(details(request).get("records") or [])


def point_at(request: RightsRequest, names: list[str]) -> int:
    """The subject points at more of their records from their request page (rectification or
    restriction, while open): they join the request's details and are held back at once."""
    if request.type not in (RequestType.RECTIFICATION, RequestType.RESTRICTION):
        raise InvalidTransition("Only corrections and restrictions name records.")
    if request.status not in (S.OPEN, S.IN_PROGRESS):
        raise InvalidTransition(f"A request that is {request.status} cannot change.")
    own = {c["id"] for c in rectification.choices(request)}
    names = [n for n in dict.fromkeys(names) if n in own]
    if not names:
        raise Invalid("Choose at least one of your records.", {"record": ["choose one"]})
    current = details(request)
    current["records"] = list(dict.fromkeys([*(current.get("records") or []), *names]))
    request.details_enc = vault.encrypt_json(
        request.subject_id, "rights_requests.details_enc", current
    )
    return hold(request, names, actor="subject")


def hold(request: RightsRequest, names: list[str], *, actor: str) -> int:
    """Restrict the records the subject names (and what is built on them) for this request;
    names that are not the subject's records are noted for the officer (flushes)."""
    reason = "contested" if request.type == RequestType.RECTIFICATION else "requested"
    # A name no record can carry (a NUL, which PostgreSQL refuses in any query, kept by a
    # request filed before the form refused it) is one of the subject's records by no means.
    unreadable = [n for n in names if not isinstance(n, str) or "\x00" in n]
    names = [n for n in names if n not in unreadable]
    count, unknown = rectification.contest(request, names, actor=actor, reason=reason)
    unknown = [*unknown, *unreadable]
    if count or unknown:
        note = f"{count} record(s) held back"
        if unknown:
            note += f"; {len(unknown)} named record(s) not found among the subject's"
        _event(request, "records_held", actor, note=note)
    return count


def complete(
    request: RightsRequest, *, actor: str, note: str | None = None, notify: bool = True
) -> None:
    request.completed_at = utcnow()
    request.decision = "granted"
    request.decided_at = request.completed_at
    request.decided_by = actor
    if request.type in SELF_SERVICE:
        days = current_app.config["DOWNLOAD_TTL_DAYS"]
        request.downloads_expire_at = request.completed_at + timedelta(days=days)
    _move(request, S.COMPLETED, "completed", actor, note)
    if request.type in SELF_SERVICE:
        notices.completed_with_download(request, verification.issue(request, "resume"))
    elif notify:
        notices.completed(request)


def start(request: RightsRequest, *, actor: str) -> None:
    _move(request, S.IN_PROGRESS, "started", actor)


def extend(request: RightsRequest, *, months: int, reason: str, actor: str) -> None:
    """Extend once by one or two months, within the first month, with a reason (Art. 12(3))."""
    if request.status in TERMINAL:
        raise InvalidTransition(f"A request that is {request.status} cannot be extended.")
    if request.extended_at is not None:
        raise Invalid("This request was already extended once.", {"months": ["already extended"]})
    reason = _required(reason, "reason", "Give the reason for the extension.")
    now = utcnow()
    request.due_at = extended_due_date(request.received_at, request.original_due_at, months, now)
    request.extended_at, request.extension_months = now, months
    request.extension_reason_enc = _seal(request, "extension_reason_enc", reason)
    _event(request, "extended", actor, note=f"{months} month(s)")
    notices.extended(request)


def refuse(request: RightsRequest, *, reason: str, actor: str) -> None:
    """Refuse with a reason; the notice tells the subject how to complain (Art. 12(4))."""
    reason = _required(reason, "reason", "Give the reason for the refusal.")
    if erasure_started(request):
        raise InvalidTransition("The erasure is under way and can only be carried through.")
    request.decision = "refused"
    request.decision_reason_enc = _seal(request, "decision_reason_enc", reason)
    request.decided_by, request.decided_at = actor, utcnow()
    _move(request, S.REFUSED, "refused", actor)
    notices.refused(request, restriction_ends=rectification.refuse(request, actor=actor))


def withdraw(request: RightsRequest, *, actor: str = "subject", text: str | None = None) -> None:
    if db.session.get(ErasureRun, request.id) is not None:
        raise InvalidTransition("The erasure is under way and cannot be stopped any more.")
    _move(request, S.WITHDRAWN, "withdrawn", actor, text=text)
    notices.withdrawn(request, restriction_ends=rectification.refuse(request, actor=actor))


def withdraw_for_member(request: RightsRequest, *, actor: str) -> None:
    """A platform service withdraws a request it filed, at its member's wish. An erasure whose
    identity is confirmed is the person's own decision: before it starts, only they can stop
    it (on their request page, or by asking the privacy team, who record how they asked)."""
    if request.type == RequestType.ERASURE and request.verified_at is not None:
        raise InvalidTransition(
            "This erasure is confirmed: only the person it is about can withdraw it now, "
            "from their request page or by asking the privacy team."
        )
    withdraw(request, actor=actor)


def close_superseded(subject_id: str, erasing_request_id: str, *, actor: str) -> int:
    """An erasure supersedes the subject's other open requests: they are closed (withdrawn,
    no notice: the last message the person gets is the erasure's). Returns how many."""
    open_states = [S.RECEIVED, S.AWAITING_VERIFICATION, S.OPEN, S.IN_PROGRESS]
    others = (
        db.session.execute(
            select(RightsRequest).where(
                RightsRequest.subject_id == subject_id,
                RightsRequest.id != erasing_request_id,
                RightsRequest.status.in_(open_states),
            )
        )
        .scalars()
        .all()
    )
    for other in others:
        _move(other, S.WITHDRAWN, "withdrawn", actor, note="superseded by the subject's erasure")
    return len(others)


def record_download(request: RightsRequest, what: str, *, actor: str) -> None:
    """Audit a download of a request's result (report, export, receipt) (flushes)."""
    audit.record(
        actor,
        "request.downloaded",
        subject_ref=subject_ref(request),
        target=f"request:{request.id}",
        details={"what": what},
    )


RESUME_LINKS_EVERY = timedelta(hours=1)


def ask_for_resume_link(reference: str) -> None:
    """"Email me a new link": the same work, and so the same time, whether or not the
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


def _seal(request: RightsRequest, column: str, text: str) -> bytes:
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


def downloads_available(request: RightsRequest) -> bool:
    """Reports and exports of a completed request, until they expire — and never once the
    subject has been erased (there is nothing left to report, and no key to read it with)."""
    return (
        request.status == S.COMPLETED
        and request.type in SELF_SERVICE
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
