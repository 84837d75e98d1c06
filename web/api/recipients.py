"""Downstream recipients (Art. 19): what a webhook subscriber calls a member, and a
subscriber's confirmation that it has acted on a delivery."""

from flask import g

from rights.holdings import records
from rights.recipients import webhooks
from web.api import schemas
from web.api.blueprint import bp
from web.api.idempotency import idempotent
from web.api.keys import actor, require
from web.api.responses import DeliveryConfirmationOut, RecipientIdentifierOut

TAGS = ["recipients"]


@bp.post("/recipient-identifiers", tags=TAGS)
@require("records:write")
@idempotent
@bp.response(200, RecipientIdentifierOut, description="Recorded, or forgotten")
@bp.arguments(schemas.RecipientIdentifierIn)
def set_recipient_identifier(data):
    """Record what a webhook subscriber calls a member (its own customer id).

    Sent in that subscriber's events, so they can say who they are about; identifier null
    forgets it. Needs scope records:write.
    """
    member = records.member_for(data["member_id"])
    held = webhooks.set_identifier(
        data["subscriber_id"], member.subject_id, data["identifier"], actor=actor()
    )
    return {"subscriber_id": data["subscriber_id"], "recorded": held}


@bp.post("/deliveries/<delivery_id>/confirm", tags=TAGS)
@require("deliveries:confirm")
@idempotent
@bp.declares(404)
@bp.response(200, DeliveryConfirmationOut, description="Confirmed")
def confirm_delivery(delivery_id: str):
    """A subscriber confirms it has acted on a webhook delivery.

    Scope deliveries:confirm; only its own deliveries.
    """
    return webhooks.confirm(delivery_id, g.api_key)
