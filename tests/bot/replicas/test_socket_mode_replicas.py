"""Two `corpusbot serve` replicas in Socket Mode, on two hosts, sharing one PostgreSQL.

Slack delivers each envelope to one of the app's open connections and, when it gets no ack in time, redelivers
it (``retry_attempt`` 1, …) possibly to another connection. bolt hands the listeners the payload without the
envelope's ``retry_attempt``, so the bot recognises the redelivery by the payload's ``event_id`` alone, in the
table both replicas share: each question is answered once.
"""

from __future__ import annotations

import time

from tests.bot.replicas.conftest import Cluster, mention
from tests.support.fake_socket_mode import SocketModeSlack

QUESTIONS = 12
QUIET_SECONDS = 2.0


def test_envelopes_round_robin_and_redelivered_to_the_other_replica_are_answered_once(make_cluster) -> None:
    cluster: Cluster = make_cluster(env={"CORPUSBOT_RATE_LIMIT": "off"}, socket_mode=True)
    assert isinstance(cluster.slack, SocketModeSlack)
    server = cluster.slack.socket_mode
    host_of = {link.number: link.peer[0] for link in server.open_links()}
    threads = set()
    sent = []
    for number in range(QUESTIONS):
        event = mention(f"who is on the US delegation? ({number})", user=f"U0SOCK{number:03d}")
        threads.add(event["ts"])
        sent.append(server.deliver_event(event, event_id=f"Ev0SOCK{number:04d}"))  # to the replicas in turn
    assert sorted({host_of[delivery.link] for delivery in sent}) == sorted(host_of.values()), "round-robin"
    for first in sent:  # right away (the first copies may still be in progress): each to the other replica
        retry = server.redeliver(first.envelope_id)
        assert host_of[retry.link] != host_of[first.link]
        assert retry.attempt == 1
    server.wait_for_acks(2 * QUESTIONS, timeout=30)
    for delivery in sent:  # both replicas acknowledged their copy
        assert len({host_of[ack.link] for ack in server.acks_for(delivery.envelope_id)}) == 2
    cluster.wait_for_replies(threads)
    time.sleep(QUIET_SECONDS)
    replies = cluster.replies_by_thread()
    assert {ts: replies[ts] for ts in threads} == dict.fromkeys(threads, 1)
    for replica in cluster.replicas:
        assert replica.process.poll() is None
        assert "Traceback" not in replica.logs()
