"""A fake Slack Socket Mode server for tests: a small RFC 6455 WebSocket server speaking Slack's envelopes.

    with SocketModeSlack() as slack:               # the fake Web API; apps.connections.open hands out links
        socket_mode = slack.socket_mode
        ...start clients (bolt's SocketModeHandler, or slack_sdk's SocketModeClient) against slack.api_url...
        first, second = socket_mode.wait_for_connections(2)
        sent = socket_mode.deliver({"type": "event_callback", ...})   # to the connections in turn
        socket_mode.redeliver(sent.envelope_id)                        # Slack's retry, to another connection
        acks = socket_mode.wait_for_acks(2)                            # who acknowledged what, over which link

What slack_sdk's built-in client (``slack_sdk.socket_mode.builtin``) needs, and all this implements: the
``apps.connections.open`` answer ``{"ok": true, "url": ...}`` (any port but 443 is plain TCP, so ``ws://`` on
loopback works), the opening handshake with ``Sec-WebSocket-Accept``, unmasked single-frame text messages from
the server, masked frames from the client (text for acknowledgements, ping answered by a pong with the same
payload, which the client uses to tell a live connection from a stale one; close), and Slack's messages:
``hello`` on connect, envelopes, and ``disconnect`` (the client then opens a new connection). Link tickets are
single-use, as Slack's are: a client that connects without calling ``apps.connections.open`` is refused (401).

Binds 127.0.0.1 unless given another address, e.g. a ``tests.support.netns`` gateway, so that clients inside
network namespaces can connect; ``Link.peer`` then tells which host a connection (and each ack) came from.
Stop the clients before the server: on stopping it closes each connection with 1001 (going away), and a client
that still reconnects finds nobody.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_slack import TEAM_ID, FakeSlack

APP_ID = "A0FAKE01"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 1 << 20  # bytes; acknowledgements are small
HANDSHAKE_TIMEOUT = 5.0


class ProtocolError(Exception):
    """The client broke RFC 6455; its connection is closed with 1002."""


@dataclass(eq=False)
class Link:
    """One client connection, numbered from 1 in the order they opened."""

    number: int
    peer: tuple[str, int]  # the client's address and port as this server sees them
    ticket: str
    is_open: bool = True
    envelopes: list[str] = field(default_factory=list)  # ids delivered here, in order
    messages: list[Any] = field(default_factory=list)  # other text messages the client sent
    pings: int = 0  # from the client (each answered with a pong)
    pongs: int = 0  # answers to the server's pings
    close_code: int | None = None  # from the client's close frame, if it sent one
    _socket: socket.socket | None = field(default=None, repr=False)
    _early: bytes = field(default=b"", repr=False)  # frames that came with the handshake (none, normally)
    _send_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class Delivery:
    """An envelope sent to one connection; ``attempt`` 0 is the first delivery, 1 the first retry, …"""

    envelope_id: str
    link: int
    attempt: int
    envelope: dict[str, Any]


@dataclass(frozen=True)
class Ack:
    """An acknowledgement: which envelope, over which connection, and the response payload if any."""

    envelope_id: str
    link: int
    payload: Any = None
    at: float = 0.0  # time.monotonic() when it arrived


class FakeSocketMode:
    """Start with ``with FakeSocketMode() as server:``; ``open_url()`` is what ``apps.connections.open`` answers."""

    def __init__(
        self, host: str = "127.0.0.1", *, app_id: str = APP_ID, hello: bool = True, ping_interval: float | None = None
    ) -> None:
        self.host = host
        self.app_id = app_id
        self.hello = hello
        self.ping_interval = ping_interval  # seconds between the server's pings to each client; None: no pings
        self.links: list[Link] = []  # every connection ever opened, in order
        self.deliveries: list[Delivery] = []
        self.acks: list[Ack] = []
        self.refused: list[str] = []  # why handshakes were refused
        self.errors: list[str] = []  # protocol errors of clients
        self.issued = 0  # link URLs handed out
        self._tickets: set[str] = set()
        self._last = 0  # the number of the link the previous round-robin delivery went to
        self._changed = threading.Condition()
        self._stopping = False
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> FakeSocketMode:
        self._spawn(self._accept_loop)
        if self.ping_interval is not None:
            self._spawn(self._ping_loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close every connection (1001, going away) and the listening socket."""
        with self._changed:
            self._stopping = True
            links = [link for link in self.links if link.is_open]
        for link in links:
            with contextlib.suppress(OSError):
                self._send(link, CLOSE, struct.pack("!H", 1001) + b"server stopping")
            self._hang_up(link)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def open_url(self) -> str:
        """A new single-use link URL, as Slack's ``apps.connections.open`` returns."""
        ticket = str(uuid.uuid4())
        with self._changed:
            self._tickets.add(ticket)
            self.issued += 1
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what tests use ----------------------------------------------------

    def open_links(self) -> list[Link]:
        with self._changed:
            return [link for link in self.links if link.is_open]

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> list[Link]:
        """The first ``count`` open connections, waiting at most ``timeout`` seconds for them."""

        def found() -> list[Link] | None:
            links = [link for link in self.links if link.is_open]
            return links[:count] if len(links) >= count else None

        return self._wait(found, timeout, lambda: f"{count} open connection(s); links: {self.links}")

    def deliver(
        self,
        payload: dict[str, Any],
        kind: str = "events_api",
        *,
        to: Link | int | None = None,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
    ) -> Delivery:
        """An envelope of type ``kind`` (events_api, slash_commands, interactive) sent to the next open connection
        in turn, or to ``to``. Like Slack, events_api envelopes carry ``retry_attempt`` 0 and ``retry_reason`` "",
        and ``accepts_response_payload`` is true for slash commands only, unless given."""
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind == "slash_commands"
            if accepts_response_payload is None
            else accepts_response_payload,
        }
        if kind == "events_api":
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        return self._send_envelope(envelope, self._pick(to, avoid=None), attempt=0)

    def deliver_event(
        self, event: dict[str, Any], *, event_id: str | None = None, to: Link | int | None = None
    ) -> Delivery:
        """An Events API ``event_callback`` carrying ``event``, delivered as :meth:`deliver` does."""
        payload = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": self.app_id,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "event": event,
        }
        return self.deliver(payload, "events_api", to=to)

    def redeliver(self, envelope_id: str, *, to: Link | int | None = None, reason: str = "timeout") -> Delivery:
        """Slack's retry of an envelope: the same envelope id, ``retry_attempt`` one more, sent to ``to`` or to the
        next open connection other than the one that had it last (AssertionError if there is none)."""
        with self._changed:
            earlier = [delivery for delivery in self.deliveries if delivery.envelope_id == envelope_id]
        if not earlier:
            raise AssertionError(f"envelope {envelope_id} was never delivered")
        last = earlier[-1]
        envelope = dict(last.envelope, retry_attempt=len(earlier), retry_reason=reason)
        return self._send_envelope(envelope, self._pick(to, avoid=last.link), attempt=len(earlier))

    def disconnect(self, link: Link | int, reason: str = "refresh_requested") -> None:
        """Slack's ``disconnect`` message: the client opens a new connection, then closes this one."""
        target = self._link(link)
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": f"applink-fake-{target.number}"}}
        self._send(target, TEXT, json.dumps(message).encode())

    def wait_for_acks(self, count: int, timeout: float = 10.0) -> list[Ack]:
        """The first ``count`` acknowledgements, waiting at most ``timeout`` seconds for them."""
        return self._wait(
            lambda: self.acks[:count] if len(self.acks) >= count else None,
            timeout,
            lambda: f"{count} ack(s); got {self.acks}; deliveries {[(d.envelope_id, d.link) for d in self.deliveries]}",
        )

    def wait_until(self, condition: Callable[[], object], what: str = "the condition", timeout: float = 10.0) -> None:
        """Until ``condition()`` (called with the server's lock held, re-checked on every change) is true."""
        self._wait(lambda: True if condition() else None, timeout, lambda: what)

    def acks_for(self, envelope_id: str) -> list[Ack]:
        with self._changed:
            return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    def deliveries_of(self, envelope_id: str) -> list[Delivery]:
        with self._changed:
            return [delivery for delivery in self.deliveries if delivery.envelope_id == envelope_id]

    # -- choosing a connection ----------------------------------------------

    def _link(self, link: Link | int) -> Link:
        with self._changed:
            found = [candidate for candidate in self.links if candidate is link or candidate.number == link]
        if not found or not found[0].is_open:
            raise AssertionError(f"connection {link} is not open; links: {self.links}")
        return found[0]

    def _pick(self, to: Link | int | None, avoid: int | None) -> Link:
        if to is not None:
            return self._link(to)
        with self._changed:
            candidates = [link for link in self.links if link.is_open and link.number != avoid]
            if not candidates:
                raise AssertionError(f"no open connection to deliver to (avoiding {avoid}); links: {self.links}")
            after = [link for link in candidates if link.number > self._last]
            chosen = (after or candidates)[0]
            self._last = chosen.number
            return chosen

    def _send_envelope(self, envelope: dict[str, Any], link: Link, attempt: int) -> Delivery:
        delivery = Delivery(envelope["envelope_id"], link.number, attempt, envelope)
        with self._changed:
            self.deliveries.append(delivery)
            link.envelopes.append(delivery.envelope_id)
        self._send(link, TEXT, json.dumps(envelope).encode())
        return delivery

    def _wait(self, found: Callable[[], Any], timeout: float, wanted: Callable[[], str]) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found()
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {wanted()} within {timeout}s")
                self._changed.wait(remaining)

    # -- the WebSocket server ------------------------------------------------

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                connection, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, connection, peer[:2])

    def _ping_loop(self) -> None:
        """Slack pings its clients now and then; a ping also ends a client's blocking read, so it closes sooner."""
        assert self.ping_interval is not None
        while not self._stopping:
            for link in self.open_links():
                with contextlib.suppress(OSError):
                    self._send(link, PING, b"fake-slack-ping")
            time.sleep(self.ping_interval)

    def _serve(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        link = None
        try:
            link = self._handshake(connection, peer)
            if link is None:
                return
            self._read_loop(link)
        except ProtocolError as error:
            with self._changed:
                self.errors.append(f"link {link.number if link else '?'}: {error}")
            if link is not None:
                with contextlib.suppress(OSError):
                    self._send(link, CLOSE, struct.pack("!H", 1002) + str(error).encode()[:100])
        except OSError:
            pass  # the client went away
        finally:
            if link is not None:
                self._hang_up(link)
            else:
                connection.close()

    def _handshake(self, connection: socket.socket, peer: tuple[str, int]) -> Link | None:
        connection.settimeout(HANDSHAKE_TIMEOUT)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk or len(request) > 16384:
                return None
            request += chunk
        head, _, early = request.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, *_ = [*lines[0].split(" "), "", ""]
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
        }
        where = urlsplit(target)
        ticket = (parse_qs(where.query).get("ticket") or [""])[0]
        with self._changed:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        problem = _handshake_problem(method, where.path, headers, known)
        if problem is not None:
            status = "401 Unauthorized" if problem == UNKNOWN_TICKET else "400 Bad Request"
            with self._changed:
                self.refused.append(f"{peer[0]} {target}: {problem}")
            connection.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            return None
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        connection.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        connection.settimeout(None)
        with self._changed:
            number = len(self.links) + 1
            count = 1 + len([other for other in self.links if other.is_open])
            link = Link(number, peer, ticket, _socket=connection, _early=early)
        if self.hello:  # before the link is listed, so that nothing a test delivers can overtake it
            hello = {
                "type": "hello",
                "num_connections": count,
                "debug_info": {
                    "host": f"applink-fake-{number}",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
            self._send(link, TEXT, json.dumps(hello).encode())
        with self._changed:
            if self._stopping:  # stop() has already closed the others: this one would be missed
                return None
            self.links.append(link)
            self._changed.notify_all()
        return link

    def _read_loop(self, link: Link) -> None:
        assert link._socket is not None
        reader = _Reader(link._socket, link._early)
        fragments: list[bytes] | None = None
        while True:
            fin, opcode, data = _read_frame(reader)
            if opcode == PING:
                link.pings += 1
                self._send(link, PONG, data)
            elif opcode == PONG:
                link.pongs += 1
            elif opcode == CLOSE:
                link.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                with contextlib.suppress(OSError):
                    self._send(link, CLOSE, data[:2])
                return
            elif opcode == CONTINUATION:
                if fragments is None:
                    raise ProtocolError("continuation frame without a message to continue")
                fragments.append(data)
                if fin:
                    self._received(link, b"".join(fragments))
                    fragments = None
            elif opcode in (TEXT, BINARY):
                if fragments is not None:
                    raise ProtocolError("new message inside a fragmented one")
                if fin:
                    self._received(link, data)
                else:
                    fragments = [data]
            else:
                raise ProtocolError(f"unknown opcode {opcode}")

    def _received(self, link: Link, data: bytes) -> None:
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            message = data
        with self._changed:
            if isinstance(message, dict) and "envelope_id" in message:
                self.acks.append(Ack(message["envelope_id"], link.number, message.get("payload"), time.monotonic()))
            else:
                link.messages.append(message)
            self._changed.notify_all()

    def _send(self, link: Link, opcode: int, data: bytes) -> None:
        if link._socket is None:
            raise OSError(f"connection {link.number} is closed")
        with link._send_lock:
            link._socket.sendall(_frame(opcode, data))

    def _hang_up(self, link: Link) -> None:
        with self._changed:
            link.is_open = False
            self._changed.notify_all()
        connection = link._socket
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


UNKNOWN_TICKET = "unknown or used ticket"


def _handshake_problem(method: str, path: str, headers: dict[str, str], known_ticket: bool) -> str | None:
    """Why an opening handshake is refused, or None (RFC 6455, section 4.2.1, and Slack's tickets)."""
    if method != "GET":
        return "not a GET"
    if path.rstrip("/") != "/link":
        return f"unknown path {path}"
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        return "not a WebSocket upgrade"
    if headers.get("sec-websocket-version") != "13":
        return "not WebSocket version 13"
    if not headers.get("sec-websocket-key"):
        return "no Sec-WebSocket-Key"
    if not known_ticket:
        return UNKNOWN_TICKET
    return None


class _Reader:
    """Exact reads from a socket, starting with bytes already received."""

    def __init__(self, connection: socket.socket, early: bytes) -> None:
        self.connection = connection
        self.buffer = bytearray(early)

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.connection.recv(max(4096, size - len(self.buffer)))
            if not chunk:
                raise OSError("the client closed the connection")
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def _read_frame(reader: _Reader) -> tuple[bool, int, bytes]:
    """(fin, opcode, unmasked payload) of the next frame; clients must mask (RFC 6455, section 5.1)."""
    first, second = reader.read(2)
    if first & 0x70:
        raise ProtocolError("reserved bits set without an extension")
    fin, opcode, masked, length = bool(first & 0x80), first & 0x0F, bool(second & 0x80), second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", reader.read(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", reader.read(8))
    if not masked:
        raise ProtocolError("unmasked frame from a client")
    if length > MAX_MESSAGE:
        raise ProtocolError(f"frame of {length} bytes")
    if opcode >= CLOSE and (length > 125 or not fin):
        raise ProtocolError("control frame too long or fragmented")
    mask = reader.read(4)
    data = reader.read(length)
    key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
    return fin, opcode, (int.from_bytes(data, "big") ^ key).to_bytes(length, "big")


def _frame(opcode: int, data: bytes) -> bytes:
    """One unmasked, final frame (servers never mask)."""
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + data


class SocketModeSlack(FakeSlack):
    """The fake Web API whose ``apps.connections.open`` hands out links of ``self.socket_mode``.

    ``host`` is the address both listen on (default loopback; a ``tests.support.netns`` gateway for clients inside
    namespaces); ``ping_interval`` goes to the FakeSocketMode made here. A ``socket_mode`` passed in is used as is
    (its host and pings win) and is neither started nor stopped here. Other keyword arguments go to FakeSlack.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        socket_mode: FakeSocketMode | None = None,
        ping_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host=host, **kwargs)
        self.socket_mode = socket_mode or FakeSocketMode(host, ping_interval=ping_interval)
        self._owns_socket_mode = socket_mode is None

    def __enter__(self) -> SocketModeSlack:
        if self._owns_socket_mode:
            self.socket_mode.__enter__()
        try:
            super().__enter__()
        except BaseException:
            self.socket_mode.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            if self._owns_socket_mode:
                self.socket_mode.stop()

    def _result(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode.open_url()}
        return super()._result(method, body)
