"""Block Kit messages: answers, articles, help, notices and the App Home view.

Plain dicts (Slack's model classes only validate in ``to_dict()``), built so
Slack's limits hold for any corpus text: at most 50 blocks a message, section
text at most 3000 characters, button values at most 2000. Every piece of
corpus or user text passes through :mod:`corpusbot.bot.slack.mrkdwn` escaping;
long passages are shortened with an ellipsis around their best sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from corpusbot.bot.slack.mrkdwn import ELLIPSIS, code, escape, link, shorten
from corpusbot.index.models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats

MAX_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_FALLBACK_TEXT = 3000

PASSAGE_CHARS = 700  # shown per answer passage; the full text is one /article away
ARTICLE_PASSAGE_CHARS = 1200
QUESTION_CHARS = 500
TITLE_CHARS = 200
ID_CHARS = 200
PASSAGES_PER_PAGE = 5

MORE = "corpusbot_more"
HELPFUL = "corpusbot_helpful"
NOT_HELPFUL = "corpusbot_not_helpful"
SHARE = "corpusbot_share"
PASSAGES = "corpusbot_passages"
# /article lists carry one "Show passages" button per article: action ids PASSAGES, PASSAGES_1, PASSAGES_2...
PASSAGES_PATTERN = re.compile(rf"^{PASSAGES}(_\d+)?$")

Block = dict[str, Any]


@dataclass(frozen=True)
class Message:
    """What a reply needs: the notification/fallback text and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # Slack message metadata (:mod:`corpusbot.bot.slack.metadata`)

    def payload(self) -> dict[str, Any]:
        if self.metadata is None:
            return {"text": self.text, "blocks": self.blocks}
        return {"text": self.text, "blocks": self.blocks, "metadata": self.metadata}


# -- what buttons carry --------------------------------------------------------


@dataclass(frozen=True)
class AnswerRef:
    """An answer's question and page, carried in its buttons' values."""

    question: str
    offset: int = 0
    shown: tuple[str, ...] = ()  # "article-id ¶n" of the passages on screen (for feedback)
    generation: int | None = None  # of the index the answer came from; None in values posted before it was carried

    def to_value(self) -> str:
        def dump(question: str, shown: Sequence[str]) -> str:
            data: dict[str, Any] = {"q": question, "o": self.offset}
            if shown:
                data["p"] = list(shown)
            if self.generation is not None:
                data["g"] = self.generation
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

        shown = tuple(label[:100] for label in self.shown)
        if len(dump(self.question, shown)) > MAX_BUTTON_VALUE and len(dump("", shown)) > MAX_BUTTON_VALUE // 2:
            shown = ()
        return _fit(lambda n: dump(self.question[:n], shown), len(self.question))

    @classmethod
    def from_value(cls, value: str | None) -> AnswerRef | None:
        data = _load(value)
        question, offset, shown = data.get("q"), data.get("o", 0), data.get("p", [])
        if not isinstance(question, str) or not isinstance(offset, int) or offset < 0 or not isinstance(shown, list):
            return None
        generation = data.get("g")
        if not isinstance(generation, int) or isinstance(generation, bool):
            generation = None  # absent in values posted before the generation was carried
        return cls(question, offset, tuple(str(label) for label in shown), generation)


@dataclass(frozen=True)
class PageRef:
    """A page of an article's passages, carried in the Show passages buttons."""

    article_id: str
    offset: int = 0

    def to_value(self) -> str:
        return json.dumps({"a": self.article_id, "o": self.offset}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: str | None) -> PageRef | None:
        data = _load(value)
        article_id, offset = data.get("a"), data.get("o", 0)
        if not isinstance(article_id, str) or not isinstance(offset, int) or offset < 0:
            return None
        return cls(article_id, offset)


def _load(value: str | None) -> dict[str, Any]:
    try:
        data = json.loads(value or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _fit(render: Any, length: int) -> str:
    """``render(n)`` for the largest ``n <= length`` whose result fits in a button value."""
    if len(value := render(length)) <= MAX_BUTTON_VALUE:
        return value
    low, high = 0, length
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(middle)) <= MAX_BUTTON_VALUE:
            low = middle
        else:
            high = middle - 1
    return render(low)


# -- passages as mrkdwn --------------------------------------------------------


