"""Small callables the writer thread runs on each finished span before it is exported (structlog-style).

A processor takes a ``SpanRecord`` and returns it (changed or not), or None to drop it. Each is testable by
calling it; a failing processor is logged and skipped by the pipeline.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from llmobs.context import SpanRecord
from llmobs.pricing import compute_cost, linear_cost, load_price_table
from llmobs.serialize import apply_mask

log = logging.getLogger("llmobs")
PRICED_KINDS = ("generation", "embedding")


def mask_processor(mask: Callable[[Any], Any]) -> Callable[[SpanRecord], SpanRecord]:
    """Run the user's ``mask`` over input, output and metadata; a failing mask hides the field (fail closed).

    >>> p = mask_processor(lambda v: "***")
    """

    def process(record: SpanRecord) -> SpanRecord:
        record.input = apply_mask(mask, record.input)
        record.output = apply_mask(mask, record.output)
        if record.metadata is not None:
            masked = apply_mask(mask, record.metadata)
            record.metadata = masked if isinstance(masked, dict) else {"masked": masked}
        return record

    process.__name__ = "mask"
    return process


def price_processor(record: SpanRecord) -> SpanRecord:
    """Fill ``cost_usd`` of model calls from tokens and the price table when the caller did not set it.

    Unknown models keep a NULL cost and say why in ``metadata.cost_note``.
    """
    if record.cost_usd is not None or record.kind not in PRICED_KINDS or not record.model_name:
        return record
    prompt, completion = record.prompt_tokens, record.completion_tokens
    if prompt is None and completion is None:
        return record
    metadata = record.metadata
    details = (metadata.get("usage_details") if isinstance(metadata, dict) else None) or {}
    cached = details.get("cached_tokens")
    if not cached and type(prompt) is int and type(completion) is int and prompt >= 0 and completion >= 0:
        cost = linear_cost(record.model_name, record.provider, prompt, completion)
        if cost is not None:
            record.cost_usd = cost
            return record
    result = compute_cost(record.model_name, _as_int(prompt), _as_int(completion), cached_tokens=_as_int(cached),
                          provider=record.provider)
    if result.cost_usd is not None:
        record.cost_usd = result.cost_usd
    elif result.note:
        record.metadata = {**(record.metadata or {}), "cost_note": result.note}
    return record


price_processor.warm_up = load_price_table  # type: ignore[attr-defined]


def warm_up(processors: Iterable[Callable[[SpanRecord], SpanRecord | None]]) -> None:
    """Run the ``warm_up`` of each processor that has one (loading what it needs before the first batch)."""
    for processor in processors:
        prepare = getattr(processor, "warm_up", None)
        if prepare is not None:
            try:
                prepare()
            except Exception:  # noqa: BLE001 - the processor will load lazily instead
                log.warning("llmobs: warming up processor %r failed", processor, exc_info=True)


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


DEFAULT_PROCESSORS: tuple[Callable[[SpanRecord], SpanRecord | None], ...] = (price_processor,)
