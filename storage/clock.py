"""The one clock. Everything that needs "now" calls :func:`utcnow` so tests can freeze it."""

import calendar
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def add_months(start: datetime, months: int) -> datetime:
    """Calendar months, clamped to month end: 31 Jan + 1 month = 28 Feb (29 in a leap year)."""
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
