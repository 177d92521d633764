"""Fan-out: send one notification to several channels at once, so a slow or broken channel cannot hold up the rest."""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import Sequence

from llmobs.alerts.notification import Notification
from llmobs.alerts.notification_handlers.base import DeliveryResult, Notifier, logger


def deliver_all(notifiers: Sequence[Notifier], notification: Notification,
                timeout: float = 30.0) -> list[DeliveryResult]:
    """Send ``notification`` to every notifier concurrently; return one result per notifier, in order, within
    about ``timeout`` seconds. A channel still running at the deadline gets a "failed" result and keeps running in
    the background (its own request timeout bounds it); its late outcome is logged.

    >>> [r.status for r in deliver_all([LogNotifier()], Notification.test(), timeout=5)]   # doctest: +SKIP
    ['sent']
    """
    if not notifiers:
        return []
    started = time.monotonic()
    pool = cf.ThreadPoolExecutor(max_workers=len(notifiers), thread_name_prefix="llmobs-alert-send")
    try:
        futures = [pool.submit(n.send, notification) for n in notifiers]
        cf.wait(futures, timeout=timeout)
        return [_collect(n, f, notification, timeout, started) for n, f in zip(notifiers, futures)]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _collect(notifier: Notifier, future: cf.Future[DeliveryResult], notification: Notification, timeout: float,
             started: float) -> DeliveryResult:
    """The notifier's own result, or a "failed" stand-in when it did not finish (or, unexpectedly, raised)."""
    if future.done():
        exc = future.exception()
        if exc is None:
            return future.result()
        error = f"{type(exc).__name__} raised by the channel"
    else:
        error = f"no result within {timeout:g} s; still running in the background"
        future.add_done_callback(lambda f: _log_late(notifier, notification, f))
    logger.warning("alert notification %s via %s: %s", notification.idempotency_key, notifier.name, error)
    return DeliveryResult(channel=notifier.name, channel_type=notifier.channel_type, status="failed", attempts=1,
                          error=error, duration_ms=round((time.monotonic() - started) * 1000, 3))


def _log_late(notifier: Notifier, notification: Notification, future: cf.Future[DeliveryResult]) -> None:
    """Record how a channel that missed the deadline finally ended."""
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    logger.info("alert notification %s via %s finished after the deadline: %s", notification.idempotency_key,
                notifier.name, result.status)
