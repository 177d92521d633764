"""A loopback TCP proxy that can be switched off and on, to give a real database a real outage in tests."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from typing import Any


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` drops every connection and refuses new ones until ``up()``.

    >>> with TcpProxy(("127.0.0.1", 5432)) as proxy:    # doctest: +SKIP
    ...     proxy.down(); proxy.up()
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._available = threading.Event()
        self._available.set()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._close_all()
        self._thread.join(5)
        self._listener.close()

    def down(self) -> None:
        """Cut every open connection and refuse new ones."""
        self._available.clear()
        self._close_all()

    def up(self) -> None:
        """Accept and forward connections again."""
        self._available.set()

    def _close_all(self) -> None:
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self._available.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.extend((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        # A selector (epoll), not select.select: late in a long test run this process holds more than 1,024 file
        # descriptors, and select() refuses those, which cut connections as if the database had dropped them.
        pair = {a: b, b: a}
        selector = selectors.DefaultSelector()
        try:
            for sock in pair:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set() and self._available.is_set():
                for key, _ in selector.select(0.2):
                    sock = key.fileobj
                    data = sock.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    pair[sock].sendall(data)  # type: ignore[index]
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass


@contextlib.contextmanager
def postgres_behind_proxy(base_url: str) -> Iterator[tuple[str, str, TcpProxy]]:
    """A fresh schema on the PostgreSQL server of ``base_url`` reached through a TcpProxy: yields (URL through the
    proxy, direct URL, proxy); the schema is dropped afterwards.

    >>> with postgres_behind_proxy(postgres_base_url()) as (url, direct, proxy):   # doctest: +SKIP
    ...     proxy.down()
    """
    from sqlalchemy.engine import make_url

    from tests.support.databases import create_pg_schema, drop_pg_schema

    schema, direct = create_pg_schema(base_url)
    parsed = make_url(direct)
    try:
        with TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432)) as proxy:
            yield direct.replace(f"{parsed.host}:{parsed.port}", f"127.0.0.1:{proxy.port}"), direct, proxy
    finally:
        drop_pg_schema(base_url, schema)
