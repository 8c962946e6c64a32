"""How the bot logs: readable text or one JSON object per line, a request id on every line, secrets masked.

Slack tokens (``xox?-…``, ``xapp-…``) and the configured secrets are masked
twice: in each record's message (a filter, so any handler benefits) and in
the formatted line, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from corpusbot.bot.ops.requestctx import current_request_id

TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
MASK = "[redacted]"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and goes into the JSON object.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_tag"}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    text = TOKEN.sub(lambda m: f"{m.group(1)}-{MASK}", text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _long_enough(secrets: Iterable[str | None]) -> tuple[str, ...]:
    # Very short values would mask ordinary words; real secrets are long.
    return tuple(s for s in secrets if s and len(s) >= 8)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message when it holds a token or one of ``secrets``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = _long_enough(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RequestIdFilter(logging.Filter):
    """Puts the id of the Slack request being handled (or None) on the record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class TextFormatter(logging.Formatter):
    """``2025-01-01 12:00:00,000 INFO corpusbot.http [3f2a9c1b7d4e]: message`` (no brackets outside a request)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = _long_enough(secrets)

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        record.request_tag = f" [{request_id}]" if request_id else ""
        return redact(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, any ``extra=`` fields, exc_info."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = _long_enough(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        line.update((key, value) for key, value in record.__dict__.items() if key not in _STANDARD)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return redact(json.dumps(line, default=str, ensure_ascii=False), self.secrets)


def make_handler(
    fmt: str = "text", secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> logging.Handler:
    """A stream handler (stderr by default) writing ``fmt`` lines with request ids and secrets masked."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}")
    secrets = tuple(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets(secrets))
    return handler


def configure(level: int | None = None, secrets: Iterable[str | None] = (), fmt: str = "text") -> None:
    """Log ``fmt`` lines to stderr (unless logging is already set up) and mask secrets in everything logged.

    ``level`` sets the root logger's level (INFO when this sets up logging and none is given).
    Calling it again replaces the masks instead of stacking them.
    """
    secrets = tuple(secrets)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(make_handler(fmt, secrets))
        level = logging.INFO if level is None else level
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets | RequestIdFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RequestIdFilter())
        handler.addFilter(RedactSecrets(secrets))
    if level is not None:
        root.setLevel(level)
