"""An OpenAI-compatible HTTP server for tests, examples and demos: offline, deterministic, scriptable.

It speaks the wire format of the real API closely enough for the official `openai` SDK to parse every
reply (chat completions, Responses API, legacy completions, embeddings, models), including SSE streams,
tool calls, usage blocks and OpenAI-shaped errors.

Example:
    >>> import openai
    >>> from llmobs.testing.openai_server import FakeOpenAIServer, Reply
    >>> with FakeOpenAIServer() as srv:
    ...     srv.enqueue(Reply(content="Paris"))
    ...     client = openai.OpenAI(base_url=srv.base_url, api_key="test")
    ...     reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital?"}])
    ...     reply.choices[0].message.content
    'Paris'
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal

__all__ = ["FakeOpenAIServer", "RecordedRequest", "Reply", "Responder", "ToolCall", "main"]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_EMBEDDING_DIMENSIONS = 64
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"})
MODEL_IDS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small")

# Default (type, code, message) of the error body for a scripted status, as the real API sends them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_denied", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("conflict", None, "The request conflicts with the current state."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "overloaded", "The engine is currently overloaded, please try again later."),
}

_WORDS = re.compile(r"\w+|[^\w\s]")
_STREAM_PIECES = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model makes; `arguments` may be a JSON string or a mapping (dumped as JSON).

    Example: `ToolCall("get_weather", {"city": "Paris"})`
    """

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    def arguments_json(self) -> str:
        """Return the arguments as the JSON string the API carries, so mappings and raw strings are both accepted."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class Reply:
    """What the server does for one request; every field is optional and the defaults give a normal answer.

    Example: `Reply(content="Paris")`, `Reply(status=429, retry_after=0.01)`, `Reply(chunk_delay=0.05, break_after=3)`
    """

    content: str | None = None
    """Assistant text (chat), output text (Responses) or completion text; None derives an echo of the prompt."""
    model: str | None = None
    """Model name reported in the body; None reports the requested model."""
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    """Override; defaults to "tool_calls" when tool calls are scripted, else "stop"."""
    usage: bool = True
    """False omits the usage block (and the streamed usage chunk) as some providers do."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    status: int = 200
    """A status >= 400 sends an OpenAI-shaped error body instead of a completion."""
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    """Seconds, sent as `Retry-After` (whole seconds) and `retry-after-ms`, which the SDK honours."""
    delay: float = 0.0
    """Seconds to wait before the status line is sent."""
    chunk_delay: float = 0.0
    """Seconds to wait before each streamed event."""
    break_after: int | None = None
    """Streams only: drop the connection after this many events, mid-body, without the final frames."""
    raw_body: str | None = None
    """Sent verbatim (text/plain) with `status` instead of any JSON body, e.g. to test non-JSON replies."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject impossible scripts at once, so a typo fails the test that wrote it rather than the SDK."""
        if not 100 <= self.status <= 599:
            raise ValueError(f"Reply.status must be an HTTP status 100..599, got {self.status!r}")
        if self.finish_reason is not None and self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"Reply.finish_reason must be one of {sorted(FINISH_REASONS)}, got {self.finish_reason!r}")
        for name in ("delay", "chunk_delay", "retry_after", "cached_tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Reply.{name} must be >= 0, got {value!r}")
        if self.break_after is not None and self.break_after < 0:
            raise ValueError(f"Reply.break_after must be >= 0, got {self.break_after!r}")

    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_after: float | None = None) -> Reply:
        """Build an error reply with the API's default type and code for `status`.

        Example: `srv.enqueue(Reply.error(429, retry_after=0.01))`
        """
        return cls(status=status, error_message=message, retry_after=retry_after)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it: method, path (no query), lower-cased headers and the parsed JSON body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    received_at: float
    """`time.monotonic()` when the body had been read."""


