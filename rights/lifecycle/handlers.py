"""One handler per right: what a request of one type adds to the lifecycle every request shares.

The lifecycle (:mod:`rights.lifecycle.requests`) owns the states, the compare-and-set moves,
the journal and the notices; it never asks which right a request is for. At each step where the
rights differ it calls the request's handler instead: when identity is verified, when an
officer approves, refuses or the request is withdrawn, when it completes, and when the officer's
page asks what may be done now. Each right's package subclasses :class:`RightHandler` and
``rights.catalogue`` registers it, so an eighth right is one module there and one line in the
catalogue, with no edit here.

The defaults describe a right an officer decides on, which holds nothing back meanwhile.
"""

from datetime import datetime

from rights.errors import InvalidTransition
from rights.lifecycle import notices, outcomes, requests
from rights.lifecycle.registry import UnknownRight, handler_for, register, types, unregister
from storage.models import RightsRequest
from storage.wording import N_

__all__ = ["RightHandler", "UnknownRight", "handler_for", "register", "types", "unregister"]


class RightHandler:
    """What happens to a request of ``type``; subclasses override only where their right
    differs from an officer's plain decision."""

    type: str = ""
    # How notices name the right: "your request for <name>". In English, marked for the
    # catalogue (``N_``): the dashboard and the API read it as it is; a member reads it
    # translated (``gettext(handler.name)``, the templates' ``translated`` filter).
    name: str = ""
    # Answered from the data map alone once identity is verified; the answer is a download.
    self_service: bool = False
    # What that download is called in the notice saying it is ready ("Your report is ready"),
    # marked like ``name``.
    download_noun: str = N_("download")
    # The subject points at records of theirs, which the request holds back while it is open.
    names_records: bool = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.type!r}>"

    def on_verified(self, request: RightsRequest) -> None:
        """Identity is confirmed and the request is open. What Lethe does at once, before any
        officer looks at it; by default nothing: the request waits for a decision."""

    def approve(
        self, request: RightsRequest, *, actor: str, note: str | None, profile: dict | None
    ) -> None:
        """An officer grants the request (it is open or in progress). By default the decision
        is recorded and the request completed, with its notice."""
        requests.record_event(request, "approved", actor, text=note)
        requests.complete(request, actor=actor)

    def on_completed(self, request: RightsRequest, *, notify: bool) -> None:
        """The request has just been completed: tell the subject, unless the caller sends a
        message of its own (``notify`` False)."""
        if notify:
            notices.completed(request)

    def outcome(self, request: RightsRequest) -> list[str]:
        """What the request changed, in sentences its completion notice lists ("Your Nova X1
        phone award from Nova Mobile now says not received."): records named by what they
        are, never by internal ids or raw status values. By default, what the request's
        history rows say it changed, then what it holds back now; a right whose answer is
        something else (an erasure: what was kept, until when and why) says so itself."""
        return [*outcomes.corrections(request), *outcomes.holds(request)]

    def running(self, request: RightsRequest) -> bool:
        """Work for the request is under way with no one to wait for (an erasure being
        carried out): its page refreshes itself until it is done. By default nothing runs
        on its own."""
        return False

    def check_refusal(self, request: RightsRequest) -> None:
        """Raise :class:`InvalidTransition` when this request can no longer be refused."""

    def check_withdrawal(self, request: RightsRequest, *, by_platform: bool) -> None:
        """Raise :class:`InvalidTransition` when this request can no longer be withdrawn:
        at all, or (``by_platform``) by the platform service that filed it."""

    def release(self, request: RightsRequest, *, actor: str) -> datetime | None:
        """The request is refused, withdrawn or lifted: let go of what it holds back. Returns
        when the hold ends (the subject is told first), or None when it held nothing."""
        return None

    def officer_actions(self, request: RightsRequest, actions: set[str]) -> set[str]:
        """Narrow the actions every open request allows (ask, verify, approve, refuse, cancel,
        extend) to those this request still allows."""
        return actions

    def profile_fields(self, request: RightsRequest) -> list[str]:
        """Profile fields the request names as wrong, for the officer to type the right
        values into when approving."""
        return []

    def record_choices(self, request: RightsRequest) -> list[dict]:
        """The subject's records they may point at (``names_records`` rights): dicts with
        ``id``, ``label`` and whether this request already ``held`` it."""
        return []

    def hold_records(
        self, request: RightsRequest, names: list[str], *, actor: str
    ) -> tuple[int, list[str]]:
        """Hold back the named records (and what is built on them) for this request. Returns
        (how many rows are now held, the names that matched none of the subject's records)."""
        raise InvalidTransition("Only corrections and restrictions name records.")
