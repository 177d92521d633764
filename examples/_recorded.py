"""What every example ends with: wait for the writer, then print the traces it recorded (not an example itself)."""

from __future__ import annotations

from collections.abc import Iterable

import llmobs
from llmobs import analytics
from llmobs.store.db import display_url


def print_recorded(trace_ids: Iterable[str | None]) -> None:
    """Flush, then print each trace (once, in order) as ``llmobs trace`` would; None ids (not sampled) are skipped."""
    assert llmobs.flush(timeout=30), "llmobs could not write the spans in time"
    print(f"\nRecorded into {display_url(llmobs.get_settings().database_url)}:")
    for trace_id in dict.fromkeys(trace_ids):
        if trace_id is not None:
            print(analytics.trace_tree(trace_id), end="\n\n")
