"""The request lifecycle, shared by all the rights.

States: received -> awaiting_verification -> open -> in_progress -> completed | refused |
withdrawn. Every transition writes a request event and an audit entry, and queues the notice
the subject is owed. Where the rights differ, the request's handler decides
(:mod:`rights.lifecycle.handlers`); this module never asks which right a request is for.
Services flush; the caller (view, CLI, job) commits.

Reading requests (:mod:`~rights.lifecycle.lookup`), links back to them
(:mod:`~rights.lifecycle.links`) and the states and journal (:mod:`~rights.lifecycle.states`)
live in modules of their own; the names imported from them with ``noqa: F401`` are re-exported,
so that callers keep one module to call for anything about a request.
"""

from flask_babel import gettext as _
from sqlalchemy import select

from rights.errors import Invalid, InvalidTransition
from rights.holdings import restrictions, subjects
from rights.ledger import audit
from rights.lifecycle import notices, verification
from rights.lifecycle.deadlines import CCPA, due_date, extended_due_date
from rights.lifecycle.links import (  # noqa: F401
    RESUME_LINKS_EVERY,
    ask_for_resume_link,
    link_to_earlier,
    resume,
    resume_link_job,
    send_resume_link,
)
from rights.lifecycle.lookup import (  # noqa: F401
    REFERENCE,
    awaiting_answer,
    by_reference,
    contact,
    decision_reason,
    details,
    downloads_available,
    event_text,
    events,
    extension_reason,
    filtered,
    get,
    new_reference,
    seal,
    search,
)
from rights.lifecycle.registry import handler_for, types
from rights.lifecycle.states import (  # noqa: F401
    ACTIVE,
    ALLOWED,
    MAX_TEXT,
    TERMINAL,
    S,
    move,
    record_event,
    required,
    subject_ref,
)
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import RightsRequest, Subject


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
    regime: str | None = None,
) -> RightsRequest:
    """File a request. Unverified requests get a single-use emailed link; the answer and the
    work done are the same whether or not ``email`` belongs to a member. ``regime``: "ccpa"
    for a request filed under the CCPA (its deadlines); None, the GDPR."""
    if type not in types():
        raise Invalid("Unknown request type.", {"type": ["unknown request type"]})
    subject, address = _subject_and_contact(email, member_id)
    now = utcnow()
    request = RightsRequest(
        reference=new_reference(),
        type=type,
        status=S.RECEIVED,
        subject_id=subject.id,
        channel=channel,
        regime=regime,
        received_at=now,
        original_due_at=due_date(now, regime),
        due_at=due_date(now, regime),
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
    )
    request.contact_enc = vault.encrypt(subject.id, "rights_requests.contact_enc", address)
    request.details_enc = vault.encrypt_json(
        subject.id, "rights_requests.details_enc", details or {}
    )
    db.session.add(request)
    db.session.flush()
    record_event(request, "received", actor, note=f"channel {channel}")

    if verified:
        _verified(request, actor, method=f"vouched by {actor}")
    else:
        move(request, S.AWAITING_VERIFICATION, "verification_sent", actor)
        notices.verification(request, verification.issue(request, "verify"))
    return request


def _subject_and_contact(email: str | None, member_id: str | None) -> tuple[Subject, str]:
    """Who the request is about, and where its notices go: a member's address on file, or the
    address the request was filed with."""
    if member_id is not None:
        member = subjects.member_by_external_id(member_id)
        if member is None:
            raise Invalid("No member with that id.", {"member_id": ["unknown member"]})
        subject = db.session.get(Subject, member.subject_id)
        return subject, vault.decrypt(subject.id, "members.email_enc", member.email_enc)
    if email:
        return subjects.get_or_create(email), email.strip()
    raise Invalid("Give an email address or a member id.", {"email": ["required"]})


def _verified(request: RightsRequest, actor: str, method: str, text: str | None = None) -> None:
    """Identity is confirmed: the request stands, the subject is told when they will have
    their answer, and the right does at once whatever needs no officer."""
    request.verified_at = utcnow()
    request.verification_method = method
    move(request, S.OPEN, "verified", actor, note=method, text=text)
    # Asked again for what an open request of theirs asks: answered together, and told so.
    link_to_earlier(request)
    notices.received(request)
    handler_for(request.type).on_verified(request)


def verify_manually(request: RightsRequest, *, reason: str, actor: str) -> None:
    """An officer confirms the subject's identity by other means (the emailed link was lost,
    the person called in with their member number…), recording why they are satisfied or
    what doubt remained. Then the request goes on as if the link had been confirmed."""
    reason = required(reason, "reason", "Say how identity was checked.")
    if request.status != S.AWAITING_VERIFICATION:
        raise InvalidTransition(f"A request that is {request.status} needs no verification.")
    _verified(request, actor, method="checked by an officer", text=reason)