def passage_mrkdwn(
    text: str,
    matches: Sequence[Span] = (),
    highlight: Span | None = None,
    limit: int = PASSAGE_CHARS,
    budget: int = MAX_SECTION_TEXT,
) -> str:
    """The passage as escaped mrkdwn: matched terms bold, the best sentence in italics.

    At most about ``limit`` characters of the passage are shown, a window around
    the best sentence, with an ellipsis where it was cut; the result never
    exceeds ``budget`` characters however much escaping expands it.
    """
    text = text.replace("\r", "")
    while limit > 0:
        start, end = _window(text, highlight, limit)
        rendered = _render(text, start, end, matches, highlight)
        if len(rendered) <= budget:
            return rendered
        limit = min(limit - 1, int(limit * budget / len(rendered) * 0.9))
    return ELLIPSIS


def _window(text: str, highlight: Span | None, limit: int) -> tuple[int, int]:
    if len(text) <= limit:
        return 0, len(text)
    anchor = highlight.start if highlight else 0
    start = max(0, min(anchor - limit // 5, len(text) - limit))
    end = start + limit
    if start > 0:
        space = text.find(" ", start, min(start + 40, end))
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", max(start, end - 40), end)
        end = space if space > start else end
    return start, end


def _render(text: str, start: int, end: int, matches: Sequence[Span], highlight: Span | None) -> str:
    bold = _merge(
        [Span(max(s.start, start), min(s.end, end)) for s in matches if s.end > start and s.start < end], text
    )
    lines: list[str] = []
    position = start
    for line in text[start:end].split("\n"):
        line_end = position + len(line)
        lines.append(_render_line(text, position, line_end, bold, highlight))
        position = line_end + 1
    body = "\n".join(lines).strip()
    # Spaced, so an italic marker next to the cut still sits on a word boundary for Slack.
    return (ELLIPSIS + " " if start > 0 else "") + body + (" " + ELLIPSIS if end < len(text) else "")


def _render_line(text: str, start: int, end: int, bold: list[Span], highlight: Span | None) -> str:
    if highlight is None:
        return _bolded(text, start, end, bold)
    italic_start, italic_end = max(start, highlight.start), min(end, highlight.end)
    while italic_start < italic_end and text[italic_start].isspace():
        italic_start += 1
    while italic_end > italic_start and text[italic_end - 1].isspace():
        italic_end -= 1
    if italic_start >= italic_end:
        return _bolded(text, start, end, bold)
    return (
        _bolded(text, start, italic_start, bold)
        + "_"
        + _bolded(text, italic_start, italic_end, bold)
        + "_"
        + _bolded(text, italic_end, end, bold)
    )


def _bolded(text: str, start: int, end: int, bold: list[Span]) -> str:
    out: list[str] = []
    cursor = start
    for span in bold:
        span_start, span_end = max(span.start, start), min(span.end, end)
        if span_start >= span_end:
            continue
        out.append(escape(text[cursor:span_start]))
        out.append("*" + escape(text[span_start:span_end]) + "*")
        cursor = span_end
    out.append(escape(text[cursor:end]))
    return "".join(out)


def _merge(spans: list[Span], text: str) -> list[Span]:
    """Sorted spans, joined when they touch, overlap or only spaces separate them (``*a**b*`` is not bold)."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s.start < s.end):
        if merged and (span.start <= merged[-1].end or not text[merged[-1].end : span.start].strip(" ")):
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged


def citation(hit: Hit) -> str:
    """``[n] Title (linked when it has an http(s) URL) · ¶k · published DATE · id `article-id```."""
    published = f" · published {escape(shorten(hit.article.published, 40))}" if hit.article.published else ""
    return (
        f"[{hit.rank}] {link(hit.article.url, shorten(hit.article.title or hit.article.id, TITLE_CHARS))}"
        f" · ¶{hit.passage.ordinal}{published} · id {code(shorten(hit.article.id, ID_CHARS))}"
    )


# -- building blocks -----------------------------------------------------------


def _safe_cut(mrkdwn: str, limit: int) -> str:
    """Cut already-escaped mrkdwn without leaving half a link or half an entity behind."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - 1]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _safe_cut(text, MAX_SECTION_TEXT)}}
    if accessory:
        block["accessory"] = accessory
    return block


def context(*texts: str) -> Block:
    elements = [{"type": "mrkdwn", "text": _safe_cut(t, MAX_CONTEXT_TEXT)} for t in texts if t]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label[:MAX_BUTTON_TEXT], "emoji": True},
        "action_id": action_id[:MAX_ACTION_ID],
        "value": value if len(value) <= MAX_BUTTON_VALUE else "{}",
    }
    if style:
        element["style"] = style
    return element


