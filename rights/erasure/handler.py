"""Erasure (Art. 17) in the request lifecycle.

An erasure may be large, so it is never carried out inside the request that decides it: it is
queued for the worker (``erasure.run``), as soon as identity is verified or when an officer
approves it. Once its run has begun it can only be carried through — nobody can refuse or
withdraw it any more — and once the person has confirmed it, the platform service that filed it
cannot withdraw it on their behalf: only they can, or the privacy team recording how they asked.
"""

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from rights.delivery import outbox
from rights.erasure.receipts import receipt_for
from rights.errors import InvalidTransition
from rights.holdings.names import Names
from rights.ledger import signing
from rights.lifecycle import outcomes, requests
from rights.lifecycle.handlers import RightHandler
from storage import wording
from storage.db import db
from storage.models import (
    Consent,
    Disclosure,
    ErasureRun,
    OutboxMessage,
    PerkAward,
    RequestStatus,
    RequestType,
    RightsRequest,
)
from storage.processes import cap, purpose_words
from storage.wording import N_

JOB = "erasure.run"


def started(request: RightsRequest) -> bool:
    """The erasure's run has begun: from then on it can only be carried through."""
    return db.session.get(ErasureRun, request.id) is not None


def queued(request: RightsRequest) -> bool:
    """The erasure waits for the worker: approving it again would run it twice."""
    return (
        db.session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.request_id == request.id,
                OutboxMessage.topic == JOB,
                OutboxMessage.status == "pending",
            )
        ).first()
        is not None
    )


class Erasure(RightHandler):
    type = RequestType.ERASURE
    name = N_("erasure of your data")

    def on_verified(self, request: RightsRequest) -> None:
        # What must be kept is kept by the run itself, under its named Art. 17(3) exception.
        requests.start(request, actor="lethe")
        outbox.enqueue_job(JOB, request_id=request.id)

    def approve(
        self, request: RightsRequest, *, actor: str, note: str | None, profile: dict | None
    ) -> None:
        if started(request) or queued(request):
            raise InvalidTransition("The erasure is already under way.")
        if request.status == RequestStatus.OPEN:
            requests.start(request, actor=actor)
        requests.record_event(request, "approved", actor, text=note)
        outbox.enqueue_job(JOB, request_id=request.id)

    def officer_actions(self, request: RightsRequest, actions: set[str]) -> set[str]:
        if started(request):
            return actions - {"approve", "refuse", "cancel"}
        if "approve" in actions and queued(request):
            return actions - {"approve"}
        return actions

    def check_refusal(self, request: RightsRequest) -> None:
        if started(request):
            raise InvalidTransition("The erasure is under way and can only be carried through.")

    def check_withdrawal(self, request: RightsRequest, *, by_platform: bool) -> None:
        if by_platform and request.verified_at is not None:
            raise InvalidTransition(
                "This erasure is confirmed: only the person it is about can withdraw it now, "
                "from their request page or by asking the privacy team."
            )
        if started(request):
            raise InvalidTransition(_("The erasure is under way and cannot be stopped any more."))

    def running(self, request: RightsRequest) -> bool:
        # Queued or being carried out by the worker: nothing for anyone to decide any more.
        return request.status == RequestStatus.IN_PROGRESS and (started(request) or queued(request))

    def outcome(self, request: RightsRequest) -> list[str]:
        """What was kept, until when and why, one line per category kept, from the receipt
        (as signed), in the language being written: "Your Nova X1 phone award from Nova
        Mobile: kept until 26 November 2031, because the law requires us to keep it (Art.
        17(3)(b) GDPR: …)." Empty before the receipt is issued."""
        receipt = receipt_for(request)
        if receipt is None:
            return []
        lines = []
        for entry in signing.claims_of(receipt.jws)["categories"]:
            if entry.get("action") != "retained" or not entry.get("records"):
                continue
            until = datetime.fromisoformat(entry["retain_until"])
            title = entry["title"]  # as signed, in English
            what = _kept(entry["category"], request) or _(title)
            lines.append(
                _(
                    "%(what)s: kept until %(date)s, %(why)s.",
                    what=what,
                    date=wording.long_date(until),
                    why=outcomes.why_kept(entry["exception"]),
                )
            )
        return lines


# How a kept category's records are named, from the rows erasure set apart, as a notice names
# them ("your Nova X1 phone award from Nova Mobile"); a category not named here reads as its
# title in the data map ("Your requests to us").
KEPT = {"perk_awards": PerkAward, "disclosures": Disclosure}


def _kept(category: str, request: RightsRequest) -> str | None:
    if category in KEPT:
        rows, names = _rows(KEPT[category], request), Names()
        names.load(category, rows)
        kept = [
            names.in_notice(category, row)
            for row in rows
            if names.award_of(category, row) is not None
        ]
    elif category == "consents":
        kept = [
            _("your record of consent to %(purpose)s", purpose=_(purpose_words(c.purpose)))
            for c in _rows(Consent, request)
        ]
    else:
        return None
    return cap("; ".join(dict.fromkeys(kept))) or None


def _rows(model, request: RightsRequest) -> list:
    return list(
        db.session.execute(
            select(model).where(model.subject_id == request.subject_id).order_by(model.id)
        ).scalars()
    )
