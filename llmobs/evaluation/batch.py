"""Batch evaluation (rows from a list, a DataFrame, or a CSV/JSONL file) and online evaluation of stored spans.

``evaluate_batch`` returns a pandas DataFrame with one row per input and one column per metric, stores every score
with the row's key (its ``id`` or a hash of its content) so that ``resume=True`` skips rows already scored by the
same evaluator version, and shows a progress line on a terminal. ``evaluate_spans`` scores stored generation spans
that have no score from the evaluator yet, linking each score to its span; the scheduler runs it periodically.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .heuristic import TASK_METRICS, TASK_TYPES

if TYPE_CHECKING:
    from llmobs.analytics.filters import Filters

    from .evaluator import EvaluationResult, LLMEvaluator

log = logging.getLogger("llmobs")

__all__ = ["evaluate_batch", "evaluate_spans", "load_rows", "row_key", "span_texts", "SpanEvaluationReport"]

CORE_COLUMNS = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")
ALIASES = {
    "model": "model_name",
    "row_id": "id",
    "expected": "expected_response",
    "reference": "expected_response",
    "question": "prompt",
    "answer": "response",
    "output": "response",
    "contexts": "context",
    "task": "task_type",
}
FIELDS = ("id", "span_id", "trace_id", "model_name", "prompt", "response", "task_type", "expected_response", "context")
Progress = Callable[[int, int], None]


# --- loading ---------------------------------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """NaN (pandas' missing value) becomes None; lists of context passages are joined."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (list, tuple)):
        return "\n\n".join(str(v) for v in value if v is not None)
    return value


def _normalise_row(raw: Mapping[str, Any], *, from_text: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if name in FIELDS and name not in row:
            row[name] = _clean(value)
    for name in ("id", "span_id", "trace_id", "model_name", "task_type", "expected_response", "context"):
        if from_text and row.get(name) == "":
            row[name] = None  # an empty CSV cell means "not given" for optional columns
    if row.get("id") is not None:
        row["id"] = str(row["id"])
    return row


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise ValueError(f"{path}: line {number} is not a JSON object")
            rows.append(item)
    return rows


def _read_path(path: Path) -> tuple[list[dict[str, Any]], bool]:
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)], True
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path), False
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path}: a .json file must hold a list of objects")
        return data, False
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv, .jsonl (or .ndjson) or .json")


def load_rows(rows: Any) -> list[dict[str, Any]]:
    """Input rows as dicts with the canonical keys (id, span_id, trace_id, model_name, prompt, response, task_type,
    expected_response, context). Accepts a list of mappings, a pandas DataFrame, or a .csv/.jsonl/.json path.

    >>> load_rows([{"model": "gpt-4", "prompt": "Hi", "response": "Hello"}])[0]["model_name"]
    'gpt-4'
    """
    from_text = False
    if isinstance(rows, (str, Path)):
        raw, from_text = _read_path(Path(rows))
    elif hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        raw = rows.to_dict("records")
    elif isinstance(rows, Iterable) and not isinstance(rows, Mapping):
        raw = list(rows)
    else:
        raise ValueError(
            f"rows must be a list of dicts, a pandas DataFrame or a CSV/JSONL path, not {type(rows).__name__}"
        )
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"row {i} is {type(item).__name__}, not a mapping")
        out.append(_normalise_row(item, from_text=from_text))
    if out and not any("response" in r for r in out):
        raise ValueError(f"rows need a 'response' column (and 'prompt'); found: {', '.join(sorted(raw[0]))}")
    return out


def row_key(row: Mapping[str, Any]) -> str:
    """The key a batch row is stored and resumed under: ``id:<id>`` when the row has an id, else a content hash.

    >>> row_key({"id": 7})
    'id:7'
    """
    if row.get("id") is not None:
        return f"id:{row['id']}"[:200]
    digest = hashlib.sha256()
    for name in ("model_name", "prompt", "response", "task_type", "expected_response", "context"):
        value = row.get(name)
        digest.update(b"\x00" if value is None else str(value).encode("utf-8", "surrogatepass") + b"\x01")
    return "sha256:" + digest.hexdigest()[:32]


