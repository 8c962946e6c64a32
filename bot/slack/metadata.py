"""Message metadata on answers, so that workflows and other apps can read what an answer cited.

An answer posted as a message carries ``metadata`` with the event type
:data:`EVENT_TYPE` and a payload naming the question, the index generation the
answer came from, the cited articles (ids) and each cited passage (rank,
article id, passage number and id, title). Slack's metadata values are strings, numbers, booleans, objects of
those, or lists of such objects, so each passage is one flat object; a
generation that is not known is left out (there is no null).

The payload is kept within :data:`MAX_PAYLOAD_BYTES` of JSON: long questions and
titles are cut first, then passages are dropped from the end
(``"truncated": true`` says so).
"""

from __future__ import annotations

import json
from typing import Any

from corpusbot.bot.slack.mrkdwn import shorten
from corpusbot.index.models import Answer

EVENT_TYPE = "corpusbot_answer"
MAX_PAYLOAD_BYTES = 8_000  # a conservative bound: a few passages' ids need a few hundred bytes
QUESTION_CHARS = 1_000
TITLE_CHARS = 150
ID_CHARS = 200


def answer_metadata(answer: Answer, generation: int | None) -> dict[str, Any]:
    """``{"event_type": "corpusbot_answer", "event_payload": {...}}`` for ``answer``, within the size limit."""
    passages = [
        {
            "rank": hit.rank,
            "article_id": hit.article.id[:ID_CHARS],
            "passage": hit.passage.ordinal,
            "passage_id": hit.passage.id,
            "title": shorten(hit.article.title or "", TITLE_CHARS),
        }
        for hit in answer.hits
    ]
    payload: dict[str, Any] = {"question": shorten(answer.query, QUESTION_CHARS)}
    if generation is not None:
        payload["generation"] = generation
    payload["articles"] = _articles(passages)
    payload["passages"] = passages
    while size(payload) > MAX_PAYLOAD_BYTES and payload["passages"]:
        payload["passages"] = payload["passages"][:-1]
        payload["articles"] = _articles(payload["passages"])
        payload["truncated"] = True
    if size(payload) > MAX_PAYLOAD_BYTES:  # only a question of multi-byte characters gets here
        payload["question"] = shorten(answer.query, QUESTION_CHARS // 4)
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def _articles(passages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The cited articles, each once, in citation order (objects: Slack's metadata lists hold objects)."""
    return [{"id": article_id} for article_id in dict.fromkeys(p["article_id"] for p in passages)]


def size(payload: dict[str, Any]) -> int:
    """Bytes of ``payload`` as JSON in UTF-8, as Slack counts them."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