def confirm(token: str) -> RightsRequest:
    """The subject pressed 'Confirm' on the emailed link (POST). Single use."""
    request = verification.consume(token, "verify")
    if request.status != S.AWAITING_VERIFICATION:
        raise InvalidTransition("This request is already confirmed.")
    _verified(request, "subject", method="emailed link")
    return request


def approve(
    request: RightsRequest, *, actor: str, note: str | None = None, profile: dict | None = None
) -> None:
    """Grant the request; what granting does is the right's own (its handler): access and
    portability are answered from the data map, an erasure is queued for the worker, a
    correction is applied, the others are recorded as granted and the subject told."""
    if request.status not in (S.OPEN, S.IN_PROGRESS):
        raise InvalidTransition(f"A request that is {request.status} cannot be approved.")
    note = (note or "").strip()[:MAX_TEXT] or None
    handler_for(request.type).approve(request, actor=actor, note=note, profile=profile)


def allowed_actions(request: RightsRequest) -> set[str]:
    """What an officer may do with this request now; the services enforce the same rules."""
    status = S(request.status)
    if status in TERMINAL:
        # A granted restriction (or upheld objection) holds until lifted, with notice.
        return {"lift"} if status == S.COMPLETED and restrictions.held_open(request) else set()
    actions = {"ask", "refuse", "cancel"}
    if status == S.AWAITING_VERIFICATION:
        actions.add("verify")
    if status in (S.OPEN, S.IN_PROGRESS):
        actions.add("approve")
    if request.extended_at is None and utcnow() <= request.original_due_at:
        actions.add("extend")
    return handler_for(request.type).officer_actions(request, actions)


def ask_for_information(request: RightsRequest, *, question: str, actor: str) -> None:
    """Ask the subject something the request needs (which records, which account…). The
    notice carries the question and a link back to the request, where they answer."""
    question = required(question, "question", "Write the question for the subject.")
    if request.status in TERMINAL:
        raise InvalidTransition(f"A request that is {request.status} is closed.")
    record_event(request, "information_requested", actor, text=question)
    notices.information_requested(request, question, verification.issue(request, "resume"))


def answer_information(request: RightsRequest, *, answer: str) -> None:
    """The subject's answer to an officer's question (from their request page)."""
    # Said on the request's page, in the page's language.
    answer = required(answer, "answer", _("Write your answer."))
    if not awaiting_answer(request):
        raise InvalidTransition(_("There is no open question on this request."))
    record_event(request, "information_received", "subject", text=answer)


def cancel(request: RightsRequest, *, reason: str, actor: str) -> None:
    """Withdraw on the subject's behalf (they asked by phone, by letter…): how they asked is
    recorded; the subject is sent the same notice as when they withdraw themselves."""
    reason = required(reason, "reason", "Say how the subject asked to cancel.")
    withdraw(request, actor=actor, text=reason)


def assign(request: RightsRequest, officer_id: int | None, *, actor: str) -> None:
    if request.assignee_id == officer_id:
        return
    if request.status in TERMINAL:
        raise InvalidTransition("This request is closed: there is nobody to give it to.")
    request.assignee_id = officer_id
    target = f"officer:{officer_id}" if officer_id else "nobody"
    record_event(request, "assigned", actor, note=f"to {target}")


def lift(request: RightsRequest, *, reason: str, actor: str) -> None:
    """End a granted restriction: the subject is told first, and the hold ends after the
    notice period (Art. 18(3))."""
    reason = required(reason, "reason", "Say why the restriction can end.")
    if request.status != S.COMPLETED or not restrictions.held_open(request):
        raise InvalidTransition("This request holds nothing back that could be lifted.")
    ends = handler_for(request.type).release(request, actor=actor)
    if ends is None:  # a hold its right does not know how to release: say so, change nothing
        raise InvalidTransition("This request holds nothing back that could be lifted.")
    record_event(
        request, "restriction_lifting", actor, note=f"ends {ends.isoformat()}", text=reason
    )
    notices.restriction_lifting(request, reason, ends)


def profile_fields(request: RightsRequest) -> list[str]:
    """Profile fields a rectification names as wrong: the officer types the right values."""
    return handler_for(request.type).profile_fields(request)


def record_choices(request: RightsRequest) -> list[dict]:
    """The subject's records they may point at from their request page (for the rights that
    name records, while the request is open), each saying whether it is already held back."""
    handler = handler_for(request.type)
    if not handler.names_records or request.status not in (S.OPEN, S.IN_PROGRESS):
        return []
    return handler.record_choices(request)