# --- progress --------------------------------------------------------------------------------------------------
class _ProgressLine:
    """A one-line progress display on stderr (or a user callback), updated at most ten times a second."""

    def __init__(self, total: int, progress: bool | Progress | None, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.callback = progress if callable(progress) else None
        if progress is None:
            try:
                self.enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                self.enabled = False
        else:
            self.enabled = bool(progress) and self.callback is None
        self.done = 0
        self.started = time.monotonic()
        self.shown = 0.0
        self.lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            self.total = max(self.total, self.done)  # more work than counted up front (new spans in the range)
            done, total = self.done, self.total
        if self.callback is not None:
            try:
                self.callback(done, total)
            except Exception:  # noqa: BLE001 - a broken progress callback must not stop the batch
                log.warning("llmobs: progress callback failed", exc_info=True)
                self.callback = None
        if self.enabled:
            now = time.monotonic()
            if now - self.shown >= 0.1 or done == total:
                self.shown = now
                self._draw(done, total, now)

    def _draw(self, done: int, total: int, now: float) -> None:
        rate = done / max(now - self.started, 1e-9)
        pct = 100.0 * done / total if total else 100.0
        try:
            self.stream.write(f"\revaluating {done}/{total} ({pct:.0f}%) {rate:.1f} rows/s ")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass


def _map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, line: _ProgressLine) -> list[Any]:
    """``fn`` over ``items`` with up to ``workers`` threads, results in input order."""
    if workers <= 1 or len(items) <= 1:
        out = []
        for item in items:
            out.append(fn(item))
            line.advance()
        return out
    from llmobs.tracing import ContextThreadPoolExecutor

    results: list[Any] = [None] * len(items)
    with ContextThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmobs-eval") as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for future in _as_completed(futures):
            results[futures[future]] = future.result()
            line.advance()
    return results


def _as_completed(futures: Mapping[Any, int]) -> Iterable[Any]:
    import concurrent.futures

    return concurrent.futures.as_completed(futures)


# --- batch -----------------------------------------------------------------------------------------------------
def _expected_builtin(task_type: str) -> set[str]:
    return {*CORE_COLUMNS, *TASK_METRICS.get(task_type, ())}


def _custom_versions(evaluator: LLMEvaluator, task_type: str) -> set[str]:
    return {f"{e.name}-{e.version}"[:64] for e in evaluator.custom_evaluators(task_type)}


def _evaluate_row(
    evaluator: LLMEvaluator, row: dict[str, Any], key: str, store: bool, exclude: set[tuple[str, str]]
) -> tuple[EvaluationResult | None, str | None]:
    """Evaluate one row and queue its scores; a bad row yields its error instead of stopping the batch."""
    try:
        result = evaluator.evaluate_response(
            row.get("model_name"),
            row.get("prompt"),
            row.get("response"),  # type: ignore[arg-type]
            task_type=row.get("task_type") or "general",
            expected_response=row.get("expected_response"),
            context=row.get("context"),
            span_id=row.get("span_id"),
            trace_id=row.get("trace_id"),
            store=False,
        )
    except ValueError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one row must not end the batch
        log.exception("llmobs: evaluating batch row %s failed", key)
        return None, f"{type(exc).__name__}: {exc}"
    if store:
        _store_missing(result, key, exclude)
    return result, None


def _store_missing(result: EvaluationResult, key: str, exclude: set[tuple[str, str]]) -> None:
    from llmobs import pipeline as _pipeline

    from .storage import result_records

    try:
        records = result_records(result, row_key=key)
    except Exception:  # noqa: BLE001 - storing must not lose the in-memory result
        log.exception("llmobs: could not store the scores of batch row %s", key)
        return
    for record in records:
        if (record.name, record.evaluator_version) not in exclude:
            _pipeline.submit(record)  # type: ignore[arg-type]