Responder = Callable[[RecordedRequest], "Reply | None"]


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 in a daemon thread; replies come from the queue, then the responder
    hook, then deterministic defaults.

    Example:
        >>> with FakeOpenAIServer() as srv:
        ...     srv.enqueue(Reply.error(500))
        ...     srv.base_url.startswith("http://127.0.0.1:")
        True
    """

    def __init__(
        self,
        port: int = 0,
        *,
        responder: Responder | None = None,
        embedding_dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS,
        idle_timeout: float = 30.0,
    ) -> None:
        """Prepare (not start) a server; `port=0` picks a free port, `idle_timeout` closes idle keep-alive sockets."""
        if embedding_dimensions < 1:
            raise ValueError(f"embedding_dimensions must be >= 1, got {embedding_dimensions!r}")
        self.responder: Responder | None = responder
        self.embedding_dimensions = embedding_dimensions
        self._requested_port = port
        self._idle_timeout = idle_timeout
        self._lock = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._ids = 0
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self so `srv = FakeOpenAIServer().start()` works."""
        if self._httpd is not None:
            return self
        self._stop.clear()
        handler = type("_BoundHandler", (_Handler,), {"timeout": self._idle_timeout})
        self._httpd = _HTTPServer(("127.0.0.1", self._requested_port), handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake pending delays, drop open connections and join the serving thread (bounded)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        """Start on entering a `with` block."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on leaving a `with` block."""
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (only meaningful once started)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; call start() or use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give `openai.OpenAI(base_url=...)`, e.g. "http://127.0.0.1:54321/v1"."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting and inspection -----------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Script the next replies (FIFO) for the POST endpoints.

        Example: `srv.enqueue(Reply.error(429), Reply(content="ok"))`
        """
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"enqueue() takes Reply objects, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first; e.g. `srv.requests[-1].body["model"]`."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and unused scripted replies, to reuse one server across test cases."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived (or `timeout` seconds passed); returns the recorded list.

        Example: `srv.wait_for_requests(2, timeout=1.0)`
        """
        with self._lock:
            self._lock.wait_for(lambda: len(self._requests) >= count, timeout=timeout)
            return list(self._requests)

    # -- internals used by the handler ---------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        """Append a request and wake `wait_for_requests` callers."""
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _next_id(self) -> int:
        """A process-unique counter for response ids, so ids are deterministic within one server."""
        with self._lock:
            self._ids += 1
            return self._ids

    def _next_reply(self, request: RecordedRequest) -> Reply:
        """Pick the reply for a generation request: the queue first, then the responder hook, then the default."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            try:
                scripted = self.responder(request)
            except Exception as exc:  # surface a broken hook to the client instead of a hung request
                return Reply(status=500, error_message=f"responder raised {type(exc).__name__}: {exc}")
            if scripted is not None:
                return scripted
        return Reply()

    def _sleep(self, seconds: float) -> bool:
        """Wait up to `seconds` unless the server is stopping; returns False when it is stopping."""
        if seconds <= 0:
            return not self._stop.is_set()
        return not self._stop.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its owning FakeOpenAIServer and never joins handler threads on close."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: FakeOpenAIServer
    ) -> None:
        """Bind and remember the owner, which holds the queue and the recorded requests."""
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up (normal for streams cut short and pooled sockets); report real bugs."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.owner._stop.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the endpoint builders and writes JSON or SSE back."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; without this, delayed ACKs add ~40 ms
    server_version = "llmobs-fake-openai/1"
    server: _HTTPServer

    def setup(self) -> None:
        """Track the socket so stop() can close keep-alive connections that would otherwise idle."""
        super().setup()
        with self.server.owner._lock:
            self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        """Untrack the socket."""
        try:
            super().finish()
        finally:
            with self.server.owner._lock:
                self.server.owner._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output should not carry access logs."""

    # -- HTTP verbs --------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        """Serve the models list and single-model lookups."""
        owner = self.server.owner
        request = self._read_request(None)
        owner._record(request)
        created = 1_700_000_000
        if request.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": created, "owned_by": "llmobs-testing"} for m in MODEL_IDS]
            self._send_json(200, {"object": "list", "data": data})
        elif request.path.startswith("/v1/models/"):
            model = request.path.removeprefix("/v1/models/")
            self._send_json(200, {"id": model, "object": "model", "created": created, "owned_by": "llmobs-testing"})
        else:
            self._send_error_reply(Reply(status=404, error_message=f"Unknown path {request.path}", error_code=None))

    def do_POST(self) -> None:
        """Serve the generation endpoints: apply the scripted reply's delay, error or body."""
        owner = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            owner._record(self._read_request(raw.decode("utf-8", "replace")))
            self._send_error_reply(Reply(status=400, error_message="We could not parse the JSON body of your request."))
            return
        request = self._read_request(body)
        owner._record(request)
        if request.path not in GENERATION_PATHS:
            self._send_error_reply(Reply(status=404, error_message=f"Unknown path {request.path}", error_code=None))
            return
        if not isinstance(body, dict):
            self._send_error_reply(Reply(status=400, error_message="The request body must be a JSON object."))
            return
        reply = owner._next_reply(request)
        if not owner._sleep(reply.delay):
            self.close_connection = True
            return
        if reply.raw_body is not None:
            self._send_bytes(reply.status, reply.raw_body.encode(), "text/plain; charset=utf-8", reply.headers)
        elif reply.status >= 400:
            self._send_error_reply(reply)
        else:
            self._dispatch(request.path, body, reply)

    # -- routing --------------------------------------------------------------------------------------------------
    def _dispatch(self, path: str, body: dict[str, Any], reply: Reply) -> None:
        """Build the endpoint's body (or stream) for a successful reply."""
        ident = self.server.owner._next_id()
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and reply.usage
        if path == "/v1/chat/completions":
            if stream:
                self._send_stream(_chat_stream(body, reply, ident, include_usage), reply, done=True)
            else:
                self._send_json(200, _chat_completion(body, reply, ident), reply.headers)
        elif path == "/v1/completions":
            if stream:
                self._send_stream(_text_stream(body, reply, ident, include_usage), reply, done=True)
            else:
                self._send_json(200, _text_completion(body, reply, ident), reply.headers)
        elif path == "/v1/responses":
            if stream:
                self._send_stream(_response_stream(body, reply, ident), reply, done=False)
            else:
                self._send_json(200, _response(body, reply, ident), reply.headers)
        else:
            self._send_json(200, _embeddings(body, reply, self.server.owner.embedding_dimensions), reply.headers)

    # -- writing ----------------------------------------------------------------------------------------------
    def _read_request(self, body: Any) -> RecordedRequest:
        """Snapshot the request line and headers with the already-parsed body."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        return RecordedRequest(self.command, path, headers, body, time.monotonic())

    def _common_headers(self, extra: Mapping[str, str]) -> None:
        """Send the headers every reply carries (request id) plus the scripted ones."""
        self.send_header("x-request-id", f"req_{self.server.owner._next_id():08d}")
        for name, value in extra.items():
            self.send_header(name, value)

    def _send_bytes(self, status: int, payload: bytes, content_type: str, extra: Mapping[str, str]) -> None:
        """Send a complete body with Content-Length."""
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self._common_headers(extra)
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, obj: Any, extra: Mapping[str, str] | None = None) -> None:
        """Send a JSON body."""
        self._send_bytes(status, _dumps(obj).encode(), "application/json", extra or {})

    def _send_error_reply(self, reply: Reply) -> None:
        """Send the OpenAI error envelope `{"error": {message, type, param, code}}` with retry headers if asked."""
        err_type, err_code, message = _ERRORS.get(reply.status, ("api_error", None, f"HTTP {reply.status}"))
        error = {
            "message": reply.error_message or message,
            "type": reply.error_type or err_type,
            "param": None,
            "code": reply.error_code if reply.error_code is not None else err_code,
        }
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers.setdefault("retry-after", str(math.ceil(reply.retry_after)))
            headers.setdefault("retry-after-ms", str(round(reply.retry_after * 1000)))
        self._send_json(reply.status, {"error": error}, headers)

    def _send_stream(self, events: Iterator[str], reply: Reply, *, done: bool) -> None:
        """Write SSE events as HTTP chunks, honouring chunk_delay and break_after; `done` appends `data: [DONE]`."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self._common_headers(reply.headers)
        self.end_headers()
        frames = list(events)
        if done:
            frames.append("data: [DONE]\n\n")
        for sent, frame in enumerate(frames):
            if reply.break_after is not None and sent >= reply.break_after:
                # Leave the chunked body unterminated: the client sees a connection lost mid-stream.
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if not owner._sleep(reply.chunk_delay):
                self.close_connection = True
                return
            data = frame.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- body builders (pure functions of request body and reply) -----------------------------------------------
def _dumps(obj: Any) -> str:
    """Compact JSON, as the API sends it."""
    return json.dumps(obj, separators=(",", ":"))


def _sse(obj: Any, event: str | None = None) -> str:
    """Frame one SSE event; the Responses API names its events, chat completions do not."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {_dumps(obj)}\n\n"


def _count_tokens(text: str) -> int:
    """A deterministic token count for fake usage: words and punctuation marks."""
    return len(_WORDS.findall(text))


def _text_of(content: Any) -> str:
    """Flatten message content (a string or a list of typed parts) into its text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def _last_user_text(body: Mapping[str, Any]) -> str:
    """The text the default reply echoes: the last user message (chat), input (Responses) or prompt (completions)."""
    if "messages" in body:
        for message in reversed(body.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""
    if "input" in body:
        items = body["input"]
        if isinstance(items, str):
            return items
        for item in reversed(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("role", "user") == "user" and "content" in item:
                return _text_of(item["content"])
        return ""
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        return str(prompt[-1]) if prompt else ""
    return str(prompt)


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    """Fake prompt token count: text tokens plus a small per-message overhead, like the real chat format."""
    if "messages" in body:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        return 3 + sum(4 + _count_tokens(_text_of(m.get("content"))) for m in messages)
    if "input" in body:
        items = body["input"]
        texts = (
            [items] if isinstance(items, str) else [_text_of(i.get("content")) for i in items if isinstance(i, dict)]
        )
        instructions = body.get("instructions")
        return (
            3
            + sum(4 + _count_tokens(t) for t in texts)
            + (_count_tokens(instructions) if isinstance(instructions, str) else 0)
        )
    return max(1, _count_tokens(_last_user_text(body)))


def _example_for_schema(schema: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """Build a minimal instance of a JSON schema (as `parse()` sends it) so structured output works unscripted."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        return _example_for_schema(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1]), defs, depth + 1)
    if "enum" in schema:
        return schema["enum"][0] if schema["enum"] else None
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _example_for_schema(schema[key][0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _example_for_schema(sub, defs, depth + 1) for name, sub in props.items()}
    return {"string": "", "integer": 0, "number": 0.0, "boolean": False, "array": [], "null": None}.get(str(kind))


def _structured_default(fmt: Any, echo: str) -> str | None:
    """Default JSON content when the request asked for JSON output (`response_format` / Responses `text.format`)."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return _dumps({"echo": echo})
    if fmt.get("type") == "json_schema":
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}
        return _dumps(_example_for_schema(schema, schema.get("$defs") or schema.get("definitions") or {}))
    return None


def _content(body: Mapping[str, Any], reply: Reply) -> str | None:
    """The text the reply carries: the scripted one, none when only tools are called, else a deterministic default."""
    if reply.content is not None:
        return reply.content
    if reply.tool_calls:
        return None
    echo = _last_user_text(body)
    fmt = body.get("response_format") or (body.get("text") or {}).get("format")
    structured = _structured_default(fmt, echo)
    if structured is not None:
        return structured
    return f"Echo: {echo}" if echo else "Hello from the fake OpenAI server."


def _model(body: Mapping[str, Any], reply: Reply) -> str:
    """The model name in the response: scripted, else the requested one."""
    return reply.model or str(body.get("model") or DEFAULT_MODEL)


def _call_id(ident: int, index: int) -> str:
    """A deterministic tool call id."""
    return f"call_{ident:06d}{index:02d}"


def _usage_numbers(body: Mapping[str, Any], reply: Reply, content: str | None) -> tuple[int, int]:
    """(prompt, completion) token counts: scripted, else counted; reasoning tokens count as completion, as upstream."""
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_tokens(body)
    if reply.completion_tokens is not None:
        return prompt, reply.completion_tokens
    visible = _count_tokens(content or "") + sum(
        _count_tokens(tc.name + " " + tc.arguments_json()) for tc in reply.tool_calls
    )
    return prompt, max(1, visible) + reply.reasoning_tokens


def _chat_usage(body: Mapping[str, Any], reply: Reply, content: str | None) -> dict[str, Any]:
    """The `usage` block of chat and text completions, with cached and reasoning token details."""
    prompt, completion = _usage_numbers(body, reply, content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_completion(body: Mapping[str, Any], reply: Reply, ident: int) -> dict[str, Any]:
    """A `chat.completion` object."""
    content = _content(body, reply)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": tc.id or _call_id(ident, i),
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments_json()},
            }
            for i, tc in enumerate(reply.tool_calls)
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    result: dict[str, Any] = {
        "id": f"chatcmpl-{ident:08d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(body, reply),
        "system_fingerprint": "fp_llmobs",
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if reply.usage:
        result["usage"] = _chat_usage(body, reply, content)
    return result


def _chat_stream(body: Mapping[str, Any], reply: Reply, ident: int, include_usage: bool) -> Iterator[str]:
    """SSE frames of a streamed chat completion: role, content/tool-call deltas, finish, optional usage chunk."""
    content = _content(body, reply)
    head = {
        "id": f"chatcmpl-{ident:08d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(body, reply),
        "system_fingerprint": "fp_llmobs",
        "service_tier": "default",
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        """One chunk with a single choice."""
        return _sse(
            {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        )

    yield chunk({"role": "assistant", "content": "" if content is not None else None, "refusal": None})
    for piece in _STREAM_PIECES.findall(content or ""):
        yield chunk({"content": piece})
    for i, tc in enumerate(reply.tool_calls):
        start = {
            "index": i,
            "id": tc.id or _call_id(ident, i),
            "type": "function",
            "function": {"name": tc.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [start]})
        for piece in _STREAM_PIECES.findall(tc.arguments_json()):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _chat_usage(body, reply, content)})


def _text_completion(body: Mapping[str, Any], reply: Reply, ident: int) -> dict[str, Any]:
    """A legacy `text_completion` object."""
    text = _content(body, reply) or ""
    result: dict[str, Any] = {
        "id": f"cmpl-{ident:08d}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": _model(body, reply),
        "system_fingerprint": "fp_llmobs",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": reply.finish_reason or "stop"}],
    }
    if reply.usage:
        result["usage"] = _chat_usage(body, reply, text)
    return result


def _text_stream(body: Mapping[str, Any], reply: Reply, ident: int, include_usage: bool) -> Iterator[str]:
    """SSE frames of a streamed legacy completion, with a usage chunk only when asked."""
    text = _content(body, reply) or ""
    head = {
        "id": f"cmpl-{ident:08d}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": _model(body, reply),
    }
    extra = {"usage": None} if include_usage else {}
    for piece in _STREAM_PIECES.findall(text):
        yield _sse({**head, "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}], **extra})
    yield _sse(
        {
            **head,
            "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": reply.finish_reason or "stop"}],
            **extra,
        }
    )
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _chat_usage(body, reply, text)})


def _response_usage(body: Mapping[str, Any], reply: Reply, content: str | None) -> dict[str, Any]:
    """The Responses API `usage` block."""
    prompt, completion = _usage_numbers(body, reply, content)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": prompt + completion,
    }


