"""Publication dates as one format: ISO 8601 date-time in UTC (``2025-06-09T10:00:00Z``)."""

from __future__ import annotations

import calendar
import email.utils
import time
from datetime import UTC, date, datetime

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(value: object) -> str | None:
    """``value`` (an ISO 8601 or RFC 2822 text, a ``datetime``, a date, or a UTC ``struct_time`` such as
    feedparser's ``*_parsed``) as ISO 8601 UTC; None when it is not a date. A time without a zone is UTC,
    a date without a time is its midnight UTC."""
    if value is None:
        return None
    if isinstance(value, time.struct_time):
        try:
            return _format(datetime.fromtimestamp(calendar.timegm(value), UTC))
        except (OverflowError, ValueError, OSError):
            return None
    if isinstance(value, datetime):
        return _format(value)
    if isinstance(value, date):
        return _format(datetime(value.year, value.month, value.day))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return _format(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _format(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def _format(moment: datetime) -> str | None:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).strftime(ISO_UTC)
    except (OverflowError, ValueError):
        return None
