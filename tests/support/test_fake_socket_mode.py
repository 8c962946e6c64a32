"""The fake Socket Mode server of tests/support/fake_socket_mode.py, driven by slack_sdk's own built-in client
(as bolt's SocketModeHandler uses it) and, for the protocol edges, by a raw WebSocket client written here."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.support import netns
from tests.support.fake_slack import APP_TOKEN
from tests.support.fake_socket_mode import GUID, FakeSocketMode, SocketModeSlack

PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class Client:
    """slack_sdk's built-in Socket Mode client, keeping what it receives; acknowledges unless told not to."""

    def __init__(self, api_url: str, *, ack: bool = True, response: dict | None = None) -> None:
        self.requests: list[SocketModeRequest] = []
        self.messages: list[dict] = []
        self.ack = ack
        self.response = response
        self.received = threading.Event()
        self.sdk = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=api_url))
        self.sdk.socket_mode_request_listeners.append(self._on_request)
        self.sdk.message_listeners.append(lambda client, message, raw: self.messages.append(message))

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        self.requests.append(request)
        self.received.set()
        if self.ack:
            client.send_socket_mode_response(SocketModeResponse(request.envelope_id, payload=self.response))

    def ids(self) -> list[str]:
        return [request.envelope_id for request in self.requests]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXIES:  # slack_sdk's Socket Mode client would tunnel through one, and wrap the socket in TLS
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack() -> Iterator[SocketModeSlack]:
    with SocketModeSlack(ping_interval=0.1) as fake:  # pings end the clients' blocking reads: they close quickly
        yield fake


@pytest.fixture
def connect(slack: SocketModeSlack) -> Iterator[Callable[..., Client]]:
    """Connects a new client; all are closed (at once: each close waits for its reader) before the fake stops."""
    made: list[Client] = []

    def make(**options: object) -> Client:
        client = Client(slack.api_url, **options)  # type: ignore[arg-type]
        made.append(client)
        client.sdk.connect()
        return client

    yield make
    closing = [threading.Thread(target=client.sdk.close) for client in made]
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(timeout=10)


def test_ten_envelopes_go_round_robin_to_two_clients_and_every_ack_is_recorded(
    slack: SocketModeSlack, connect: Callable[..., Client]
) -> None:
    first, second = connect(), connect()
    one, two = slack.socket_mode.wait_for_connections(2)
    opened = slack.calls_to("apps.connections.open")  # with the app token, or FakeSlack answers invalid_auth
    assert len(opened) == 2 and all(call.response["url"].startswith("ws://127.0.0.1:") for call in opened)
    sent = [slack.socket_mode.deliver_event({"type": "app_mention", "text": f"question {n}"}) for n in range(10)]
    acks = slack.socket_mode.wait_for_acks(10)
    assert [delivery.link for delivery in sent] == [one.number, two.number] * 5
    assert sorted(first.ids() + second.ids()) == sorted(delivery.envelope_id for delivery in sent)
    assert len(first.ids()) == len(second.ids()) == 5 and not set(first.ids()) & set(second.ids())
    assert one.envelopes in (first.ids(), second.ids()) and two.envelopes in (first.ids(), second.ids())
    link_of = {delivery.envelope_id: delivery.link for delivery in sent}
    assert all(ack.link == link_of[ack.envelope_id] for ack in acks)  # each acked where it was delivered
    assert sorted(ack.link for ack in acks) == [one.number] * 5 + [two.number] * 5
    request = first.requests[0]
    assert request.type == "events_api" and request.retry_attempt == 0 and request.retry_reason == ""
    assert request.payload["event"]["type"] == "app_mention" and not request.accepts_response_payload
    hellos = [message for message in first.messages + second.messages if message.get("type") == "hello"]
    assert sorted(hello["num_connections"] for hello in hellos) == [1, 2]


