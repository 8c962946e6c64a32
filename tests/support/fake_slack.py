"""A fake Slack Web API for tests: records every call, answers like Slack, checks Block Kit limits.

It listens on 127.0.0.1, or on the ``host`` given (e.g. a ``tests.support.netns`` gateway, for bots inside
network namespaces); ``url`` names the address it listens on.

``FakeSlack.api_url`` goes into ``SLACK_API_URL``; ``FakeSlack.response_url(name)``
is a ``response_url`` sink. Calls whose blocks break Slack's limits are
answered with ``invalid_blocks`` (as Slack would) and keep their problems in
``Call.problems``. Tests wait for the bot's asynchronous replies with
``wait_for``, which gives up after a bounded timeout. It speaks HTTP/1.1, so a
client that keeps its connection open (the bot's ``response_url`` poster) reuses
it; connections still open are closed when the fake stops.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_TOKEN = "xoxb-1111-2222-fakebottoken"
APP_TOKEN = "xapp-1-A111-2222-fakeapptoken"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0FAKE01"

MESSAGE_BLOCKS = 50
HOME_BLOCKS = 100
SECTION_TEXT = 3000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
BLOCK_ID = 255
MESSAGE_TEXT = 40000
KNOWN_BLOCKS = {"section", "context", "actions", "divider", "header", "image", "rich_text", "input"}


@dataclass
class Call:
    method: str  # a Web API method such as "chat.postMessage", or "response_url"
    body: dict[str, Any]
    authorization: str | None = None
    path: str = ""
    problems: list[str] = field(default_factory=list)
    response: Any = None  # what the fake answered
    at: float = field(default_factory=time.monotonic)  # when the fake received it


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


def block_kit_problems(payload: dict[str, Any], max_blocks: int = MESSAGE_BLOCKS) -> list[str]:
    """What Slack would reject in a message or view payload (independent of the bot's own limits)."""
    problems: list[str] = []
    text = payload.get("text")
    if text is not None and len(text) > MESSAGE_TEXT:
        problems.append(f"text has {len(text)} characters")
    found = payload.get("blocks")
    if found is None:
        return problems
    if not isinstance(found, list) or not found:
        return [*problems, "blocks must be a non-empty list"]
    if len(found) > max_blocks:
        problems.append(f"{len(found)} blocks (max {max_blocks})")
    for number, block in enumerate(found):
        problems.extend(f"block {number}: {p}" for p in _block_problems(block))
    return problems


def _block_problems(block: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = block.get("type")
    if kind not in KNOWN_BLOCKS:
        return [f"unknown block type {kind!r}"]
    if len(block.get("block_id", "")) > BLOCK_ID:
        problems.append("block_id too long")
    if kind == "section":
        problems.extend(_text_problems(block.get("text"), SECTION_TEXT, "section text"))
        if "accessory" in block:
            problems.extend(_element_problems(block["accessory"]))
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= CONTEXT_ELEMENTS:
            problems.append(f"context has {len(elements)} elements")
        for element in elements:
            problems.extend(_text_problems(element, SECTION_TEXT, "context text"))
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= ACTIONS_ELEMENTS:
            problems.append(f"actions has {len(elements)} elements")
        for element in elements:
            problems.extend(_element_problems(element))
    elif kind == "header":
        problems.extend(_text_problems(block.get("text"), 150, "header"))
    return problems


def _text_problems(text: Any, limit: int, what: str) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("mrkdwn", "plain_text"):
        return [f"{what} is not a text object"]
    value = text.get("text")
    if not isinstance(value, str) or not value:
        return [f"{what} is empty"]
    if len(value) > limit:
        return [f"{what} has {len(value)} characters (max {limit})"]
    return []


def _element_problems(element: dict[str, Any]) -> list[str]:
    if element.get("type") != "button":
        return []
    problems = _text_problems(element.get("text"), BUTTON_TEXT, "button text")
    if element.get("text", {}).get("type") != "plain_text":
        problems.append("button text must be plain_text")
    if not 0 < len(element.get("action_id", "")) <= ACTION_ID:
        problems.append("button action_id missing or too long")
    if len(element.get("value", "")) > BUTTON_VALUE:
        problems.append(f"button value has {len(element['value'])} characters (max {BUTTON_VALUE})")
    return problems


ASSISTANT_METHODS = (
    "assistant.threads.setSuggestedPrompts",
    "assistant.threads.setTitle",
    "assistant.threads.setStatus",
)


def unfurl_problems(body: dict[str, Any]) -> list[str]:
    """What Slack would reject in a ``chat.unfurl`` call: where it goes, and each unfurl's blocks."""
    problems: list[str] = []
    if not (body.get("channel") and body.get("ts")) and not (body.get("unfurl_id") and body.get("source")):
        problems.append("neither channel and ts nor unfurl_id and source")
    unfurls = body.get("unfurls")
    if isinstance(unfurls, str):
        unfurls = json.loads(unfurls)
    if not isinstance(unfurls, dict) or not unfurls:
        return [*problems, "unfurls must be a non-empty object"]
    for url, unfurl in unfurls.items():
        problems.extend(f"{url}: {problem}" for problem in block_kit_problems(unfurl))
    return problems


class FakeSlack:
    """Start with ``with FakeSlack() as slack:``; every call lands in ``slack.calls``."""

    def __init__(self, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN, host: str = "127.0.0.1") -> None:
        self.host = host
        self.bot_token = bot_token
        self.app_token = app_token
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        self._failures: dict[str, list[Failure]] = {}
        self._timestamps = itertools.count(1)
        self._messages: set[tuple[str, str]] = set()
        self._open: set[socket.socket] = set()
        self._holds: dict[str, tuple[float, str | None]] = {}  # method: (until, only from this client address)
        self.held = 0  # calls being held right now
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._changed:
            still_open, self._open = list(self._open), set()
        for connection in still_open:  # kept-alive connections: their handler threads end now, not serve on
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        address, port = self._server.server_address[:2]
        return f"http://{address}:{port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def response_url(self, name: str = "hook") -> str:
        return f"{self.url}response/{name}"

    # -- what tests use ----------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def replies(self) -> list[Call]:
        """Every call that shows something to a user."""
        shown = {"chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish", "response_url"}
        with self._changed:
            return [call for call in self.calls if call.method in shown]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """The first ``count`` calls to ``method``, waiting at most ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [call for call in self.calls if call.method == method]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [call.method for call in self.calls]
                    raise AssertionError(f"expected {count} call(s) to {method} within {timeout}s; got {seen}")
                self._changed.wait(remaining)

    def fail_next(self, method: str, status: int = 429, retry_after: str = "0", error: str = "ratelimited") -> None:
        """The next call to ``method`` fails like Slack's rate limiting (HTTP 429 with Retry-After)."""
        self._failures.setdefault(method, []).append(
            Failure(status, {"Retry-After": retry_after}, {"ok": False, "error": error})
        )

    def hold(self, method: str, seconds: float, peer: str | None = None) -> None:
        """Calls to ``method`` (from the client address ``peer``, or any) wait up to ``seconds`` (or :meth:`release`)
        before they are answered. A call whose client hung up meanwhile is dropped, recorded as ``method (client
        gone)``, as a post that never completed: a bot killed while its reply waits here has not replied."""
        with self._changed:
            self._holds[method] = (time.monotonic() + seconds, peer)

    def release(self) -> None:
        """Held calls go on now; later ones are not held."""
        with self._changed:
            self._holds.clear()
            self._changed.notify_all()

    def wait_for_held(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.held < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} held call(s) within {timeout}s; {self.held} held")
                self._changed.wait(remaining)

    def _wait_if_held(self, method: str, peer: str, connection: socket.socket) -> bool:
        """Hold the call if asked to; False when its client hung up meanwhile (the call is then dropped)."""
        with self._changed:
            hold = self._holds.get(method)
            if hold is None or (hold[1] is not None and hold[1] != peer):
                return True
            self.held += 1
            self._changed.notify_all()
            try:
                while method in self._holds and time.monotonic() < self._holds[method][0]:
                    self._changed.wait(min(0.2, self._holds[method][0] - time.monotonic()))
            finally:
                self.held -= 1
        try:
            connection.setblocking(False)
            try:
                gone = connection.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                gone = False
            finally:
                connection.setblocking(True)
        except OSError:
            gone = True
        return not gone

    # -- answering ---------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _answer_api(
        self, method: str, body: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, str], Any]:
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            self._record(Call(method + " (failed)", body, authorization, f"/api/{method}"))
            return failure.status, failure.headers, failure.body
        call = Call(method, body, authorization, f"/api/{method}")
        token = (authorization or "").removeprefix("Bearer ") or body.get("token")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            call.response = {"ok": False, "error": "invalid_auth"}
            self._record(call)
            return 200, {}, call.response
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            call.problems = block_kit_problems(body)
        elif method in ("views.publish", "views.open"):
            call.problems = block_kit_problems(body.get("view") or {}, HOME_BLOCKS)
        elif method == "chat.unfurl":
            call.problems = unfurl_problems(body)
        if call.problems:
            call.response = {"ok": False, "error": "invalid_blocks", "errors": call.problems}
        else:
            call.response = self._result(method, body)
        self._record(call)
        return 200, {}, call.response

    def _result(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "corpusbot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = f"{1700000000 + next(self._timestamps)}.000100"
            self._messages.add((channel, ts))
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text"), "ts": ts}}
        if method == "chat.update":
            if (channel, body.get("ts")) not in self._messages:
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel, "ts": body.get("ts"), "text": body.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{1700000000 + next(self._timestamps)}.000200"}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V0001", **(body.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": True, "url": "wss://127.0.0.1:9/never-used"}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0002", **(body.get("view") or {})}}
        if method in ("chat.unfurl", *ASSISTANT_METHODS):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive unless the client says Connection: close (urllib does)
            wbufsize = -1  # status line, headers and body leave in one write (flushed after each request)

            def setup(self) -> None:
                super().setup()
                with fake._changed:
                    fake._open.add(self.connection)

            def finish(self) -> None:
                with fake._changed:
                    fake._open.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                body = _parse(raw, self.headers.get("Content-Type") or "")
                if self.path.startswith("/api/"):
                    if not fake._wait_if_held(self.path[5:], self.client_address[0], self.connection):
                        fake._record(Call(self.path[5:] + " (client gone)", body, path=self.path))
                        self.close_connection = True
                        return
                    status, headers, answer = fake._answer_api(self.path[5:], body, self.headers.get("Authorization"))
                    self._send(status, json.dumps(answer), "application/json", headers)
                elif self.path.startswith("/response/"):
                    if not fake._wait_if_held("response_url", self.client_address[0], self.connection):
                        fake._record(Call("response_url (client gone)", body, path=self.path))
                        self.close_connection = True
                        return
                    failures = fake._failures.get("response_url")
                    if failures:
                        failure = failures.pop(0)
                        fake._record(Call("response_url (failed)", body, path=self.path))
                        self._send(failure.status, "rate_limited", "text/plain", failure.headers)
                        return
                    call = Call("response_url", body, path=self.path, problems=block_kit_problems(body))
                    fake._record(call)
                    self._send(400 if call.problems else 200, "invalid_blocks" if call.problems else "ok", "text/plain")
                else:
                    self._send(404, "not found", "text/plain")

            def _send(self, status: int, text: str, content_type: str, headers: dict[str, str] | None = None) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _parse(raw: str, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(raw)
    form = {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}
    for key in ("blocks", "view", "attachments", "unfurls", "metadata", "prompts"):
        if isinstance(form.get(key), str):
            form[key] = json.loads(form[key])
    return form