def point_at(request: RightsRequest, names: list[str]) -> int:
    """The subject points at more of their records from their request page (rectification or
    restriction, while open): they join the request's details and are held back at once."""
    # Said on the request's page, in the page's language.
    handler = handler_for(request.type)
    if not handler.names_records:
        raise InvalidTransition(_("Only corrections and restrictions name records."))
    if request.status not in (S.OPEN, S.IN_PROGRESS):
        raise InvalidTransition(
            _("A request that is %(status)s cannot change.", status=request.status)
        )
    own = {c["id"] for c in handler.record_choices(request)}
    names = [n for n in dict.fromkeys(names) if n in own]
    if not names:
        raise Invalid(_("Choose at least one of your records."), {"record": ["choose one"]})
    current = details(request)
    current["records"] = list(dict.fromkeys([*(current.get("records") or []), *names]))
    request.details_enc = vault.encrypt_json(
        request.subject_id, "rights_requests.details_enc", current
    )
    return hold(request, names, actor="subject")


def hold(request: RightsRequest, names: list[str], *, actor: str) -> int:
    """Restrict the records the subject names (and what is built on them) for this request;
    names that are not the subject's records are noted for the officer (flushes)."""
    # A name no record can carry (a NUL, which PostgreSQL refuses in any query, kept by a
    # request filed before the form refused it) is one of the subject's records by no means.
    unreadable = [n for n in names if not isinstance(n, str) or "\x00" in n]
    names = [n for n in names if n not in unreadable]
    count, unknown = handler_for(request.type).hold_records(request, names, actor=actor)
    unknown = [*unknown, *unreadable]
    if count or unknown:
        note = f"{count} record(s) held back"
        if unknown:
            note += f"; {len(unknown)} named record(s) not found among the subject's"
        record_event(request, "records_held", actor, note=note)
    return count


def complete(
    request: RightsRequest, *, actor: str, note: str | None = None, notify: bool = True
) -> None:
    """Close the request as granted; its handler tells the subject (``notify`` False when the
    caller sends a message of its own, as an erasure's last one)."""
    request.completed_at = utcnow()
    request.decision = "granted"
    request.decided_at = request.completed_at
    request.decided_by = actor
    move(request, S.COMPLETED, "completed", actor, note)
    handler_for(request.type).on_completed(request, notify=notify)


def start(request: RightsRequest, *, actor: str) -> None:
    move(request, S.IN_PROGRESS, "started", actor)


def extend(request: RightsRequest, *, months: int, reason: str, actor: str) -> None:
    """Extend once by one or two months, within the first month, with a reason (Art. 12(3))."""
    if request.status in TERMINAL:
        raise InvalidTransition(f"A request that is {request.status} cannot be extended.")
    if request.extended_at is not None:
        raise Invalid("This request was already extended once.", {"months": ["already extended"]})
    reason = required(reason, "reason", "Give the reason for the extension.")
    now = utcnow()
    request.due_at = extended_due_date(
        request.received_at, request.original_due_at, months, now, request.regime
    )
    # Under the CCPA the one extension is 45 days, not months: none recorded.
    ccpa = request.regime == CCPA
    request.extended_at, request.extension_months = now, (None if ccpa else months)
    request.extension_reason_enc = seal(request, "extension_reason_enc", reason)
    record_event(request, "extended", actor, note="45 days" if ccpa else f"{months} month(s)")
    notices.extended(request)


def refuse(request: RightsRequest, *, reason: str, actor: str) -> None:
    """Refuse with a reason; the notice tells the subject how to complain (Art. 12(4)) and
    when whatever the request held back is used again."""
    reason = required(reason, "reason", "Give the reason for the refusal.")
    handler = handler_for(request.type)
    handler.check_refusal(request)
    request.decision = "refused"
    request.decision_reason_enc = seal(request, "decision_reason_enc", reason)
    request.decided_by, request.decided_at = actor, utcnow()
    move(request, S.REFUSED, "refused", actor)
    notices.refused(request, restriction_ends=handler.release(request, actor=actor))


def withdraw(request: RightsRequest, *, actor: str = "subject", text: str | None = None) -> None:
    handler = handler_for(request.type)
    handler.check_withdrawal(request, by_platform=False)
    move(request, S.WITHDRAWN, "withdrawn", actor, text=text)
    notices.withdrawn(request, restriction_ends=handler.release(request, actor=actor))


def withdraw_for_member(request: RightsRequest, *, actor: str) -> None:
    """A platform service withdraws a request it filed, at its member's wish; some rights
    leave that to the person alone once they have confirmed it (an erasure)."""
    handler_for(request.type).check_withdrawal(request, by_platform=True)
    withdraw(request, actor=actor)


def close_superseded(subject_id: str, erasing_request_id: str, *, actor: str) -> int:
    """An erasure supersedes the subject's other open requests: they are closed (withdrawn,
    no notice: the last message the person gets is the erasure's). Returns how many."""
    others = (
        db.session.execute(
            select(RightsRequest).where(
                RightsRequest.subject_id == subject_id,
                RightsRequest.id != erasing_request_id,
                RightsRequest.status.in_(ACTIVE),
            )
        )
        .scalars()
        .all()
    )
    for other in others:
        move(other, S.WITHDRAWN, "withdrawn", actor, note="superseded by the subject's erasure")
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
