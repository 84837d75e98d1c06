"""Deadlines by regime. The GDPR's (Art. 12(3)): one calendar month from receipt, extendable
once by up to two more. The CCPA's (Cal. Civ. Code §1798.130(a)(2)): 45 days from receipt,
extendable once by another 45 with notice within the first 45. A request an authorized agent
files voluntarily (no regime) gets the GDPR's calendar, the shorter of the two."""

from datetime import datetime, timedelta

from rights.errors import Invalid
from storage.clock import add_months

MAX_EXTENSION_MONTHS = 2
CCPA = "ccpa"
CCPA_DAYS = timedelta(days=45)


def due_date(received_at: datetime, regime: str | None = None) -> datetime:
    """One calendar month after receipt, clamped to month end (31 Jan -> 28/29 Feb); 45 days
    under the CCPA."""
    if regime == CCPA:
        return received_at + CCPA_DAYS
    return add_months(received_at, 1)


def extended_due_date(
    received_at: datetime,
    original_due_at: datetime,
    months: int,
    now: datetime,
    regime: str | None = None,
) -> datetime:
    """The new deadline after an extension by ``months`` (1 or 2), decided at ``now``; under
    the CCPA the one extension is 45 days, whatever ``months`` says.

    Refuses an extension decided after the first period (the subject must be told within it)
    or one that would go beyond three months from receipt.
    """
    if regime == CCPA:
        if now > original_due_at:
            raise Invalid(
                "The extension must be decided and told to the person within the first 45 days.",
                {"months": ["too late: the first 45 days have passed"]},
            )
        return original_due_at + CCPA_DAYS
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
