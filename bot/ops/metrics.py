"""Prometheus metrics, served at ``GET /metrics`` in HTTP mode.

Each app has its own ``CollectorRegistry`` (never the global one), so two
apps in one process — tests, embedders — never share or collide. Label values
come from small fixed sets, never from user input.

With ``serve --workers N`` every worker counts in Prometheus's multiprocess
mode (:func:`sum_over_processes`): each process writes its counters to files
in one folder and ``/metrics``, whichever worker answers it, sums them all
(``MultiProcessCollector``); gunicorn's ``child_exit`` hook marks a worker that
exited as dead there. The index gauges
are read at scrape time by the worker that answers.

- ``corpusbot_slack_requests_total{kind, outcome}`` and
  ``corpusbot_slack_request_seconds{kind}``: every Slack request, by what it
  was and how it ended, and the time to acknowledge it;
- ``corpusbot_answers_total{result}`` (``no_answer`` = nothing matched) and
  ``corpusbot_answer_seconds``: answers computed (search plus formatting);
- ``corpusbot_feedback_total{verdict}``: Helpful / Not helpful clicks stored;
- ``corpusbot_slack_duplicate_events_total``: retried events not answered again;
- ``corpusbot_index_*``: articles, passages, database bytes, age, generation, up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from corpusbot.index import SearchService
from corpusbot.index.models import Answer, Stats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ANSWER_RESULTS = ("confident", "not_confident", "no_answer", "unavailable")
VERDICTS = ("helpful", "not_helpful")
OUTCOMES = ("ok", "rejected", "error")
COMMAND_KINDS = {"/ask": "ask", "/article": "article"}
EVENT_KINDS = ("app_mention", "message", "app_home_opened")
INVALID = "invalid"  # rejected before it could be read as a Slack payload
_summed = False  # sum_over_processes() was called in this process


def request_kind(body: Mapping[str, Any]) -> str:
    """What a parsed Slack payload is, as a label value from a fixed set."""
    command = body.get("command")
    if command is not None:
        return COMMAND_KINDS.get(str(command), "command_other")
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event") or {}
        event_type = event.get("type") if isinstance(event, Mapping) else None
        return event_type if event_type in EVENT_KINDS else "event_other"
    if kind == "block_actions":
        return "action"
    if kind == "url_verification" or "ssl_check" in body:
        return "check"
    return "other"


def outcome(status: int) -> str:
    return "ok" if status < 400 else "rejected" if status < 500 else "error"


def sum_over_processes() -> None:
    """From now on, ``/metrics`` sums the counters of every process counting in Prometheus's multiprocess folder.

    prometheus_client picks its mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``: the process that
    forks the workers sets it before that (:mod:`corpusbot.bot.serving.workers`), each worker calls this.
    """
    global _summed
    _summed = True


class BotMetrics:
    """The bot's metrics; ``service`` adds the index gauges."""

    def __init__(self, service: SearchService | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "corpusbot_slack_requests",
            "Slack requests (HTTP or Socket Mode) by kind and outcome (ok, rejected = 4xx, error = 5xx).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "corpusbot_slack_request_seconds",
            "Seconds from receiving a Slack request to acknowledging it.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "corpusbot_answers",
            "Answers computed, by result (no_answer: no passage matched; unavailable: the index could not be read).",
            ["result"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "corpusbot_answer_seconds",
            "Seconds to compute an answer: search, passages and the Block Kit message.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.feedback = Counter(
            "corpusbot_feedback", "Helpful / Not helpful clicks stored.", ["verdict"], registry=self.registry
        )
        self.duplicates = Counter(
            "corpusbot_slack_duplicate_events",
            "Events Slack sent again (retries) that were acknowledged without a second answer.",
            registry=self.registry,
        )
        for result in ANSWER_RESULTS:
            self.answers.labels(result)
        for verdict in VERDICTS:
            self.feedback.labels(verdict)
        index = IndexCollector(service) if service is not None else None
        if index is not None:
            self.registry.register(index)
        self._exposed = self.registry
        if _summed:  # every worker's counters, summed; this worker's view of the index
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)
            if index is not None:
                self._exposed.register(index)

    def request_handled(self, kind: str, status: int, seconds: float) -> None:
        self.requests.labels(kind, outcome(status)).inc()
        self.request_seconds.labels(kind).observe(seconds)

    @contextmanager
    def answer_timer(self) -> Iterator[Callable[[Answer], None]]:
        """Times the block; call the yielded function with the answer. An exception counts as ``unavailable``."""
        started = time.perf_counter()
        answered: list[Answer] = []
        try:
            yield answered.append
        except Exception:
            self.answers.labels("unavailable").inc()
            raise
        self.answer_seconds.observe(time.perf_counter() - started)
        if answered:
            answer = answered[-1]
            self.answers.labels(
                "no_answer" if not answer.hits else "confident" if answer.confident else "not_confident"
            ).inc()

    def feedback_stored(self, verdict: str) -> None:
        if verdict in VERDICTS:
            self.feedback.labels(verdict).inc()

    def duplicate_event(self) -> None:
        self.duplicates.inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self._exposed), CONTENT_TYPE_LATEST


class IndexCollector(Collector):
    """Index gauges read at scrape time; counts are re-read only when the index generation changes."""

    def __init__(self, service: SearchService, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.clock = clock
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._stats: Stats | None = None

    def describe(self) -> list[Metric]:
        return list(self._families().values())  # names only: registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        try:
            generation, stats = self._current()
        except Exception:  # an unreadable index is reported, not raised: /metrics must keep answering
            families["up"].add_metric([], 0)
            yield families["up"]
            return
        families["up"].add_metric([], 1)
        families["generation"].add_metric([], generation or 0)
        families["articles"].add_metric([], stats.articles)
        families["passages"].add_metric([], stats.passages)
        families["db_bytes"].add_metric([], _file_bytes(self.service.db_path))
        built = _timestamp(stats.built_at)
        if built is not None:
            families["age_seconds"].add_metric([], max(0.0, self.clock() - built))
        yield from (family for family in families.values() if family.samples)

    def _current(self) -> tuple[int | None, Stats]:
        with self._lock:
            generation = self.service.generation
            if self._stats is None or generation != self._generation:
                self._stats, self._generation = self.service.stats(), generation
            return generation, self._stats

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {
            "up": GaugeMetricFamily("corpusbot_index_up", "1 when the index and database can be read, else 0."),
            "generation": GaugeMetricFamily("corpusbot_index_generation", "Index generation (+1 per reindex)."),
            "articles": GaugeMetricFamily("corpusbot_index_articles", "Articles in the index."),
            "passages": GaugeMetricFamily("corpusbot_index_passages", "Passages in the index."),
            "db_bytes": GaugeMetricFamily("corpusbot_index_db_bytes", "Size of the database file and its WAL."),
            "age_seconds": GaugeMetricFamily("corpusbot_index_age_seconds", "Seconds since the index was built."),
        }


def _file_bytes(db_path: Path) -> int:
    return sum(os.path.getsize(p) for p in (db_path, Path(f"{db_path}-wal")) if os.path.exists(p))


def _timestamp(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
