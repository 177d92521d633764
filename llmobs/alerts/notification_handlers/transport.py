"""One HTTP request with the standard library (no new dependency), classified as an Attempt for the retry loop.

Redirects are not followed: a webhook that answers 3xx is misconfigured, and following it would send signed
bodies and headers to another address.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Mapping

from llmobs.alerts.notification_handlers.retry import Attempt, is_retryable_status, parse_retry_after

MAX_BODY = 64 * 1024
USER_AGENT = "llmobs-alerts/1"


@dataclass(frozen=True)
class HttpReply:
    """Status, headers and (bounded) body of one HTTP exchange; ``status`` None means no response at all."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    error: str | None = None
    retryable: bool = False

    def text(self, limit: int = 300) -> str:
        """The body as text, shortened for error messages."""
        return self.body[:limit].decode("utf-8", "replace").strip()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every 3xx into an HTTPError instead of following it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def build_opener() -> urllib.request.OpenerDirector:
    """An opener that honours proxy environment variables but never follows redirects."""
    return urllib.request.build_opener(_NoRedirect())


def _headers(message: Message | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (message.items() if message is not None else [])}


def request(opener: urllib.request.OpenerDirector, url: str, method: str, body: bytes,
            headers: Mapping[str, str], timeout: float) -> HttpReply:
    """Send one request; return the reply or a connection-level error (never raises for network problems)."""
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return HttpReply(resp.status, _headers(resp.headers), resp.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(MAX_BODY)
        except (OSError, http.client.HTTPException):
            data = b""
        finally:
            exc.close()
        return HttpReply(exc.code, _headers(exc.headers), data)
    except urllib.error.URLError as exc:
        return _network_error(exc.reason if isinstance(exc.reason, BaseException) else exc)
    except (OSError, http.client.HTTPException) as exc:
        return _network_error(exc)


def _network_error(exc: BaseException | str) -> HttpReply:
    """Classify a failure without an HTTP status: certificate and URL problems are permanent, the rest transient."""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return HttpReply(None, {}, b"", error="timed out waiting for the server", retryable=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HttpReply(None, {}, b"", error=f"TLS certificate rejected: {exc.verify_message}", retryable=False)
    if isinstance(exc, ConnectionRefusedError):
        return HttpReply(None, {}, b"", error="connection refused", retryable=True)
    if isinstance(exc, http.client.InvalidURL):
        return HttpReply(None, {}, b"", error=f"invalid URL: {exc}", retryable=False)
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "URLError"
    return HttpReply(None, {}, b"", error=f"{kind}: {exc}", retryable=True)


def classify(reply: HttpReply) -> Attempt:
    """Map an HttpReply to an Attempt: 2xx ok; 408/429/5xx and network errors retryable; other statuses permanent.

    A Retry-After header on 429 or 503 becomes the wait before the next attempt.
    """
    if reply.status is None:
        return Attempt(ok=False, retryable=reply.retryable, error=reply.error)
    if 200 <= reply.status < 300:
        return Attempt(ok=True, http_status=reply.status)
    detail = reply.text()
    error = f"HTTP {reply.status}" + (f": {detail}" if detail else "")
    retry_after = parse_retry_after(reply.headers.get("retry-after")) if reply.status in (429, 503) else None
    return Attempt(ok=False, retryable=is_retryable_status(reply.status), error=error, http_status=reply.status,
                   retry_after=retry_after)
