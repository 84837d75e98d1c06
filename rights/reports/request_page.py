"""A request's page, as read models: what the officers' page (:func:`for_officer`) and the
subject's own page (:func:`for_subject`) show about one request, gathered here in one call each
instead of a dozen calls from the view. They only read; what viewing a page writes (the
officer's audit entry, a record key shown once) stays with the view's one service call."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rights.access import summary as in_short
from rights.contest import rectification
from rights.erasure import erasure, statements
from rights.holdings import restrictions, subjects
from rights.lifecycle import evidence, notices, requests
from rights.recipients import webhooks
from rights.reports import queue
from storage.clock import utcnow
from storage.models import Member, Receipt, RightsRequest

# The rights whose changes recipients are told of (Art. 19): the subject's page lists them.
TOLD_ABOUT = ("rectification", "erasure", "restriction", "objection", "consent_withdrawal")


@dataclass(frozen=True)
class OfficerPage:
    """Everything the officers' request page shows, besides what depends on who looks."""

    req: RightsRequest
    member: Member | None
    subject_ref: str
    contact: str | None
    details: dict
    events: list[tuple[Any, str | None]]  # each event with its text, when it has one
    notices: list
    attachments: list
    held: list
    names: dict[str, str]
    allowed_actions: Any  # the actions the request's state allows
    extension_reason: str | None
    decision_reason: str | None
    awaiting_answer: bool
    now: datetime
    urgency: str | None
    days_left: int | None
    # Art. 19: the recipients told of this request's changes, and where each delivery is.
    deliveries: Any  # one page of them
    labels: dict
    states: dict
    told: dict | None  # Art. 19: who the data map says must be told, and how each was


def for_officer(req: RightsRequest, *, deliveries_page: int = 1) -> OfficerPage:
    now = utcnow()
    deliveries, labels = webhooks.deliveries(request_id=req.id, page=deliveries_page)
    return OfficerPage(
        req=req,
        member=subjects.member_of(req.subject_id),
        subject_ref=requests.subject_ref(req),
        contact=requests.contact(req),
        details=requests.details(req),
        events=[(e, requests.event_text(req, e)) for e in requests.events(req)],
        notices=notices.history(req),
        attachments=evidence.for_request(req),
        held=restrictions.describe(req),
        names=queue.officer_names(),
        allowed_actions=requests.allowed_actions(req),
        extension_reason=requests.extension_reason(req),
        decision_reason=requests.decision_reason(req),
        awaiting_answer=requests.awaiting_answer(req),
        now=now,
        urgency=queue.urgency(req, now),
        days_left=queue.days_left(req, now),
        deliveries=deliveries,
        labels=labels,
        states=webhooks.STATES,
        told=webhooks.who_is_told(req),
    )


@dataclass(frozen=True)
class SubjectPage:
    """Everything the subject's own request page shows."""

    req: RightsRequest
    receipt: Receipt | None  # an erasure's deletion receipt
    receipt_words: dict | None  # that receipt in words, with the records still held
    unrecoverable: dict | None  # when no copy of the data can be read (statements)
    events: list
    downloads: bool
    can_withdraw: bool
    extension_reason: str | None
    decision_reason: str | None
    remedies: str
    attachments: list
    pickable: list | None  # records they may point at, while a correction is open
    told: dict | None  # Art. 19: who the data map says must be told, and how each was
    question: str | None  # the officer's open question, if any
    asked_before: str | None  # "You already asked us this on …": linked to an earlier one
    awaiting_answer: bool
    summary: dict | None  # their data in short, in plain words (rights/access/summary.py)


def for_subject(req: RightsRequest) -> SubjectPage:
    receipt = erasure.receipt_for(req) if req.type == "erasure" else None
    events = requests.events(req)
    awaiting = requests.awaiting_answer(req)
    return SubjectPage(
        req=req,
        receipt=receipt,
        receipt_words=statements.for_owner(receipt) if receipt else None,
        unrecoverable=statements.key_unrecoverable(receipt) if receipt else None,
        events=events,
        downloads=requests.downloads_available(req),
        can_withdraw=req.status not in {s.value for s in requests.TERMINAL},
        extension_reason=requests.extension_reason(req),
        decision_reason=requests.decision_reason(req),
        remedies=notices.remedies_text(),
        attachments=evidence.for_request(req),
        pickable=_pickable(req),
        told=webhooks.who_is_told(req) if req.type in TOLD_ABOUT else None,
        question=_question(req, events) if awaiting else None,
        asked_before=notices.asked_before(req) if req.status in ("open", "in_progress") else None,
        awaiting_answer=awaiting,
        summary=in_short.for_request_page(req),
    )


def _pickable(req: RightsRequest) -> list | None:
    if req.type in ("rectification", "restriction") and req.status in ("open", "in_progress"):
        return rectification.choices(req)
    return None


def _question(req: RightsRequest, events: list) -> str | None:
    asked = [e for e in events if e.kind == "information_requested"][-1]
    return requests.event_text(req, asked)