def _response_outputs(reply: Reply, ident: int, content: str | None) -> list[dict[str, Any]]:
    """Completed output items: the assistant message (if any text) and one function_call per scripted tool call."""
    items: list[dict[str, Any]] = []
    if content is not None:
        part = {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
        items.append(
            {"id": f"msg_{ident:08d}", "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        )
    for i, tc in enumerate(reply.tool_calls):
        items.append(
            {
                "id": f"fc_{ident:06d}{i:02d}",
                "type": "function_call",
                "call_id": tc.id or _call_id(ident, i),
                "name": tc.name,
                "arguments": tc.arguments_json(),
                "status": "completed",
            }
        )
    return items


_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _response(
    body: Mapping[str, Any],
    reply: Reply,
    ident: int,
    *,
    status: Literal["in_progress", "final"] = "final",
    created_at: int | None = None,
) -> dict[str, Any]:
    """A Responses API `response` object; `status="in_progress"` gives the empty shell streams start with."""
    content = _content(body, reply)
    incomplete = _INCOMPLETE_REASONS.get(reply.finish_reason or "")
    final = status == "final"
    created = created_at if created_at is not None else int(time.time())
    result: dict[str, Any] = {
        "id": f"resp_{ident:08d}",
        "object": "response",
        "created_at": created,
        "status": ("incomplete" if incomplete else "completed") if final else "in_progress",
        "completed_at": created if final and not incomplete else None,
        "error": None,
        "incomplete_details": {"reason": incomplete} if final and incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": _model(body, reply),
        "output": _response_outputs(reply, ident, content) if final else [],
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _response_usage(body, reply, content) if final and reply.usage else None,
        "user": None,
    }
    return result


def _response_stream(body: Mapping[str, Any], reply: Reply, ident: int) -> Iterator[str]:
    """The typed SSE events of a streamed response, from `response.created` to `response.completed`."""
    seq = 0
    created = int(time.time())

    def event(kind: str, **fields: Any) -> str:
        """Frame one typed event with the next sequence number."""
        nonlocal seq
        seq += 1
        return _sse({"type": kind, "sequence_number": seq - 1, **fields}, kind)

    shell = _response(body, reply, ident, status="in_progress", created_at=created)
    yield event("response.created", response=shell)
    yield event("response.in_progress", response=shell)
    final = _response(body, reply, ident, created_at=created)
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield event(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield event("response.content_part.added", **where, part=empty_part)
            for piece in _STREAM_PIECES.findall(text):
                yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part=item["content"][0])
        else:
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            where = {"item_id": item["id"], "output_index": index}
            for piece in _STREAM_PIECES.findall(item["arguments"]):
                yield event("response.function_call_arguments.delta", **where, delta=piece)
            yield event(
                "response.function_call_arguments.done", **where, arguments=item["arguments"], name=item["name"]
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)


def _embed(text: str, dimensions: int) -> list[float]:
    """A unit vector from hashed words (feature hashing): deterministic, and texts sharing words score as similar."""
    vector = [0.0] * dimensions
    words = _WORDS.findall(text.lower()) or [text]
    for word in words:
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:  # words cancelled out; fall back to a hash of the whole text
        digest = hashlib.sha256(text.encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] = 1.0
        norm = 1.0
    return [round(v / norm, 8) for v in vector]


def _embeddings(body: Mapping[str, Any], reply: Reply, default_dimensions: int) -> dict[str, Any]:
    """A `list` of embeddings for a string, list of strings, or token arrays; base64 when asked, as the SDK may."""
    raw = body.get("input", "")
    if isinstance(raw, str):
        texts = [raw]
    elif raw and all(isinstance(x, int) for x in raw):
        texts = [" ".join(map(str, raw))]
    else:
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
    dimensions = int(body.get("dimensions") or default_dimensions)
    data = []
    for index, text in enumerate(texts):
        vector = _embed(text, dimensions)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    result: dict[str, Any] = {"object": "list", "data": data, "model": _model(body, reply)}
    if reply.usage:
        tokens = (
            reply.prompt_tokens if reply.prompt_tokens is not None else sum(max(1, _count_tokens(t)) for t in texts)
        )
        result["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return result


# -- command line ----------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Serve on 127.0.0.1 until Ctrl-C/SIGTERM or `--seconds`; prints the base URL first.

    Example: `python -m llmobs.testing.openai_server --port 0 --seconds 60`
    """
    parser = argparse.ArgumentParser(prog="python -m llmobs.testing.openai_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--seconds", type=float, default=None, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """Turn SIGTERM into a clean stop."""
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    with FakeOpenAIServer(port=args.port) as srv:
        print(srv.base_url, flush=True)
        try:
            stop.wait(args.seconds)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
