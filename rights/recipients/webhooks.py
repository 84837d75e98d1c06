"""Signed webhooks to downstream recipients (Art. 19), with guaranteed delivery.

Events are written to the outbox with the change that causes them
(:mod:`rights.recipients.downstream`), with one :class:`Delivery` per subscriber that wants it,
in the same transaction (rectification, erasure and restriction go to every subscriber). The
worker delivers due deliveries, signed (Standard Webhooks 1.0), retried with backoff, then
dead-lettered; subscribers confirm what they acted on.

This module is where callers find it all; the work lives in three modules:
:mod:`~rights.recipients.webhook_subscribers` (who is told, their secrets),
:mod:`~rights.recipients.webhook_events` (fan-out of events into deliveries, and the
recipients' own identifiers for a subject) and :mod:`~rights.recipients.webhook_delivery`
(claiming, sending and settling deliveries; what officers and subjects see of them).
Who must be told of a request according to the data map, and how each was told — by these
webhooks or by the privacy team — is :mod:`~rights.recipients.told` (:func:`who_is_told`).
"""

from rights.recipients.told import of_request as who_is_told
from rights.recipients.webhook_delivery import (
    BATCH,
    CLAIM,
    MAX_ATTEMPTS,
    body_of,
    confirm,
    deliver_due,
    deliver_due_steps,
    deliveries,
    find_delivery,
    lease,
    recipients_of,
    redeliver,
    signed,
)
from rights.recipients.webhook_events import (
    fan_out,
    fan_out_left_over_steps,
    forget_identifiers,
    set_identifier,
)
from rights.recipients.webhook_subscribers import (
    ALWAYS,
    EVENTS,
    STATES,
    STOPPED,
    add,
    check_target,
    get,
    new_secret,
    overview,
    rotate_secret,
    set_active,
    set_recipient,
    wants,
)
from rights.recipients.webhook_subscribers import secrets_of as _secrets

__all__ = [
    "ALWAYS",
    "BATCH",
    "CLAIM",
    "EVENTS",
    "MAX_ATTEMPTS",
    "STATES",
    "STOPPED",
    "_secrets",
    "add",
    "body_of",
    "check_target",
    "confirm",
    "deliver_due",
    "deliver_due_steps",
    "deliveries",
    "fan_out",
    "fan_out_left_over_steps",
    "find_delivery",
    "forget_identifiers",
    "get",
    "lease",
    "new_secret",
    "overview",
    "recipients_of",
    "redeliver",
    "rotate_secret",
    "set_active",
    "set_identifier",
    "set_recipient",
    "signed",
    "wants",
    "who_is_told",
]
