"""Real local peers for notification tests: a scripted HTTP receiver and an aiosmtpd SMTP server, on 127.0.0.1.

Use them as context managers or through the fixtures at the bottom (import the fixture names into a test module):

    with HttpReceiver(Reply(500), Reply(200, "ok")) as hook:    # first request gets 500, the next 200 "ok"
        ...send to hook.url...
        assert len(hook.requests) == 2

    with SmtpReceiver() as smtp:
        ...send to ("127.0.0.1", smtp.port)...
        message = smtp.wait_for(1)[0].message
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest


# --- HTTP -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body, headers, and an optional delay before answering (to provoke timeouts)."""

    status: int = 200
    body: str | bytes = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def body_bytes(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else self.body.encode("utf-8")


def json_reply(status: int, data: Any, **headers: str) -> Reply:
    """A Reply with a JSON body (e.g. Discord's ``{"retry_after": 0.2}`` on 429)."""
    return Reply(status, json.dumps(data), {"Content-Type": "application/json", **headers})


@dataclass(frozen=True)
class ReceivedRequest:
    """What the receiver got: method, path, headers (lower-cased names), raw body and arrival time (monotonic)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class HttpReceiver:
    """A ThreadingHTTPServer on 127.0.0.1 answering scripted replies in order, then ``default``; records requests.

    >>> with HttpReceiver(Reply(500)) as hook:    # doctest: +SKIP
    ...     hook.url
    'http://127.0.0.1:54321'
    """

    def __init__(self, *replies: Reply, default: Reply = Reply(200, "ok"), tls: ssl.SSLContext | None = None) -> None:
        self._replies: deque[Reply] = deque(replies)
        self.default = default
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"http-receiver-{self.port}")

    @property
    def url(self) -> str:
        """Base URL; any path is accepted (``receiver.url + "/services/T000/B000/XXXX"``)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Queue more replies."""
        with self._lock:
            self._replies.extend(replies)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests arrived (or the timeout passed); returns a copy of the requests."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)
            return list(self.requests)

    def __enter__(self) -> "HttpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; delayed handlers wake up at once."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next_reply(self, req: ReceivedRequest) -> Reply:
        with self._arrived:
            self.requests.append(req)
            self._arrived.notify_all()
            return self._replies.popleft() if self._replies else self.default

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = ReceivedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                      body, time.monotonic())
                reply = receiver._next_reply(req)
                if reply.delay and receiver._closing.wait(reply.delay):
                    return
                data = reply.body_bytes()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout) and closed the socket

            do_POST = do_PUT = do_PATCH = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        return Handler


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so nobody else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 (skips the test without openssl).

    Clients that verify certificates, as llmobs does, must reject it.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# --- SMTP -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: envelope sender and recipients, the parsed message and the login used (if any)."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1; ``data_replies`` scripts the answers to DATA (e.g. "451 try later") and
    ``credentials`` (user, password) enables AUTH PLAIN/LOGIN without TLS; ``starttls`` offers STARTTLS.

    >>> with SmtpReceiver() as smtp:    # doctest: +SKIP
    ...     smtp.port
    """

    def __init__(self, *data_replies: str, credentials: tuple[str, str] | None = None,
                 starttls: ssl.SSLContext | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[ReceivedMail] = []
        self.attempts = 0
        self._replies: deque[str] = deque(data_replies)
        self._cond = threading.Condition()
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with receiver._cond:
                    receiver.attempts += 1
                    if receiver._replies:
                        return receiver._replies.popleft()
                    raw = envelope.original_content or envelope.content
                    message = email.message_from_bytes(raw, policy=email.policy.default)
                    login = session.login_data.decode() if isinstance(session.login_data, bytes) else \
                        session.login_data
                    receiver.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos),
                                                          message, raw, login))  # type: ignore[arg-type]
                    receiver._cond.notify_all()
                return "250 Message accepted for delivery"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = (isinstance(auth_data, LoginPassword) and credentials is not None
                  and (auth_data.login.decode(), auth_data.password.decode()) == credentials)
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        sock = self._sock

        class BoundController(Controller):
            """Serves on a socket bound beforehand, so there is no race for a free port."""

            def _create_server(self) -> Any:
                return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)

        options: dict[str, Any] = {"auth_require_tls": False, "authenticator": authenticate} if credentials else {}
        if starttls is not None:
            options["tls_context"] = starttls
        self._controller = BoundController(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10,
                                           **options)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until ``count`` messages were accepted (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self.messages)

    def __enter__(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()
        self._sock.close()


# --- fixtures (import these names into a test module to use them) -------------------------------------------------

@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A running HttpReceiver answering 200 "ok"; call ``.script(...)`` to queue other replies."""
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """A running SMTP server on 127.0.0.1 accepting every message."""
    with SmtpReceiver() as receiver:
        yield receiver
