"""Erasure (Art. 17) in the request lifecycle.

An erasure may be large, so it is never carried out inside the request that decides it: it is
queued for the worker (``erasure.run``), as soon as identity is verified or when an officer
approves it. Once its run has begun it can only be carried through — nobody can refuse or
withdraw it any more — and once the person has confirmed it, the platform service that filed it
cannot withdraw it on their behalf: only they can, or the privacy team recording how they asked.
"""

from sqlalchemy import select

from rights.delivery import outbox
from rights.errors import InvalidTransition
from rights.lifecycle import requests
from rights.lifecycle.handlers import RightHandler
from storage.db import db
from storage.models import ErasureRun, OutboxMessage, RequestStatus, RequestType, RightsRequest

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
    name = "erasure of your data"

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
            raise InvalidTransition("The erasure is under way and cannot be stopped any more.")