def actions(*elements: Block) -> Block:
    return {"type": "actions", "elements": list(elements)[:MAX_ACTIONS_ELEMENTS]}


def _fallback(text: str) -> str:
    return _safe_cut(text, MAX_FALLBACK_TEXT)


def _within(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """At most ``limit`` blocks, keeping a trailing actions block (the buttons) when cutting."""
    if len(blocks) <= limit:
        return blocks
    if blocks[-1]["type"] == "actions":
        return [*blocks[: limit - 1], blocks[-1]]
    return blocks[:limit]


# -- answers -------------------------------------------------------------------


def answer_message(
    answer: Answer,
    *,
    show_question: bool = True,
    shareable: bool = False,
    examples: Sequence[str] = (),
    generation: int | None = None,
) -> Message:
    """An answer: numbered passages with citations, and More results / Helpful / Not helpful / Share buttons.

    The buttons carry ``generation``, the index generation the answer came from.
    """
    question = escape(shorten(answer.query, QUESTION_CHARS))
    if not answer.hits and not answer.about:
        return no_more_results(answer) if answer.offset else no_match(answer, examples)
    blocks: list[Block] = []
    if show_question:
        blocks.append(section(f"*Question:* {question}"))
    blocks.extend(direct_answer_blocks(answer))
    if not answer.confident and answer.hits:
        blocks.append(section("No confident match; closest passages:"))
    for hit in answer.hits:
        blocks.append(section(f"*[{hit.rank}]* " + passage_mrkdwn(hit.passage.text, hit.matches, hit.highlight)))
        note = (
            f" · +{hit.duplicates} near-identical passage{'s' if hit.duplicates != 1 else ''}" if hit.duplicates else ""
        )
        blocks.append(context(citation(hit) + note))
    notes = [escape(notice) for notice in answer.notices]
    if answer.context:
        notes.insert(0, f"Read as a follow-up to: {escape(shorten(answer.context, QUESTION_CHARS))}")
    if answer.unknown_terms:
        notes.append("Not in the corpus: " + ", ".join(code(term) for term in answer.unknown_terms[:20]))
    if notes:
        blocks.append(context(*notes))
    shown = tuple(f"{hit.article.id} ¶{hit.passage.ordinal}" for hit in answer.hits)
    buttons = []
    if answer.has_more:
        more = AnswerRef(answer.query, answer.offset + len(answer.hits), generation=generation)
        buttons.append(button("More results", MORE, more.to_value()))
    feedback = AnswerRef(answer.query, answer.offset, shown, generation).to_value()
    buttons.append(button("Helpful", HELPFUL, feedback))
    buttons.append(button("Not helpful", NOT_HELPFUL, feedback))
    if shareable:
        share = AnswerRef(answer.query, answer.offset, generation=generation)
        buttons.append(button("Share in channel", SHARE, share.to_value(), "primary"))
    blocks.append(actions(*buttons))
    cited = "; ".join(
        f"[{hit.rank}] {escape(shorten(hit.article.title, 80))} ¶{hit.passage.ordinal}" for hit in answer.hits
    )
    prefix = "" if answer.confident or not answer.hits else "No confident match; closest passages: "
    if answer.answer is not None:
        prefix = f"{escape(shorten(answer.answer.text, 200))} — "
    return Message(_fallback(f"{prefix}{question} — {cited}"), _within(blocks))


ABOUT_LABELS = {
    "url": "Original article",
    "source": "Source",
    "author": "Author",
    "published": "Published",
    "title": "Title",
}
DIRECT_ANSWER_CHARS = 300


def direct_answer_blocks(answer: Answer) -> list[Block]:
    """What goes above the passages: what the question asked about an article (its metadata), and the one-line
    answer to a who/when/where/how-many question, each with its citation."""
    blocks: list[Block] = []
    for item in answer.about[:3]:
        lines = []
        for name in item.asked:
            value = item.value(name)
            shown = (
                link(value, shorten(value, 300))
                if name == "url" and value
                else escape(shorten(value, 300))
                if value
                else "_not recorded for this article_"
            )
            lines.append(f"*{ABOUT_LABELS[name]}:* {shown}")
        blocks.append(section("\n".join(lines)))
        title = shorten(item.article.title or item.article.id, TITLE_CHARS)
        blocks.append(context(f"{link(item.article.url, title)} · id {code(shorten(item.article.id, ID_CHARS))}"))
    if answer.answer is not None:
        blocks.append(section(f"*Answer:* {escape(shorten(answer.answer.text, DIRECT_ANSWER_CHARS))}"))
        blocks.append(context("from " + citation(answer.answer.hit)))
    return blocks


def no_match(answer: Answer, examples: Sequence[str] = ()) -> Message:
    """Say plainly that nothing matched, which words the corpus lacks, and how to rephrase."""
    question = escape(shorten(answer.query, QUESTION_CHARS))
    lines = [
        f"I found no passage that matches *{question}*." if question else "That question has no words I can search for."
    ]
    if answer.unknown_terms:
        lines.append("The corpus never mentions: " + ", ".join(code(term) for term in answer.unknown_terms[:20]) + ".")
    lines.append("Try other words for the same thing, or fewer words.")
    blocks = [section("\n".join(lines))]
    if examples:
        blocks.append(context("For example: " + " · ".join(escape(shorten(e, 150)) for e in examples[:3])))
    return Message(_fallback(f"No passage matches {question}."), blocks)


def no_more_results(answer: Answer) -> Message:
    question = escape(shorten(answer.query, QUESTION_CHARS))
    return Message(_fallback(f"No more results for {question}."), [section(f"No more results for *{question}*.")])


def shared_answer(user_id: str, answer: Answer, generation: int | None = None) -> Message:
    """An answer someone shared from their /ask into the channel."""
    message = answer_message(answer, show_question=True, generation=generation)
    sharer = f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]+", user_id) else "Someone"
    blocks = [context(f"{sharer} shared an answer from /ask"), *message.blocks]
    return Message(message.text, _within(blocks))


