"""Access (Art. 15) and portability (Art. 20) in the request lifecycle.

Both are answered from the data map alone: once the subject's identity is verified there is
nothing for an officer to weigh, so the request completes at once and its answer — the report
or the export, built when it is downloaded — stays downloadable for ``DOWNLOAD_TTL_DAYS``.
"""

from datetime import timedelta

from flask import current_app

from rights.lifecycle import notices, requests, verification
from rights.lifecycle.handlers import RightHandler
from storage.models import RequestType, RightsRequest
from storage.wording import N_


class AnsweredFromDataMap(RightHandler):
    self_service = True

    def on_verified(self, request: RightsRequest) -> None:
        requests.complete(
            request, actor="lethe", note="answered from the data map after verification"
        )

    def approve(
        self, request: RightsRequest, *, actor: str, note: str | None, profile: dict | None
    ) -> None:
        # An officer's approval gives the answer verification would have given.
        requests.complete(request, actor=actor, note="answered from the data map")

    def on_completed(self, request: RightsRequest, *, notify: bool) -> None:
        # The answer is the download itself, so the subject is always sent the link to it.
        days = current_app.config["DOWNLOAD_TTL_DAYS"]
        request.downloads_expire_at = request.completed_at + timedelta(days=days)
        notices.completed_with_download(request, verification.issue(request, "resume"))


class Access(AnsweredFromDataMap):
    type = RequestType.ACCESS
    name = N_("access to your data")
    download_noun = N_("report")


class Portability(AnsweredFromDataMap):
    type = RequestType.PORTABILITY
    name = N_("a copy of your data to take elsewhere")
    download_noun = N_("export")
