"""Keep secrets out of the logs: a filter that masks Slack tokens and the configured secrets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
MASK = "[redacted]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    text = TOKEN.sub(lambda m: f"{m.group(1)}-{MASK}", text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message when it holds a token or one of ``secrets``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Very short values would mask ordinary words; real secrets are long.
        self.secrets = tuple(s for s in secrets if s and len(s) >= 8)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure(level: int = logging.INFO, secrets: Iterable[str | None] = ()) -> None:
    """Log to stderr (unless logging is already set up) and mask secrets in everything logged."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redactor = RedactSecrets(secrets)
    for handler in root.handlers:
        handler.addFilter(redactor)