def index_changed(message: Message, shown: int, current: int) -> Message:
    """``message`` with a first line saying the index changed since generation ``shown`` (now ``current``)."""
    note = context(
        f"The index was updated since this answer (generation {shown} → {current}); "
        "these results come from the current one."
    )
    return Message(message.text, _within([note, *message.blocks]))


# -- help, notices -------------------------------------------------------------


HOW_TO_ASK = (
    "• Mention me in a channel: `@corpusbot who is on the US delegation?` — I answer in the thread.\n"
    "• Send me a direct message with your question.\n"
    "• `/ask QUESTION` — only you see the answer; *Share in channel* posts it for everyone.\n"
    "• `/article ID` or `/article WORDS` — an article's card, or the articles matching some words.\n"
    "• `/ask new` — the articles indexed in the last 24 hours (`/ask new 3d`, `/ask new 2025-06-01`).\n"
    "• `/ask watch WORDS` — after each reindex I post the new passages matching WORDS here; "
    "`/ask watches` lists this channel's watches, `/ask unwatch N` removes one."
)


def help_message(examples: Sequence[str]) -> Message:
    blocks = [section("*Ask me about the news articles I have indexed.*\n" + HOW_TO_ASK)]
    if examples:
        blocks.append(section("*Try:*\n" + "\n".join(f"• `/ask {escape(shorten(e, 300))}`" for e in examples[:5])))
    return Message("How to use corpusbot: /ask QUESTION, /article ID or WORDS, or mention me.", blocks)


def notice(mrkdwn: str) -> Message:
    """A one-section message; ``mrkdwn`` must already be escaped."""
    return Message(_fallback(mrkdwn), [section(mrkdwn)])


def slow_down(seconds: int) -> Message:
    return notice(f"You're asking faster than I can keep up — please slow down. Try again in about {seconds} s.")


def not_enabled_here() -> Message:
    return notice(
        "I'm not enabled in this channel. Ask me in a channel where I'm enabled, or send me a direct message."
    )


def admin_only(command: str) -> Message:
    return notice(
        f"Sorry, {code(command)} is only for corpusbot admins. "
        "If you need it, ask whoever runs corpusbot in your workspace to add your Slack user ID to CORPUSBOT_ADMINS."
    )


def unavailable() -> Message:
    return notice("Sorry, I can't search the articles right now — the index is not available. Please try again later.")


def feedback_thanks(verdict: str) -> Message:
    return notice(
        "Thanks — I recorded that this answer was " + ("helpful." if verdict == "helpful" else "not helpful.")
    )


# -- articles ------------------------------------------------------------------


def _article_title(info: ArticleInfo) -> str:
    return link(info.url, shorten(info.title or info.id, TITLE_CHARS))