def test_a_redelivery_goes_to_the_other_connection_as_a_retry(
    slack: SocketModeSlack, connect: Callable[..., Client]
) -> None:
    silent, other = connect(ack=False), connect()  # the first never acks, like a replica that died mid-request
    quiet_link, other_link = slack.socket_mode.wait_for_connections(2)
    first = slack.socket_mode.deliver_event({"type": "app_mention", "text": "anyone?"}, to=quiet_link)
    assert silent.received.wait(5)
    retry = slack.socket_mode.redeliver(first.envelope_id)
    [ack] = slack.socket_mode.wait_for_acks(1)
    assert (retry.link, retry.attempt, ack.envelope_id, ack.link) == (other_link.number, 1, first.envelope_id, 2)
    assert silent.ids() == other.ids() == [first.envelope_id]
    [request] = other.requests
    assert (request.retry_attempt, request.retry_reason) == (1, "timeout")
    assert request.payload == silent.requests[0].payload
    assert [delivery.link for delivery in slack.socket_mode.deliveries_of(first.envelope_id)] == [1, 2]
    assert slack.socket_mode.acks_for(first.envelope_id) == [ack]


def test_a_redelivery_needs_another_open_connection(slack: SocketModeSlack, connect: Callable[..., Client]) -> None:
    connect()
    slack.socket_mode.wait_for_connections(1)
    sent = slack.socket_mode.deliver({"type": "event_callback", "event": {"type": "message"}})
    with pytest.raises(AssertionError, match="no open connection"):
        slack.socket_mode.redeliver(sent.envelope_id)
    with pytest.raises(AssertionError, match="never delivered"):
        slack.socket_mode.redeliver("not-an-envelope")


def test_a_slash_command_ack_carries_its_response_payload(
    slack: SocketModeSlack, connect: Callable[..., Client]
) -> None:
    client = connect(response={"text": "looking it up"})
    slack.socket_mode.wait_for_connections(1)
    sent = slack.socket_mode.deliver({"command": "/ask", "text": "who?"}, "slash_commands")
    [ack] = slack.socket_mode.wait_for_acks(1)
    assert ack.envelope_id == sent.envelope_id and ack.payload == {"text": "looking it up"}
    [request] = client.requests
    assert request.type == "slash_commands" and request.accepts_response_payload
    assert "retry_attempt" not in sent.envelope  # as Slack: only Events API envelopes carry retries


def test_a_disconnect_message_makes_the_client_move_to_a_new_connection(
    slack: SocketModeSlack, connect: Callable[..., Client]
) -> None:
    client = connect()
    [old] = slack.socket_mode.wait_for_connections(1)
    slack.socket_mode.disconnect(old)
    slack.socket_mode.wait_until(lambda: not old.is_open and slack.socket_mode.open_links(), "a new connection only")
    [new] = slack.socket_mode.open_links()
    assert new.number == 2 and len(slack.calls_to("apps.connections.open")) == 2
    slack.socket_mode.deliver_event({"type": "app_mention", "text": "still there?"})
    [ack] = slack.socket_mode.wait_for_acks(1)
    assert ack.link == new.number and len(client.requests) == 1


# -- the WebSocket protocol, with a raw client ---------------------------------------------------------------