def evaluate_batch(
    evaluator: LLMEvaluator,
    rows: Any,
    *,
    resume: bool = False,
    workers: int | None = None,
    progress: bool | Progress | None = None,
    task_type: str | None = None,
    store: bool | None = None,
) -> Any:
    """Evaluate every row and return a DataFrame: id, row_key, model, task_type, status (evaluated / skipped /
    error), one column per metric, and errors. ``task_type`` fills rows without one. Scores are stored (unless
    ``store=False``) under the row key; ``resume=True`` skips rows already fully scored by this evaluator version
    and fills their columns from the database.

    >>> LLMEvaluator().evaluate_batch("data.csv", resume=True)   # doctest: +SKIP
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("evaluate_batch returns a pandas DataFrame: pip install 'llmobs[evaluation]'") from None
    if task_type is not None and task_type not in TASK_TYPES:
        raise ValueError(f"task_type={task_type!r} is not allowed; use one of {', '.join(TASK_TYPES)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers!r} must be >= 1")
    items = load_rows(rows)
    for row in items:
        if task_type is not None and not row.get("task_type"):
            row["task_type"] = task_type
    keys = [row_key(r) for r in items]
    do_store = True if store is None else bool(store)
    version = evaluator.evaluator_version
    stored: dict[str, set[tuple[str, str]]] = {}
    if resume:
        from .storage import stored_metrics

        versions = {version}
        for r in items:
            versions |= _custom_versions(evaluator, r.get("task_type") or "general")
        for key, name, ver in stored_metrics(keys, versions):
            stored.setdefault(key, set()).add((name, ver))
    skip = [resume and _complete(evaluator, r, stored.get(k, set())) for r, k in zip(items, keys)]
    todo = [i for i, s in enumerate(skip) if not s]
    line = _ProgressLine(len(items), progress)
    if len(todo) < len(items):
        line.advance(len(items) - len(todo))
    outcomes = _map(
        lambda i: _evaluate_row(evaluator, items[i], keys[i], do_store, stored.get(keys[i], set())),
        todo,
        workers or evaluator.max_workers,
        line,
    )
    line.close()
    by_index = dict(zip(todo, outcomes))
    previous: dict[str, dict[str, float | None]] = {}
    if any(skip):
        from .storage import stored_values

        previous = stored_values(
            [k for k, s in zip(keys, skip) if s], {version} | {v for vs in stored.values() for _, v in vs}
        )
    records = [_frame_row(items[i], keys[i], by_index.get(i), previous.get(keys[i])) for i in range(len(items))]
    frame = pd.DataFrame.from_records(records)
    return frame[_column_order(list(frame.columns))] if len(frame.columns) else frame


def _complete(evaluator: LLMEvaluator, row: Mapping[str, Any], have: set[tuple[str, str]]) -> bool:
    """True when every built-in metric of the row's task type and every custom evaluator already has a row."""
    task = row.get("task_type") or "general"
    if task not in TASK_TYPES:
        return False
    names = {n for n, v in have if v == evaluator.evaluator_version}
    if not _expected_builtin(task) <= names:
        return False
    versions = {v for _, v in have}
    return _custom_versions(evaluator, task) <= versions


def _frame_row(
    row: Mapping[str, Any],
    key: str,
    outcome: tuple[EvaluationResult | None, str | None] | None,
    previous: Mapping[str, float | None] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.get("id"),
        "row_key": key,
        "model": row.get("model_name"),
        "task_type": row.get("task_type") or "general",
        "span_id": row.get("span_id"),
    }
    if outcome is None:
        out["status"] = "skipped"
        out.update(previous or {})
        out["errors"] = ""
        return out
    result, error = outcome
    if result is None:
        out["status"] = "error"
        out["errors"] = f"input: {error}"
        return out
    out["status"] = "evaluated"
    out.update(result.scores())
    out["errors"] = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
    return out


