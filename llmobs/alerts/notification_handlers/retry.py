"""Retries as a wrapper: run one attempt function until it succeeds, fails permanently or the budget is spent."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

from llmobs.alerts.notification_handlers.base import DeliveryOptions

RETRYABLE_HTTP = frozenset({408, 429})


@dataclass(frozen=True)
class Attempt:
    """Outcome of one try: ok, or an error that is ``retryable`` (transient) or not; ``disable`` stops the channel."""

    ok: bool
    retryable: bool = False
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    disable: bool = False


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are transient; other 4xx (and unexpected 3xx) are permanent."""
    return status in RETRYABLE_HTTP or status >= 500


def backoff_delay(options: DeliveryOptions, retry_number: int) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based): capped exponential with "equal jitter".

    >>> 0.25 <= backoff_delay(DeliveryOptions(backoff_base=0.5), 1) <= 0.5
    True
    """
    ceiling = min(options.backoff_max, options.backoff_base * (2 ** (retry_number - 1)))
    return ceiling * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None when absent or unreadable.

    >>> parse_retry_after("1.5"), parse_retry_after(None), parse_retry_after("soon")
    (1.5, None, None)
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:
        return None
    return max(0.0, seconds)


def run_with_retries(attempt: Callable[[int], Attempt], options: DeliveryOptions,
                     sleep: Callable[[float], None] = time.sleep) -> tuple[Attempt, int]:
    """Call ``attempt(n)`` for n = 1.. until ok, permanent, or ``retry_count`` retries are spent.

    Returns the last outcome and the number of attempts made. A Retry-After above ``max_retry_after`` ends the
    retries at once (waiting less would only be refused again).
    """
    retries = options.retry_count
    for number in range(1, retries + 2):
        outcome = attempt(number)
        if outcome.ok or not outcome.retryable or number > retries:
            return outcome, number
        if outcome.retry_after is not None:
            if outcome.retry_after > options.max_retry_after:
                note = (f"; server asked to retry after {outcome.retry_after:g} s, "
                        f"more than max_retry_after ({options.max_retry_after:g} s)")
                return replace(outcome, error=(outcome.error or "rate limited") + note), number
            sleep(outcome.retry_after)
        else:
            sleep(backoff_delay(options, number))
    raise AssertionError("unreachable")  # pragma: no cover
