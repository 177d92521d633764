"""Process-level controls: configure, flush, shutdown, stats."""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from llmobs import _state
from llmobs import pipeline as _pipeline
from llmobs.config import ConfigError, Settings
from llmobs.processors import DEFAULT_PROCESSORS, mask_processor

log = logging.getLogger("llmobs")
_NOT_SET: Any = object()
_user_processors: list[Callable[..., Any]] = []
_mask: Callable[[Any], Any] | None = None
_tracker_processor: Callable[..., Any] | None = None


def configure(*, mask: Callable[[Any], Any] | None = _NOT_SET, processors: Sequence[Callable[..., Any]] | None = None,
              exporters: Sequence[Any] | None = None, performance_tracker: Any = _NOT_SET,
              config_file: str | None = None, reset: bool = False, **settings: Any) -> Settings:
    """Set llmobs settings from code (highest precedence) and hooks; raises ConfigError naming a bad key or value.

    Settings are the keys of ``config/config.yaml`` (nested ones as ``alerts={"...": ...}`` or
    ``alerts__evaluation_interval_seconds=30``). ``mask`` is called on every input, output and metadata value
    before it is stored; ``processors`` run on each finished span in the writer thread; ``exporters`` replace the
    database writer (e.g. ``InMemoryExporter()``); ``performance_tracker`` (a ``llmobs.monitoring.PerformanceTracker``)
    is fed every finished generation. ``reset=True`` forgets earlier ``configure()`` calls.

    >>> configure(database_url="sqlite:///data/llmobs.db", sample_rate=1.0)   # doctest: +SKIP
    """
    global _mask, _tracker_processor
    if mask is not _NOT_SET and mask is not None and not callable(mask):
        raise ConfigError(f"llmobs config: mask = {mask!r} (from configure()) is invalid: must be a callable or None")
    pipe = _pipeline.current_pipeline()
    moves = "database_url" in settings or config_file is not None or reset or exporters is not None
    if moves and pipe.thread is not None and pipe.queue:
        # Spans captured before this call belong to the database (and exporters) they were captured under.
        pipe.flush(_state.settings().shutdown_timeout_seconds)
    resolved = _state.reconfigure(settings, config_file=config_file, reset=reset)
    if mask is not _NOT_SET:
        _mask = mask
    if reset and mask is _NOT_SET:
        _mask = None
    if processors is not None:
        _user_processors[:] = list(processors)
    elif reset:
        _user_processors.clear()
    if performance_tracker is not _NOT_SET:
        _tracker_processor = None if performance_tracker is None else performance_tracker.processor
    elif reset:
        _tracker_processor = None
    _state.rt.mask = _mask
    pipe.processors = _processor_chain()
    if exporters is not None:
        pipe.set_exporters(exporters)
    pipe.apply_limits(resolved.queue_size, resolved.batch_size)
    _pipeline.install_sigterm_handler()
    _apply_pricing(resolved)
    return resolved


def _processor_chain() -> list[Callable[..., Any]]:
    chain: list[Callable[..., Any]] = []
    if _mask is not None:
        chain.append(mask_processor(_mask))
    chain.extend(DEFAULT_PROCESSORS)
    chain.extend(_user_processors)
    if _tracker_processor is not None:
        chain.append(_tracker_processor)
    return chain


def _apply_pricing(resolved: Settings) -> None:
    try:
        from llmobs.pricing import set_price_overrides
    except ImportError:
        if resolved.pricing:
            log.warning("llmobs: pricing overrides are configured but the pricing module is unavailable")
        return
    set_price_overrides(resolved.pricing)


def get_settings() -> Settings:
    """The resolved settings; ``get_settings().sources`` tells where each value came from."""
    return _state.settings()


def flush(timeout: float | None = None) -> bool:
    """Block until every span finished so far is written (at most ``timeout`` seconds); True when all were.

    >>> flush(timeout=5)   # doctest: +SKIP
    True
    """
    try:
        return _pipeline.current_pipeline().flush(timeout)
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: flush failed")
        return False


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the writer thread (it restarts on the next span). Also runs at interpreter exit."""
    try:
        return _pipeline.current_pipeline().shutdown(timeout)
    except Exception:  # noqa: BLE001 - boundary
        log.exception("llmobs: shutdown failed")
        return False


def stats() -> dict[str, int]:
    """Pipeline counters: queued, written, dropped (queue full), rejected (bad rows), lost (at shutdown)."""
    return _pipeline.current_pipeline().stats()


_pipeline.current_pipeline().processors = _processor_chain()
_apply_pricing(_state.settings())  # a bad config file or env value fails here, at import
