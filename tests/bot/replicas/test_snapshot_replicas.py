"""Two `corpusbot serve --index-from` replicas switch to a newly published index snapshot under load, no restart.

See ``conftest.py`` for the topology. Here each replica starts with no index of its own (an empty ``--db``
path): both follow one snapshot folder (on the root filesystem, which the namespaces see too) that
``publish_snapshot`` writes, checking its pointer every second (``CORPUSBOT_INDEX_POLL=1``). While a thread
keeps asking both replicas, a new index with one more article (a word the sample never uses) is published;
both must pick it up and answer about it, and no question may go unanswered or get the "not available" reply.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import bundled_corpus_dir
from corpusbot.index.maintenance.snapshots import publish_snapshot
from tests.bot.replicas.conftest import (
    PORT,
    START_SECONDS,
    Cluster,
    Replica,
    start_replica,
    stop_replica,
    wait_until_healthy,
)
from tests.support.fake_slack import Call, FakeSlack
from tests.support.netns import network, wait_for_tcp
from tests.support.postgres import running_postgres

QUESTION = "who is on the US delegation?"  # answered from the sample and from the new index alike
NEW_QUESTION = "where was the zebra crossing painted?"
NEW_WORD = "Quillbrook"  # in the new article only: an answer naming it comes from the new index
NEW_ARTICLE = (
    "Quillbrook paints its first zebra crossing\n\n"
    "The village of Quillbrook painted its first zebra crossing outside the primary school on Monday, after "
    "parents asked the council for a safer way across the high street. The zebra crossing has flashing beacons "
    "and a raised kerb, and the council said a second zebra crossing near the station would follow next year.\n"
)
NOT_AVAILABLE = "can't search the articles right now"
SWITCH_SECONDS = 60.0  # generous: the pointer is read every second, the snapshot is small
# Each replica must have switched well before the default poll interval (30 s) would have let it: the setting is
# used. Polling every second, a switch takes about a second; 15 s leaves a wide margin for a busy machine.
SWITCHED_WITHIN = 15.0
REPLY_SECONDS = 30.0  # how long one /ask may take to be answered on a busy machine
LOAD_PAUSE = 0.05  # between two background questions


@dataclass
class Asked:
    hook: str
    replica: str
    status: int  # the HTTP status of the acknowledgement (0: no answer at all)


def replies(slack: FakeSlack) -> dict[str, list[Call]]:
    """The response_url calls so far, by hook (the last part of the URL)."""
    found: dict[str, list[Call]] = {}
    for call in slack.calls_to("response_url"):
        found.setdefault(call.path.rsplit("/", 1)[-1], []).append(call)
    return found


def is_answer(call: Call) -> bool:
    """An answer to a question (the blocks start with the question), not a notice such as "not available"."""
    blocks = call.body.get("blocks") or []
    first = blocks[0].get("text", {}).get("text", "") if blocks else ""
    return first.startswith("*Question:*") and NOT_AVAILABLE not in json.dumps(call.body)


def ask(replica: Replica, text: str, hook: str, user: str) -> int:
    try:
        return replica.bot.command("/ask", text, user=user, hook=hook).status
    except OSError:
        return 0


def wait_for_reply(slack: FakeSlack, hook: str, timeout: float = REPLY_SECONDS) -> Call:
    deadline = time.monotonic() + timeout
    while True:
        found = replies(slack).get(hook)
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no reply to {hook} within {timeout}s")
        time.sleep(0.05)


def build_index(target: Path, corpus: Path, extra: dict[str, str]) -> Path:
    """An index of the bundled sample articles plus ``extra`` ({file name: text}), built in ``corpus``."""
    shutil.copytree(bundled_corpus_dir(), corpus)
    for name, text in extra.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_corpus(target, [str(corpus)])
    return target


@pytest.fixture
def following_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    """Two replicas with empty ``--db`` paths following the snapshot folder ``store`` (which holds the sample).

    Yields (the cluster, the store folder); everything is stopped and removed at the end.
    """
    store = tmp_path / "snapshots"
    publish_snapshot(build_index(tmp_path / "v1" / "index.db", tmp_path / "v1" / "corpus", {}), str(store))
    with ExitStack() as stack:
        net = stack.enter_context(network(2))
        postgres = stack.enter_context(running_postgres(net.gateway))
        slack = stack.enter_context(FakeSlack(host=net.gateway))
        cluster = Cluster(net, postgres, postgres.create_database(), slack)
        env = {"CORPUSBOT_INDEX_POLL": "1", "CORPUSBOT_RATE_LIMIT": "off"}
        for name, host in zip("AB", net.hosts, strict=True):
            db = tmp_path / f"host-{name}" / "corpusbot.db"
            db.parent.mkdir()
            assert not db.exists()
            replica = start_replica(cluster, host, name, db, tmp_path, env, ["--index-from", str(store)])
            stack.callback(stop_replica, replica)
            cluster.replicas.append(replica)
        for replica in cluster.replicas:
            wait_for_tcp(replica.host.address, PORT, timeout=START_SECONDS, process=replica.process)
            wait_until_healthy(replica)
        yield cluster, store


def test_both_replicas_switch_to_a_newly_published_snapshot_under_load_without_a_failed_answer(
    following_cluster: tuple[Cluster, Path], tmp_path: Path
) -> None:
    cluster, store = following_cluster
    slack = cluster.slack
    a, b = cluster.replicas
    pids = {replica.name: replica.process.pid for replica in (a, b)}
    asked: list[Asked] = []
    stop_sending = threading.Event()

    def sender() -> None:
        number = 0
        while not stop_sending.is_set():
            replica = (a, b)[number % 2]
            hook = f"load{number:05d}"
            asked.append(Asked(hook, replica.name, ask(replica, f"{QUESTION} ({number})", hook, f"U{number:07d}")))
            number += 1
            time.sleep(LOAD_PAUSE)

    probes = iter(range(1_000_000))

    def probe(replica: Replica) -> Call:
        """Ask ``replica`` about the new word; its reply."""
        hook = f"probe-{replica.name}-{next(probes):04d}"
        status = ask(replica, NEW_QUESTION, hook, "U0PROBE01")
        asked.append(Asked(hook, replica.name, status))
        assert status == 200, f"/ask to {replica.name} acknowledged with {status}"
        return wait_for_reply(slack, hook)

    load = threading.Thread(target=sender, name="ask-load")
    load.start()
    switched_after: dict[str, float] = {}
    try:
        time.sleep(1.0)
        for replica in (a, b):  # the old index: no answer names the new article yet
            before = probe(replica)
            assert NEW_WORD not in json.dumps(before.body), f"{replica.name} knew {NEW_WORD} before it was published"
        new_index = build_index(tmp_path / "v2" / "index.db", tmp_path / "v2" / "corpus", {"zebra.txt": NEW_ARTICLE})
        published_at = time.monotonic()
        result = publish_snapshot(new_index, str(store))
        assert result.pointer.previous is not None  # it replaced the sample's snapshot
        deadline = published_at + SWITCH_SECONDS
        while len(switched_after) < 2 and time.monotonic() < deadline:
            for replica in (a, b):
                if replica.name not in switched_after and NEW_WORD in json.dumps(probe(replica).body):
                    switched_after[replica.name] = time.monotonic() - published_at
            time.sleep(0.25)
        time.sleep(2.0)  # more questions after the switch
    finally:
        stop_sending.set()
        load.join(timeout=60)
    assert not load.is_alive()

    acknowledged = [entry for entry in asked if entry.status == 200]
    deadline = time.monotonic() + REPLY_SECONDS
    while time.monotonic() < deadline and not {entry.hook for entry in acknowledged} <= set(replies(slack)):
        time.sleep(0.1)
    got = replies(slack)
    failed = [entry for entry in asked if entry.status != 200]
    unanswered = [entry.hook for entry in acknowledged if entry.hook not in got]
    not_answers = [
        (hook, call.body.get("text"))
        for hook, calls in got.items()
        for call in calls
        if NOT_AVAILABLE in json.dumps(call.body) or (hook.startswith("load") and not is_answer(call))
    ]
    load_count = sum(entry.hook.startswith("load") for entry in asked)
    shares = {name: sum(entry.replica == name for entry in asked) for name in "AB"}
    print(
        f"\nswitched after publishing: {', '.join(f'{n} {s:.1f} s' for n, s in sorted(switched_after.items()))}; "
        f"{len(asked)} /ask sent ({load_count} background, {len(asked) - load_count} probes; A {shares['A']}, "
        f"B {shares['B']}), {len(failed)} not acknowledged, {len(unanswered)} unanswered, {len(not_answers)} failed"
    )
    assert sorted(switched_after) == ["A", "B"], (
        f"switched: {switched_after} within {SWITCH_SECONDS}s\n{a.logs()[-3000:]}\n{b.logs()[-3000:]}"
    )
    slow = {name: seconds for name, seconds in switched_after.items() if seconds > SWITCHED_WITHIN}
    assert slow == {}, f"switched later than {SWITCHED_WITHIN}s with CORPUSBOT_INDEX_POLL=1: {slow}"
    assert load_count >= 20 and min(shares.values()) >= 10
    assert failed == [], f"{len(failed)} /ask not acknowledged with 200: {failed[:5]}"
    assert unanswered == [], f"{len(unanswered)} acknowledged /ask got no reply: {unanswered[:5]}"
    assert not_answers == [], f"{len(not_answers)} replies were no answer: {not_answers[:5]}"
    for replica in (a, b):
        status, answer = replica.ready()
        assert status == 200, f"{replica.name} /readyz {status} {answer}"
        assert replica.process.poll() is None and replica.process.pid == pids[replica.name]  # no restart
        assert replica.logs().count("Installed index snapshot") == 2  # the sample's at start, then the new one
        assert "Traceback" not in replica.logs()
