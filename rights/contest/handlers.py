"""Rectification (Art. 16), restriction (Art. 18), objection (Art. 21) and consent withdrawal
(Art. 7(3)) in the request lifecycle.

Rectification and restriction name records: from the moment the request stands (identity
verified) what they name is held back, and the subject may point at more from their request
page while it is open. An objection is acted on at once when it is absolute, and otherwise
holds back the processing objected to while an officer weighs it. Whatever a request holds back
is let go when it is refused, withdrawn or lifted — after the subject is told (Art. 18(3)).
Withdrawing a consent takes no officer at all.
"""

from datetime import datetime

from rights.contest import objections, rectification
from rights.lifecycle import requests
from rights.lifecycle.handlers import RightHandler
from storage.models import RequestType, RightsRequest
from storage.wording import N_


class HoldsBack(RightHandler):
    """A right whose request may hold records back while it stands."""

    def release(self, request: RightsRequest, *, actor: str) -> datetime | None:
        return rectification.refuse(request, actor=actor)


class NamesRecords(HoldsBack):
    """A right whose request names the subject's records (``details["records"]``)."""

    names_records = True
    # Why the named records are held back (one of restrictions.REASONS).
    hold_reason = "requested"

    def on_verified(self, request: RightsRequest) -> None:
        # From the moment the request stands, what it names is held back (Art. 18(1)(a)).
        requests.hold(request, requests.details(request).get("records") or [], actor="lethe")

    def record_choices(self, request: RightsRequest) -> list[dict]:
        return rectification.choices(request)

    def hold_records(
        self, request: RightsRequest, names: list[str], *, actor: str
    ) -> tuple[int, list[str]]:
        return rectification.contest(request, names, actor=actor, reason=self.hold_reason)


class Rectification(NamesRecords):
    type = RequestType.RECTIFICATION
    name = N_("correction of your data")
    hold_reason = "contested"

    def approve(
        self, request: RightsRequest, *, actor: str, note: str | None, profile: dict | None
    ) -> None:
        # Granting applies the correction: the officer's values for the profile fields named,
        # and the named awards, list entries and promotions marked as they really are.
        requests.record_event(request, "approved", actor, text=note)
        changed = rectification.accept(request, actor=actor, profile=profile)
        requests.record_event(
            request, "corrected", actor, note=f"{len(changed)} record(s) corrected"
        )
        requests.complete(request, actor=actor)

    def profile_fields(self, request: RightsRequest) -> list[str]:
        return rectification.profile_fields(requests.details(request).get("records") or [])


class Restriction(NamesRecords):
    type = RequestType.RESTRICTION
    name = N_("restriction of the use of your data")


class Objection(HoldsBack):
    type = RequestType.OBJECTION
    name = N_("objection to the use of your data")

    def on_verified(self, request: RightsRequest) -> None:
        purpose = requests.details(request).get("purpose") or ""
        if objections.object_to(request, purpose, actor="lethe"):
            requests.complete(
                request, actor="lethe", note="absolute objection: acted on at once (Art. 21(3))"
            )


class ConsentWithdrawal(RightHandler):
    type = RequestType.CONSENT_WITHDRAWAL
    name = N_("withdrawal of your consent")

    def on_verified(self, request: RightsRequest) -> None:
        # As easy as giving it: no officer in between, effective from now on (Art. 7(3)).
        purpose = requests.details(request).get("consent_purpose") or ""
        changed = objections.withdraw_consent(request, purpose, actor="lethe")
        requests.record_event(
            request, "consent_withdrawn", "lethe", note=f"{len(changed)} record(s) changed"
        )
        requests.complete(request, actor="lethe", note="consent withdrawn from now on")