def _column_order(columns: list[str]) -> list[str]:
    head = ["id", "row_key", "model", "task_type", "span_id", "status", *CORE_COLUMNS]
    tail = ["errors"]
    first = [c for c in head if c in columns]
    rest = [c for c in columns if c not in head and c not in tail]
    return first + rest + [c for c in tail if c in columns]


# --- online evaluation of stored spans -----------------------------------------------------------------------------
@dataclass
class SpanEvaluationReport:
    """What one ``evaluate_spans`` run did: spans considered (after those already scored), left out by sampling,
    scored and failed; ``already_scored`` spans in the selection that this evaluator version had scored before
    (skipped, never scored twice); ``rows`` evaluation rows stored."""

    considered: int = 0
    sampled_out: int = 0
    scored: int = 0
    failed: int = 0
    evaluator_version: str = ""
    already_scored: int = 0
    rows: int = 0


_PROMPT_KEYS = (
    "prompt",
    "question",
    "query",
    "input",
    "user_input",
    "instruction",
    "text",
    "message",
    "messages",
    "inputs",
)
_RESPONSE_KEYS = (
    "content",
    "text",
    "output_text",
    "response",
    "answer",
    "completion",
    "generated_text",
    "output",
    "result",
    "message",
    "choices",
    "generations",
)
_CONTEXT_KEYS = ("context", "contexts", "documents", "docs", "sources", "passages")


def _content_text(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in content if isinstance(p, (str, dict))]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return None