def article_card(info: ArticleInfo, passage_count: int, first: Passage | None) -> Message:
    """Title (linked), source, date, id, passage count, first passage and a Show passages button."""
    facts = [escape(shorten(value, 100)) for value in (info.source, info.published) if value]
    facts.append(f"id {code(shorten(info.id, ID_CHARS))}")
    facts.append(f"{passage_count} passage{'s' if passage_count != 1 else ''}")
    blocks = [section(f"*{_article_title(info)}*"), context(" · ".join(facts))]
    if first is not None:
        blocks.append(section(f"*¶{first.ordinal}* " + passage_mrkdwn(first.text, limit=ARTICLE_PASSAGE_CHARS)))
    if passage_count:
        blocks.append(actions(button("Show passages", PASSAGES, PageRef(info.id).to_value())))
    return Message(_fallback(f"{escape(shorten(info.title, 200))} ({passage_count} passages)"), blocks)


def article_list(query: str, matches: Sequence[ArticleMatch], closest: Sequence[str] = ()) -> Message:
    """Articles matching some words, each with its id and a Show passages button."""
    words = escape(shorten(query, QUESTION_CHARS))
    intro = f"Articles matching *{words}*:"
    if closest:
        intro = f"No article has the id {code(shorten(query, ID_CHARS))} (closest ids: {_ids(closest)}). " + intro
    blocks = [section(intro)]
    for number, match in enumerate(matches[: MAX_BLOCKS - 1]):
        count = match.passage_count
        blocks.append(
            section(
                f"*{_article_title(match.article)}*\nid {code(shorten(match.article.id, ID_CHARS))} · "
                f"{count} passage{'s' if count != 1 else ''}",
                accessory=button(
                    "Show passages",
                    PASSAGES if number == 0 else f"{PASSAGES}_{number}",
                    PageRef(match.article.id).to_value(),
                ),
            )
        )
    return Message(_fallback(f"{len(matches)} articles match {words}."), _within(blocks))


def article_not_found(query: str, closest: Sequence[str]) -> Message:
    lines = [f"No article has the id or words {code(shorten(query, ID_CHARS))}."]
    if closest:
        lines.append(f"Closest ids: {_ids(closest)}.")
    lines.append("Try `/article WORDS` with words from the article's title.")
    return Message(_fallback(f"No article matches {escape(shorten(query, 200))}."), [section("\n".join(lines))])


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(code(shorten(i, ID_CHARS)) for i in ids[:5])


def passages_page(info: ArticleInfo, passages: Sequence[Passage], offset: int, total: int) -> Message:
    """One page of an article's passages with Previous / Next buttons."""
    first, last = offset + 1, offset + len(passages)
    blocks = [
        section(
            f"*{_article_title(info)}* — passages {first}–{last} of {total}"
            if passages
            else f"*{_article_title(info)}* — no more passages"
        )
    ]
    for passage in passages[:PASSAGES_PER_PAGE]:
        blocks.append(section(f"*¶{passage.ordinal}* " + passage_mrkdwn(passage.text, limit=ARTICLE_PASSAGE_CHARS)))
    buttons = []
    if offset > 0:
        buttons.append(button("Previous", PASSAGES, PageRef(info.id, max(0, offset - PASSAGES_PER_PAGE)).to_value()))
    if last < total:
        buttons.append(button("Next passages", f"{PASSAGES}_1", PageRef(info.id, last).to_value()))
    if buttons:
        blocks.append(actions(*buttons))
    return Message(
        _fallback(f"{escape(shorten(info.title, 200))}: passages {first}–{last} of {total}"), _within(blocks)
    )


# -- App Home ------------------------------------------------------------------


def home_view(stats: Stats | None, examples: Sequence[str], is_admin: bool = False) -> dict[str, Any]:
    """The App Home tab: what the bot knows, how to ask, example questions."""
    if stats is None:
        knows = "My index is not available right now; an admin needs to run `corpusbot index`."
    else:
        built = escape(stats.built_at or "never")
        knows = (
            f"I know *{stats.articles}* articles ({stats.passages} passages). Last reindex: {built}.\n"
            "Answers are passages from those articles, with numbered citations."
        )
    blocks = [section("*corpusbot* answers questions with cited passages from news articles."), section(knows)]
    blocks.append(section("*How to ask*\n" + HOW_TO_ASK))
    if examples:
        blocks.append(
            section("*Example questions*\n" + "\n".join(f"• {escape(shorten(e, 300))}" for e in examples[:5]))
        )
    if is_admin:
        blocks.append(
            context("Admin: `/ask admin reindex` reindexes the corpus; `/ask admin feedback` shows recent feedback.")
        )
    return {"type": "home", "blocks": _within(blocks, MAX_HOME_BLOCKS)}
