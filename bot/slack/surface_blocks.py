"""Block Kit for the assistant panel, the message shortcut's modal and link unfurls.

Built from the pieces of :mod:`corpusbot.bot.slack.blocks` and within the same
limits; every piece of corpus or user text is escaped
(:mod:`corpusbot.bot.slack.mrkdwn`). Channel ids are only turned into
``<#C…>`` mentions when they look like Slack's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import Block, Message
from corpusbot.bot.slack.mrkdwn import escape, shorten
from corpusbot.bot.slack.surface_payloads import QUESTION_BLOCK, QUESTION_INPUT, Origin
from corpusbot.index.models import ArticleInfo, Passage

MAX_PROMPTS = 4  # Slack shows at most four suggested prompts
PROMPT_TITLE_CHARS = 75
PROMPT_MESSAGE_CHARS = 500
THREAD_TITLE_CHARS = 100
STATUS_CHARS = 100
MODAL_TITLE = "Ask corpusbot"  # a modal title has at most 24 characters
MODAL_INPUT_CHARS = 1000
SHORTCUT_CALLBACK = "corpusbot_ask_message"
MODAL_CALLBACK = "corpusbot_ask_modal"
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
_LOOK_ALIKES = str.maketrans({"<": "‹", ">": "›"})


def unparsed(text: str) -> str:
    """``text`` for the panel's plain strings (prompts, thread titles): ``<`` and ``>`` as look-alikes.

    Slack documents neither as plain text, and a prompt's message is posted as the user's own message when
    clicked, so no ``<!channel>``, ``<@U…>`` or ``<url|label>`` from an article title or a question may reach
    them; entities (``&lt;``) would show as typed where the text is not parsed.
    """
    return text.translate(_LOOK_ALIKES)


def channel_mention(channel_id: str | None) -> str | None:
    """``<#C…>`` for a well-formed channel id (Slack shows its name), else None."""
    return f"<#{channel_id}>" if channel_id and _CHANNEL_ID.fullmatch(channel_id) else None


# -- the assistant panel ------------------------------------------------------------------------------------------


def greeting(articles: int | None, viewing: str | None = None, *, suggestions: bool = True) -> Message:
    """The first message of a panel thread: what the bot knows, and the channel the user is looking at."""
    how_many = f"*{articles:,}* " if articles else ""
    lines = [
        f"Hi! I answer questions with cited passages from {how_many}news articles. "
        + ("Ask me anything, or pick a suggestion below." if suggestions else "Ask me anything.")
    ]
    seen = channel_mention(viewing)
    if seen:
        lines.append(f"I see you're viewing {seen}; I'll keep that in mind in this thread.")
    return blocks.notice("\n".join(lines))


def prompts(examples: Sequence[str]) -> list[dict[str, str]]:
    """Up to :data:`MAX_PROMPTS` suggested prompts from the corpus's example questions (:func:`unparsed`)."""
    found: list[dict[str, str]] = []
    for example in dict.fromkeys(unparsed(e.strip()) for e in examples if e.strip()):
        found.append({"title": shorten(example, PROMPT_TITLE_CHARS), "message": shorten(example, PROMPT_MESSAGE_CHARS)})
        if len(found) == MAX_PROMPTS:
            break
    return found


def thread_title(question: str) -> str:
    """The panel thread's title: the question on one line (:func:`unparsed`), cut to Slack's length."""
    return shorten(unparsed(" ".join(question.split())), THREAD_TITLE_CHARS) or "Question"


def searching(articles: int | None) -> str:
    """The status line while the answer is searched for, e.g. "Searching 153,389 articles…"."""
    return shorten(f"Searching {articles:,} articles…" if articles else "Searching the articles…", STATUS_CHARS)


def with_viewing(message: Message, viewing: str | None) -> Message:
    """``message`` with a last line naming the channel the user was viewing (before its buttons)."""
    seen = channel_mention(viewing)
    if not seen or len(message.blocks) >= blocks.MAX_BLOCKS:
        return message
    note = blocks.context(f"Asked while viewing {seen}.")
    found = list(message.blocks)
    at = len(found) - 1 if found and found[-1]["type"] == "actions" else len(found)
    return dataclasses.replace(message, blocks=[*found[:at], note, *found[at:]])


# -- the message shortcut ---------------------------------------------------------------------------------------


def question_modal(text: str, origin: Origin) -> dict[str, Any]:
    """The small modal in which the user edits the message's text into a question."""
    element: Block = {
        "type": "plain_text_input",
        "action_id": QUESTION_INPUT,
        "multiline": True,
        "max_length": MODAL_INPUT_CHARS,
        "placeholder": {"type": "plain_text", "text": "Your question about the articles"},
    }
    initial = shorten(" ".join(text.split()), MODAL_INPUT_CHARS)
    if initial:
        element["initial_value"] = initial
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": {"type": "plain_text", "text": MODAL_TITLE},
        "submit": {"type": "plain_text", "text": "Ask"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": origin.to_value() if len(origin.to_value()) <= 3000 else Origin().to_value(),
        "blocks": [
            {
                "type": "input",
                "block_id": QUESTION_BLOCK,
                "label": {"type": "plain_text", "text": "Question"},
                "element": element,
            },
            blocks.context("Only you will see the answer; you can share it in the channel after."),
        ],
    }


def without_share(message: Message) -> Message:
    """``message`` without its Share in channel button (an answer sent as a DM)."""
    found: list[Block] = []
    for block in message.blocks:
        if block["type"] == "actions":
            kept = [element for element in block["elements"] if element.get("action_id") != blocks.SHARE]
            if not kept:
                continue
            block = {**block, "elements": kept}
        found.append(block)
    return dataclasses.replace(message, blocks=found)


def empty_question() -> dict[str, str]:
    """The modal's error when the question was left empty."""
    return {QUESTION_BLOCK: "Type a question, e.g. who is on the US delegation?"}


# -- link unfurls -------------------------------------------------------------------------------------------------


def unfurl_card(info: ArticleInfo, passage_count: int, first: Passage | None) -> dict[str, Any]:
    """The article card shown under a posted link: title, source, date, passage count, first passage."""
    card = blocks.article_card(info, passage_count, first)
    shown = [block for block in card.blocks if block["type"] != "actions"]  # clicks on an unfurl have no reply
    return {"blocks": shown, "fallback": escape(shorten(info.title or info.id, 200))}