def _messages_text(messages: list[Any], roles: tuple[str, ...]) -> str | None:
    """Text of the last message with one of ``roles``."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") in roles:
            text = _content_text(message.get("content"))
            if text is not None:
                return text
    return None


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(m, dict) and "role" in m for m in value)


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:20000]
    except (TypeError, ValueError):
        return str(value)[:20000]


def _prompt_text(value: Any, depth: int = 0) -> str | None:
    if value is None or depth > 4:
        return None
    if isinstance(value, str):
        return value
    if _is_messages(value):
        return _messages_text(value, ("user", "human")) or _messages_text(value, ("system", "developer"))
    if isinstance(value, dict):
        for key in _PROMPT_KEYS:
            if key in value:
                found = _prompt_text(value[key], depth + 1)
                if found:
                    return found
        for key in ("args", "kwargs"):
            found = _prompt_text(value.get(key), depth + 1)
            if found:
                return found
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    if isinstance(value, list):
        for item in value:
            found = _prompt_text(item, depth + 1)
            if found:
                return found
    return None


def _response_text(value: Any, depth: int = 0) -> str | None:
    if value is None or depth > 5:
        return None
    if isinstance(value, str):
        return value
    if _is_messages(value):
        return _messages_text(value, ("assistant", "ai", "model"))
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list) and value["choices"]:
            choice = value["choices"][0]
            if isinstance(choice, dict):
                return _response_text(choice.get("message"), depth + 1) or _response_text(choice.get("text"), depth + 1)
        if "role" in value and "content" in value:
            return _content_text(value["content"])
        for key in _RESPONSE_KEYS:
            if key in value:
                found = _response_text(value[key], depth + 1)
                if found:
                    return found
    if isinstance(value, list) and value:
        for item in value:
            found = _response_text(item, depth + 1)
            if found:
                return found
    return None


def span_texts(
    input_value: Any,
    output_value: Any,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[str, str | None, str | None]:
    """(prompt, response, context) from a span's stored input, output and metadata.

    Chat messages give the last user message and the assistant reply; ``@observe`` arguments give the prompt-like
    argument (prompt, question, query, messages, ...) and the return value. Anything else is shown as JSON.

    >>> span_texts([{"role": "user", "content": "Hi?"}], {"role": "assistant", "content": "Hello!"})
    ('Hi?', 'Hello!', None)
    """
    prompt = _prompt_text(input_value)
    if prompt is None:
        prompt = "" if input_value is None else _dump(input_value)
    response = _response_text(output_value)
    if response is None and output_value is not None:
        response = _dump(output_value)
    context = None
    for source in (input_value, metadata):
        if isinstance(source, dict):
            for where in (source, source.get("kwargs")):
                if isinstance(where, dict):
                    for key in _CONTEXT_KEYS:
                        if where.get(key):
                            value = _clean(where[key])
                            context = value if isinstance(value, str) else _dump(value)
                            break
                if context is not None:
                    break
        if context is not None:
            break
    return prompt, response, context


def _sampled(span_id: str, rate: float) -> bool:
    """Deterministic by span id, so a span left out once is left out on every run (the rate holds over time)."""
    if rate >= 1.0:
        return True
    try:
        return int(span_id[-8:], 16) / 2**32 < rate
    except ValueError:
        return False


def evaluate_spans(
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kind: str | None = None,
    sample_rate: float = 1.0,
    backend: str | None = None,
    limit: int | None = None,
    *,
    evaluator: LLMEvaluator | None = None,
    task_type: str = "general",
    workers: int | None = None,
    filters: Filters | None = None,
    span_ids: Sequence[str] | None = None,
    progress: bool | Progress | None = False,
) -> SpanEvaluationReport:
    """Score stored spans (finished, with an output) that have no score yet from this evaluator version, storing
    scores linked to each span and its trace; spans it has scored before are skipped, so re-running over the same
    range adds nothing twice. The CLI (``llmobs evaluate --spans``), the dashboard and the scheduler all run this.

    Which spans: ``filters`` (an ``analytics.Filters``: range on the start time, model, user, session, tag,
    source) with ``start``, ``end`` and ``kind`` overriding it (``kind`` defaults to ``generation``), and
    ``span_ids`` to name spans. ``sample_rate`` keeps that share of spans (decided by span id), ``limit`` caps how
    many are scored. ``progress`` is a callable ``(done, total)`` over the spans to consider, True for a line on
    stderr, None for one when stderr is a terminal. A span's metadata may carry ``task_type`` and ``context``.

    >>> evaluate_spans(sample_rate=0.1, limit=500).scored   # doctest: +SKIP
    42
    >>> evaluate_spans(filters=Filters(start=since("24h"), model="gpt-4o"), progress=print)   # doctest: +SKIP
    """
    from llmobs.analytics.filters import resolve

    from .evaluator import LLMEvaluator

    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(f"sample_rate={sample_rate!r} must be between 0 and 1")
    if limit is not None and limit < 0:
        raise ValueError(f"limit={limit!r} must be >= 0")
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type={task_type!r} is not allowed; use one of {', '.join(TASK_TYPES)}")
    if span_ids is not None:
        span_ids = [str(i).strip().lower() for i in span_ids]
    fields = {} if kind is None and filters is not None else {"kind": kind or "generation"}
    selection = resolve(filters, start, end, **fields)
    ev = evaluator or LLMEvaluator(backend)
    try:
        return _evaluate_spans(ev, selection, span_ids, sample_rate, limit, task_type, workers, progress)
    finally:
        if evaluator is None:
            ev.close()


def _evaluate_spans(ev: LLMEvaluator, selection: Filters, span_ids: Sequence[str] | None, sample_rate: float,
                    limit: int | None, task_type: str, workers: int | None,
                    progress: bool | Progress | None) -> SpanEvaluationReport:
    from llmobs import analytics

    from .storage import flush_pending

    version = ev.evaluator_version
    report = SpanEvaluationReport(evaluator_version=version)
    flush_pending()
    coverage = analytics.evaluation_coverage(version, selection, span_ids=span_ids)
    report.already_scored = coverage["scored"]
    # Sampled-out spans count as done too, so with sampling a limit does not bound the spans considered.
    total = coverage["unscored"] if limit is None or sample_rate < 1.0 else min(coverage["unscored"], limit)
    line = _ProgressLine(total, progress)
    after: tuple[dt.datetime, str] | None = None
    while limit is None or report.scored < limit:
        page = analytics.unscored_spans(version, selection, span_ids=span_ids, limit=200, after=after)
        if not page:
            break
        chosen = []
        for span in page:
            if limit is not None and report.scored + len(chosen) >= limit:
                break
            after = (span["start_time"], span["id"])
            report.considered += 1
            if not _sampled(span["id"], sample_rate):
                report.sampled_out += 1
                line.advance()
                continue
            chosen.append(span)
        stored = _map(lambda s: _score_span(ev, s, task_type), chosen, workers or ev.max_workers, line)
        report.scored += sum(1 for n in stored if n is not None)
        report.failed += sum(1 for n in stored if n is None)
        report.rows += sum(n for n in stored if n is not None)
    flush_pending()
    if line.done < line.total:  # fewer spans than counted (sampling, a limit, spans scored meanwhile elsewhere)
        line.advance(line.total - line.done)
    line.close()
    return report


def _score_span(ev: LLMEvaluator, span: Mapping[str, Any], default_task: str) -> int | None:
    """Score one span and queue its rows; the number of rows, or None when it could not be scored."""
    from .storage import store_result

    metadata = span.get("metadata") if isinstance(span.get("metadata"), dict) else {}
    prompt, response, context = span_texts(span.get("input"), span.get("output"), metadata)
    task = metadata.get("task_type") if metadata.get("task_type") in TASK_TYPES else default_task
    try:
        result = ev.evaluate_response(
            span.get("model_name"),
            prompt,
            response if response is not None else "",
            task_type=task,
            context=context,
            span_id=span["id"],
            trace_id=span.get("trace_id"),
            store=False,
        )
    except Exception:  # noqa: BLE001 - one span must not stop the run
        log.warning("llmobs: could not evaluate span %s", span.get("id"), exc_info=True)
        return None
    return len(store_result(result, once=True))


# --- output helpers (CLI) --------------------------------------------------------------------------------------
def nearest_rank_p10(values: Sequence[float]) -> float | None:
    """The 10th percentile as the value at rank ceil(n/10): the definition the SQL summary uses.

    >>> nearest_rank_p10([0.5, 0.1, 0.9, 0.3])
    0.1
    """
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[(len(ordered) + 9) // 10 - 1]


def summary_table(frame: Any, *, backend: str = "", version: str = "") -> str:
    """A plain-text summary of an evaluate_batch DataFrame: counts by status, then mean/p10/min/max per metric."""
    status = frame["status"].value_counts().to_dict() if "status" in frame else {}
    lines = [
        f"{len(frame)} rows{f' (backend {backend}, {version})' if backend else ''}: "
        f"{status.get('evaluated', 0)} evaluated, {status.get('skipped', 0)} skipped (already scored), "
        f"{status.get('error', 0)} failed"
    ]
    skip = {"id", "row_key", "model", "task_type", "span_id", "status", "errors"}
    metrics = [c for c in frame.columns if c not in skip]
    if metrics:
        lines.append(f"{'metric':<18}{'mean':>8}{'p10':>8}{'min':>8}{'max':>8}{'n':>7}")
    for name in metrics:
        values = [float(v) for v in frame[name].tolist() if v is not None and v == v]
        if not values:
            lines.append(f"{name:<18}{'-':>8}{'-':>8}{'-':>8}{'-':>8}{0:>7}")
            continue
        p10 = nearest_rank_p10(values)
        lines.append(
            f"{name:<18}{sum(values) / len(values):>8.3f}{p10:>8.3f}{min(values):>8.3f}{max(values):>8.3f}"
            f"{len(values):>7}"
        )
    errors = frame[frame["errors"].astype(bool)] if "errors" in frame else frame.iloc[0:0]
    for _, row in errors.head(5).iterrows():
        lines.append(f"  row {row.get('id') or row.get('row_key')}: {str(row['errors'])[:200]}")
    return "\n".join(lines)


def write_frame(frame: Any, path: str | Path) -> None:
    """Write results as CSV (.csv) or JSON lines (.jsonl/.ndjson), chosen by the file's extension."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(target, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(target, orient="records", lines=True, force_ascii=False)
    else:
        raise ValueError(f"--out {target}: unsupported extension {suffix!r}; use .csv or .jsonl")
