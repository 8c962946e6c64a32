"""Two real `corpusbot serve` replicas, each on a host of its own (a network namespace), sharing one PostgreSQL.

Topology (``tests.support.netns``): the test process, PostgreSQL and the fake Slack Web API listen on the
network's gateway (the root namespace's address on the bridge); replica A and B each run in their own namespace,
listening on their host's address, port :data:`PORT`, each with a copy of the same small index (the bundled
sample) and ``CORPUSBOT_STATE_URL`` naming the shared database. Everything (processes, namespaces, the server,
its files) is removed at the end, also after a failure.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_slack import APP_TOKEN, BOT_USER_ID, FakeSlack
from tests.support.fake_socket_mode import SocketModeSlack
from tests.support.netns import Host, Network, network, wait_for_tcp
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.slack_harness import Bot, environment

PORT = 3000
PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")  # all traffic is local
START_SECONDS = 60.0  # generous: two interpreters importing everything at once on a busy machine
_ts = itertools.count(1)


@dataclass
class Replica:
    name: str
    host: Host
    process: subprocess.Popen
    log: Path
    bot: Bot

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``GET /readyz``: (status, the JSON answer)."""
        response = self.bot.request("GET", "/readyz")
        return response.status, json.loads(response.text)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Cluster:
    net: Network
    postgres: PostgresServer
    database: str
    slack: FakeSlack
    replicas: list[Replica] = field(default_factory=list)

    def replies_by_thread(self) -> Counter[str]:
        """How many chat.postMessage calls each thread (the mention's ts) got."""
        return Counter(str(call.body.get("thread_ts")) for call in self.slack.calls_to("chat.postMessage"))

    def wait_for_replies(self, threads: set[str], timeout: float = 60.0) -> Counter[str]:
        """Until each of ``threads`` got a reply (or ``timeout``): the replies per thread."""
        deadline = time.monotonic() + timeout
        while True:
            replies = self.replies_by_thread()
            if threads <= set(replies) or time.monotonic() > deadline:
                return replies
            time.sleep(0.1)


def mention(text: str, user: str = "U0ALICE1") -> dict[str, Any]:
    """An app_mention in a thread of its own (its ts is unique in the session): replies name it as thread_ts."""
    ts = f"1700001000.{next(_ts):06d}"
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": "C0GENERAL",
        "event_ts": ts,
    }


def copy_index(source: Path, target: Path) -> Path:
    """A consistent copy of the SQLite index (the backup API, so nothing of a WAL is missed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


def wait_until_healthy(replica: Replica, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if replica.process.poll() is not None:
            raise AssertionError(f"replica {replica.name} exited {replica.process.returncode}:\n{replica.logs()}")
        try:
            if replica.bot.request("GET", "/healthz").status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"replica {replica.name} not healthy within {timeout}s:\n{replica.logs()}")
        time.sleep(0.1)


def start_replica(
    cluster: Cluster, host: Host, name: str, db: Path, tmp_path: Path, extra_env: dict[str, str], args: list[str]
) -> Replica:
    env = {name: value for name, value in os.environ.items() if name not in PROXIES and name != "SLACK_APP_TOKEN"}
    env |= {
        **environment(cluster.slack, db),
        "CORPUSBOT_STATE_URL": cluster.postgres.url(cluster.database),
        "CORPUSBOT_STATE_DB": "",
        **extra_env,
    }
    log = tmp_path / f"replica-{name}.log"
    with log.open("w", encoding="utf-8") as out:
        process = host.popen(
            [
                sys.executable,
                "-c",
                "from corpusbot.bot.cli import main; main()",
                "serve",
                "--host",
                host.address,
                "--port",
                str(PORT),
                "--db",
                str(db),
                *args,
            ],
            env=env,
            cwd=str(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bot = Bot(host.address, PORT, app=None, runtime=None, slack=cluster.slack, executor=None)  # type: ignore[arg-type]
    return Replica(name, host, process, log, bot)


def stop_replica(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()


@pytest.fixture
def make_cluster(sample_db: Path, tmp_path: Path) -> Iterator[Any]:
    """``make_cluster(env=..., args=..., index=..., socket_mode=...)``: the two replicas up (one cluster per test).

    HTTP mode: each healthy on its host's address. Socket Mode: each connected to the fake Socket Mode server
    (``cluster.slack.socket_mode``) on the gateway, which delivers envelopes to the connections in turn.
    """
    from contextlib import ExitStack

    with ExitStack() as stack:

        def make(
            env: dict[str, str] | None = None,
            args: list[str] | None = None,
            index: Path | None = None,
            socket_mode: bool = False,
        ) -> Cluster:
            net = stack.enter_context(network(2))
            postgres = stack.enter_context(running_postgres(net.gateway))
            slack: FakeSlack = stack.enter_context(
                SocketModeSlack(net.gateway, ping_interval=1.0) if socket_mode else FakeSlack(host=net.gateway)
            )
            env = {**(env or {}), **({"SLACK_APP_TOKEN": APP_TOKEN} if socket_mode else {})}
            cluster = Cluster(net, postgres, postgres.create_database(), slack)
            for name, host in zip("AB", net.hosts, strict=True):
                db = copy_index(index or sample_db, tmp_path / f"host-{name}" / "corpusbot.db")
                replica = start_replica(cluster, host, name, db, tmp_path, env, args or [])
                stack.callback(stop_replica, replica)
                cluster.replicas.append(replica)
            if isinstance(slack, SocketModeSlack):
                links = slack.socket_mode.wait_for_connections(2, timeout=START_SECONDS)
                assert sorted(link.peer[0] for link in links) == sorted(host.address for host in net.hosts)
                return cluster
            for replica in cluster.replicas:
                wait_for_tcp(replica.host.address, PORT, timeout=START_SECONDS, process=replica.process)
                wait_until_healthy(replica)
            return cluster

        yield make
