"""Art. 12(3) deadlines: one calendar month from receipt, extendable once by up to two more."""

from datetime import datetime

from rights.errors import Invalid
from storage.clock import add_months

MAX_EXTENSION_MONTHS = 2


def due_date(received_at: datetime) -> datetime:
    """One calendar month after receipt, clamped to month end (31 Jan -> 28/29 Feb)."""
    return add_months(received_at, 1)


def extended_due_date(
    received_at: datetime, original_due_at: datetime, months: int, now: datetime
) -> datetime:
    """The new deadline after an extension by ``months`` (1 or 2), decided at ``now``.

    Refuses an extension decided after the first month (the subject must be told within it)
    or one that would go beyond three months from receipt.
    """
    if not isinstance(months, int) or months < 1:
        raise Invalid("An extension is one or two further months.", {"months": ["1 or 2"]})
    if months > MAX_EXTENSION_MONTHS:
        raise Invalid(
            "An extension may add at most two further months (three in all).",
            {"months": ["at most 2"]},
        )
    if now > original_due_at:
        raise Invalid(
            "The extension must be decided and told to the subject within the first month.",
            {"months": ["too late: the first month has passed"]},
        )
    return add_months(received_at, 1 + months)