class RawClient:
    """A bare RFC 6455 client: masks what it sends, reads the server's frames."""

    def __init__(self, url: str, key: str = "dGhlIHNhbXBsZSBub25jZQ==") -> None:
        where = urlsplit(url)
        self.socket = socket.create_connection((where.hostname, where.port), timeout=5)
        request = (
            f"GET {where.path}?{where.query} HTTP/1.1\r\nHost: {where.hostname}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.socket.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.socket.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}

    def send(self, opcode: int, data: bytes, *, mask: bool = True) -> None:
        key = os.urandom(4) if mask else b""
        body = bytes(byte ^ key[n % 4] for n, byte in enumerate(data)) if mask else data
        assert len(data) < 126
        self.socket.sendall(bytes([0x80 | opcode, (0x80 if mask else 0) | len(data)]) + key + body)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.socket.recv(4096)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def receive(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        assert first & 0x80 and not second & 0x80  # final, and never masked by a server
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return first & 0x0F, self._read(length)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def server() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        yield fake


def test_the_handshake_answers_rfc_6455_and_refuses_unknown_or_used_tickets(server: FakeSocketMode) -> None:
    url = server.open_url()
    assert url.startswith(f"ws://127.0.0.1:{server.port}/link/?ticket=")
    client = RawClient(url)
    try:
        assert client.status == 101
        assert client.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's own example
        expected = base64.b64encode(hashlib.sha1(b"dGhlIHNhbXBsZSBub25jZQ==" + GUID.encode()).digest()).decode()
        assert client.headers["sec-websocket-accept"] == expected
        opcode, hello = client.receive()
        assert opcode == 0x1 and json.loads(hello)["type"] == "hello"
        client.send(0x9, b"are you there")
        assert client.receive() == (0xA, b"are you there")
        client.send(0x1, json.dumps({"envelope_id": "e-1"}).encode())
        [ack] = server.wait_for_acks(1)
        assert (ack.envelope_id, ack.link, ack.payload) == ("e-1", 1, None)
    finally:
        client.close()
    again = RawClient(url)  # the same ticket a second time
    stranger = RawClient(url.replace("ticket=", "ticket=x"))
    wrong_path = RawClient(server.open_url().replace("/link/", "/other/"))
    try:
        assert (again.status, stranger.status, wrong_path.status) == (401, 401, 400)
    finally:
        for raw in (again, stranger, wrong_path):
            raw.close()
    assert len(server.refused) == 3 and len(server.links) == 1


def test_an_unmasked_client_frame_closes_the_connection_with_1002(server: FakeSocketMode) -> None:
    client = RawClient(server.open_url())
    try:
        client.receive()  # hello
        client.send(0x1, b'{"envelope_id": "e-2"}', mask=False)
        opcode, data = client.receive()
        assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1002
    finally:
        client.close()
    assert server.acks == [] and "unmasked" in server.errors[0]
    server.wait_until(lambda: not server.links[0].is_open, "the connection closed")


def test_stopping_closes_each_connection_with_1001() -> None:
    with FakeSocketMode(hello=False) as fake:
        client = RawClient(fake.open_url())
        fake.wait_for_connections(1)
    try:
        opcode, data = client.receive()
        assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1001
        with pytest.raises(EOFError):
            client.receive()
    finally:
        client.close()


# -- replicas on two hosts ---------------------------------------------------------------------------------

CLIENT = """
import sys
import threading
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

client = SocketModeClient(app_token=sys.argv[2], web_client=WebClient(base_url=sys.argv[1]))
printing = threading.Lock()  # listeners run on a thread pool

def ack(client, request):
    with printing:
        print(request.envelope_id, flush=True)
    client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

client.socket_mode_request_listeners.append(ack)
client.connect()
sys.stdin.read()  # until the test closes stdin
client.close()
"""


def test_clients_on_two_hosts_connect_through_the_gateway_and_share_the_envelopes() -> None:
    with netns.network(2) as net, SocketModeSlack(net.gateway, ping_interval=0.1) as slack:
        assert slack.api_url.startswith(f"http://{net.gateway}:")
        env = {name: value for name, value in os.environ.items() if name not in PROXIES}
        processes = [
            host.popen(
                [sys.executable, "-c", CLIENT, slack.api_url, APP_TOKEN],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for host in net.hosts
        ]
        links = slack.socket_mode.wait_for_connections(2, timeout=20)
        host_of = {link.number: link.peer[0] for link in links}
        assert sorted(host_of.values()) == sorted(host.address for host in net.hosts)
        sent = [slack.socket_mode.deliver_event({"type": "app_mention", "text": f"q{n}"}) for n in range(4)]
        acks = slack.socket_mode.wait_for_acks(4)
        assert sorted(host_of[ack.link] for ack in acks) == sorted([host.address for host in net.hosts] * 2)
        printed = {}
        for host, process in zip(net.hosts, processes, strict=True):
            out, err = process.communicate("", timeout=20)
            assert process.returncode == 0, err
            printed[host.address] = out.split()
        for delivery in sent:
            assert delivery.envelope_id in printed[host_of[delivery.link]]
    assert net.leftovers() == []
