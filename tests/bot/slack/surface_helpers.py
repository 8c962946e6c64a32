"""What the tests of the assistant panel, the message shortcut, unfurls and metadata share: a corpus and payloads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from tests.support.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack

EVIL_TEXT = (
    "Alert <!channel> and <!here>: <@U0VICTIM> says the magnesium smelter story is fake, "
    "click <https://evil.example/steal|the official page> & see for yourself."
)
EVIL_URL = "https://news.example.com/smelter/story-1"
SAMPLE_1 = "000-6b3987004aa82828"
SAMPLE_1_URL = "https://www.toutiao.com/article/7513089098832298534/"
DELEGATION = "who is on the US delegation?"
PANEL = "D0PANEL01"
THREAD = "1700000900.000100"


def build_corpus(tmp_path: Path, corpus_dir: Path) -> Path:
    """The bundled sample plus an article full of Slack markup, with a URL, source and date."""
    record = {
        "id": "evil-1",
        "title": "Ping <!channel> & <@U0VICTIM>",
        "url": EVIL_URL,
        "source": "<!here> Daily",
        "published": "2025-06-07",
        "text": EVIL_TEXT,
    }
    (corpus_dir / "evil.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    path = tmp_path / "bot.db"
    index_corpus(path, [BUNDLED, str(corpus_dir)])
    return path


def thread_started(channel: str | None = "C0VIEWED1", *, thread_ts: str = THREAD) -> dict[str, Any]:
    context: dict[str, Any] = {"channel_id": channel, "team_id": TEAM_ID} if channel else {}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": "U0ALICE1",
            "context": context,
            "channel_id": PANEL,
            "thread_ts": thread_ts,
        },
        "event_ts": "1700000900.000200",
    }


def context_changed(channel: str, *, thread_ts: str = THREAD) -> dict[str, Any]:
    event = thread_started(channel, thread_ts=thread_ts)
    event["type"] = "assistant_thread_context_changed"
    return event


def panel_message(text: str, ts: str = "1700000901.000100", *, thread_ts: str = THREAD) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": PANEL,
        "user": "U0ALICE1",
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "parent_user_id": BOT_USER_ID,
        "event_ts": ts,
    }


def no_problems(slack: FakeSlack) -> None:
    assert [(call.method, call.problems) for call in slack.calls if call.problems] == []


def rendered(payload: Any) -> str:
    """Every text Slack would render in a payload (button values and metadata are data, never shown)."""
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name not in ("value", "metadata", "private_metadata", "action_id", "block_id"):
                    walk(value, name)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and key in ("text", "fallback", "title", "message", "status", "initial_value"):
            found.append(node)

    walk(payload)
    return "\n".join(found)


def markup(text: str) -> set[str]:
    """Every ``<...>`` Slack would parse in ``text``."""
    return set(re.findall(r"<[^<>]*>", text))
