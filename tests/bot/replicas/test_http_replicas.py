"""Two `corpusbot serve` replicas in HTTP mode, on two hosts, sharing one PostgreSQL: each question answered once.

See ``conftest.py`` for the topology. Slack's retries (``X-Slack-Retry-Num``) may reach the other replica, even
at the same moment as the first delivery; the shared ``bot_seen_events`` table lets exactly one of them answer.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.bot.replicas.conftest import Cluster, Replica, mention

QUESTION = "who is on the US delegation?"
RELAXED = {"CORPUSBOT_RATE_LIMIT": "off"}
QUIET_SECONDS = 2.0  # after the last expected reply, how long late duplicates get to show up


def send(replica: Replica, event: dict[str, Any], event_id: str, retry: int | None = None) -> int:
    return replica.bot.event(event, event_id=event_id, retry=retry).status


def deliver(
    barrier: threading.Barrier, replica: Replica, event: dict[str, Any], event_id: str, retry: int | None
) -> int:
    barrier.wait(timeout=10)  # both deliveries leave together
    return send(replica, event, event_id, retry)


def test_an_event_and_its_retry_arriving_at_both_replicas_at_once_get_one_reply(make_cluster) -> None:
    cluster: Cluster = make_cluster(env=RELAXED)
    a, b = cluster.replicas
    threads: set[str] = set()
    for round_ in range(10):  # ten races, each of the first delivery (to A) and its retry (to B) at once
        event = mention(QUESTION, user=f"U0RACE{round_:03d}")
        threads.add(event["ts"])
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(2) as both:
            first = both.submit(deliver, barrier, a, event, f"Ev0RACE{round_:04d}", None)
            retry = both.submit(deliver, barrier, b, event, f"Ev0RACE{round_:04d}", 1)
            statuses = [first.result(timeout=30), retry.result(timeout=30)]
        assert statuses == [200, 200]
    replies = cluster.wait_for_replies(threads)
    time.sleep(QUIET_SECONDS)
    replies = cluster.replies_by_thread()
    assert {ts: replies[ts] for ts in threads} == dict.fromkeys(threads, 1)


def test_two_hundred_questions_over_both_replicas_with_retries_get_one_reply_each(make_cluster) -> None:
    cluster: Cluster = make_cluster(env=RELAXED)
    a, b = cluster.replicas
    events = [
        (mention(f"{QUESTION} ({number})", user=f"U{number:07d}"), f"Ev0LOAD{number:05d}") for number in range(200)
    ]
    retried = {number for number in range(200) if number % 7 == 3}  # 29 of 200 (14.5%) also retried elsewhere

    def question(number: int) -> list[int]:
        event, event_id = events[number]
        first, other = (a, b) if number % 2 == 0 else (b, a)
        if number not in retried:
            return [send(first, event, event_id)]
        with ThreadPoolExecutor(2) as both:  # the retry at the same time as the first delivery
            original = both.submit(send, first, event, event_id)
            again = both.submit(send, other, event, event_id, 1)
            return [original.result(), again.result()]

    with ThreadPoolExecutor(16) as pool:
        statuses = [status for result in pool.map(question, range(200)) for status in result]
    assert statuses == [200] * (200 + len(retried))
    threads = {event["ts"] for event, _ in events}
    cluster.wait_for_replies(threads)
    time.sleep(QUIET_SECONDS)
    replies = cluster.replies_by_thread()
    answered = {ts for ts in threads if replies[ts] >= 1}
    duplicates = {ts: replies[ts] for ts in threads if replies[ts] > 1}
    assert len(answered) == 200, f"{200 - len(answered)} questions got no reply"
    assert duplicates == {}
    assert len(cluster.slack.calls_to("chat.postMessage")) == 200
    for replica in cluster.replicas:  # both took a share of the work
        assert "Traceback" not in replica.logs()


READY_SECONDS = 45.0  # the store retries after a backoff that doubles up to 15 s: recovery takes at most ~15 s


def wait_for_readiness(replica: Replica, status: int, timeout: float = READY_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found, answer = replica.ready()
        if found == status:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"replica {replica.name}: /readyz {found} {answer}, not {status}, after {timeout}s")
        time.sleep(0.2)


def test_postgres_stopped_and_restarted_mid_run_loses_no_acknowledged_question(make_cluster) -> None:
    cluster: Cluster = make_cluster()  # the default rate limit, counted in PostgreSQL (one user per question)
    a, b = cluster.replicas
    sent: list[tuple[str, int, float]] = []  # (thread ts, status, when the ack arrived)
    stop_sending = threading.Event()

    def sender() -> None:
        number = 0
        while not stop_sending.is_set():
            event = mention(f"{QUESTION} ({number})", user=f"U0OUT{number:05d}")
            replica = (a, b)[number % 2]
            try:
                status = send(replica, event, f"Ev0OUT{number:05d}")
            except OSError:
                status = 0
            sent.append((event["ts"], status, time.monotonic()))
            number += 1
            time.sleep(0.05)

    load = threading.Thread(target=sender)
    load.start()
    try:
        time.sleep(2.0)
        stopped_at = time.monotonic()
        cluster.postgres.stop()
        try:
            for replica in (a, b):
                answer = wait_for_readiness(replica, 503)
                assert answer["status"] == "unavailable"
                assert "state database" in answer["reason"]
                assert "corpusbot_test_" in answer["reason"], answer  # names the database
                assert "Pw-" not in answer["reason"]
            time.sleep(1.0)
        finally:
            cluster.postgres.start()
        for replica in (a, b):
            wait_for_readiness(replica, 200)
        time.sleep(2.0)  # more questions after the recovery
    finally:
        stop_sending.set()
        load.join(timeout=30)
    acknowledged_while_up = {ts for ts, status, at in sent if status == 200 and at < stopped_at}
    after = {ts for ts, status, at in sent if status == 200 and at > stopped_at}
    assert len(acknowledged_while_up) >= 10
    replies = cluster.wait_for_replies(acknowledged_while_up | after)
    time.sleep(QUIET_SECONDS)
    replies = cluster.replies_by_thread()
    lost = [ts for ts in acknowledged_while_up if replies[ts] == 0]
    assert lost == [], f"{len(lost)} of {len(acknowledged_while_up)} acknowledged questions got no reply"
    assert all(replies[ts] == 1 for ts in acknowledged_while_up | after), "a question answered twice"
    unanswered_after = [ts for ts in after if replies[ts] == 0]
    polite = {
        str(call.body.get("thread_ts"))
        for call in cluster.slack.calls_to("chat.postMessage")
        if "can't search the articles right now" in str(call.body)
    }
    print(
        f"\nsent {len(sent)}; acknowledged while up {len(acknowledged_while_up)}, all replied "
        f"({len(acknowledged_while_up & polite)} with the 'not available' reply); acknowledged during/after the "
        f"outage {len(after)} ({len(after & polite)} 'not available', without reply: {len(unanswered_after)})"
    )
