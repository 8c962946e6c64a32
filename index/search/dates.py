"""Articles' ``published`` dates as calendar dates, for ``--since`` / ``--until`` filters.

Readers store ``published`` as the source wrote it: an ISO date or time from front matter, JSONL or an
HTML meta tag (``2025-06-01``, ``2025-06-01T09:30:00Z``), an RFC 2822 date from a feed
(``Mon, 02 Jun 2025 09:30:00 GMT``), or a written-out date (``June 2, 2025``). :func:`published_date`
reads each as the calendar date written in it (no time-zone shift: an article published
``2025-06-01T23:30:00-05:00`` is of June 1st, as its page says); anything else is no date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

_WRITTEN = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y/%m/%d", "%d.%m.%Y")
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
MAX_CHARS = 80  # longer values are not dates


def published_date(value: str | None) -> date | None:
    """The calendar date ``value`` names, or None when it names none (see the module docstring)."""
    if not value:
        return None
    text = " ".join(value.split())
    if not text or len(text) > MAX_CHARS:
        return None
    day = _ISO_DAY.match(text)
    if day:
        try:
            return date(int(day[1]), int(day[2]), int(day[3]))
        except ValueError:
            return None
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    for pattern in _WRITTEN:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` date typed by a user (ValueError, saying the expected form, for anything else)."""
    cleaned = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", cleaned):
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-06-01")
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date; write it as YYYY-MM-DD, e.g. 2025-06-01") from None


_AGO = re.compile(r"(\d{1,5})\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime, default: timedelta) -> datetime:
    """The time ``text`` names: a time ago (``24h``, ``3d``, ``2w``, ``90m``, ``3 days``; a leading ``since``
    is allowed), or a ``YYYY-MM-DD`` day from its midnight, UTC; ``now - default`` for nothing.

    ValueError for anything else.
    """
    words = " ".join(text.lower().split()).removeprefix("since ").strip()
    if not words:
        return now - default
    ago = _AGO.fullmatch(words)
    if ago:
        return now - timedelta(**{_UNITS[ago[2][0]]: int(ago[1])})
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", words):
        try:
            return datetime.fromisoformat(words).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(f"{text!r} is neither a time ago (24h, 3d, 2w, 90m) nor a day (YYYY-MM-DD)")
