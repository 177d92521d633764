"""``LLMEvaluator``: one API over three backends (heuristic, embedding, llm_judge) with one result shape.

The heuristic tier always runs (it is cheap and offline); the embedding and judge tiers replace the metrics they
compute, and every metric they do not compute (or fail on) keeps its heuristic value, flagged as a fallback in
``result.fallbacks`` and in its explanation. Quality is then recombined with the heuristic module's weights
(:data:`~llmobs.evaluation.heuristic.QUALITY_WEIGHTS`, :data:`~llmobs.evaluation.heuristic.QUALITY_PENALTIES`).
Custom evaluators (``add_custom_evaluator``, ``@evaluator``) run last; their failures land in ``result.errors``.

>>> ev = LLMEvaluator()
>>> r = ev.evaluate_response(model_name="gpt-4", prompt="What is the capital of France?",
...                          response="The capital of France is Paris.", task_type="qa")
>>> 0.0 <= r.quality_score <= 1.0, r.accuracy_score is None
(True, True)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import heuristic
from .heuristic import CORE_METRICS, TASK_METRICS, TASK_TYPES, MetricScore, score_response
from .registry import Evaluator, Sample, legacy_evaluator, registered_evaluators, run_custom

log = logging.getLogger("llmobs")

__all__ = ["LLMEvaluator", "EvaluationResult", "BACKENDS", "CORE_METRICS", "available_backends", "combine_quality"]

BACKENDS = ("heuristic", "embedding", "llm_judge")
HEURISTIC_VERSION = "heuristic-1"


class Backend(Protocol):
    """What LLMEvaluator needs from a scoring tier."""

    name: str
    version: str

    def score(
        self,
        prompt: str,
        response: str,
        *,
        task_type: str,
        expected_response: str | None,
        context: str | None,
        heuristic: Mapping[str, MetricScore] | None,
    ) -> tuple[dict[str, MetricScore], dict[str, str]]:
        """The metrics this tier computes and errors by metric."""


class HeuristicBackend:
    """The default tier: everything comes from :func:`score_response`, nothing is added here."""

    name = "heuristic"
    version = HEURISTIC_VERSION

    def score(self, prompt: str, response: str, **_: Any) -> tuple[dict[str, MetricScore], dict[str, str]]:
        """Nothing beyond the heuristic scores the evaluator already has."""
        return {}, {}


@dataclass
class EvaluationResult:
    """All scores of one response: values in [0, 1] (or None when a metric does not apply), explanations, labels,
    where each value came from, and errors. Toxicity, bias and hallucination are *higher is worse*."""

    model_name: str | None
    task_type: str
    backend: str
    evaluator_version: str
    quality_score: float | None
    relevance_score: float | None
    coherence_score: float | None
    accuracy_score: float | None
    toxicity_score: float | None
    bias_score: float | None
    hallucination_score: float | None
    task_scores: dict[str, float | None] = field(default_factory=dict)
    custom_metrics: dict[str, float] = field(default_factory=dict)
    explanations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    span_id: str | None = None
    trace_id: str | None = None
    duration_ms: float = 0.0
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    metrics: dict[str, MetricScore] = field(default_factory=dict, repr=False)

    def metric_scores(self) -> dict[str, MetricScore]:
        """Every metric (core, task, custom) as a MetricScore, in a stable order."""
        return dict(self.metrics)

    def scores(self) -> dict[str, float | None]:
        """Every metric's value by name.

        >>> LLMEvaluator().evaluate_response(None, "Hi?", "Hello!").scores()["toxicity"]
        0.0
        """
        return {name: ms.value for name, ms in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the result (scores flattened, plus explanations, sources and errors)."""
        return {
            "model_name": self.model_name,
            "task_type": self.task_type,
            "backend": self.backend,
            "evaluator_version": self.evaluator_version,
            "span_id": self.span_id,
            "trace_id": self.trace_id,
            "scores": self.scores(),
            "explanations": dict(self.explanations),
            "labels": dict(self.labels),
            "sources": dict(self.sources),
            "fallbacks": dict(self.fallbacks),
            "errors": dict(self.errors),
            "duration_ms": self.duration_ms,
            "created_at": self.created_at.isoformat(),
        }


def combine_quality(task_type: str, scores: Mapping[str, MetricScore], backend: str) -> MetricScore:
    """Quality from the heuristic module's weighting (one formula for every backend), naming the backend."""
    result = heuristic.combine_quality(task_type, scores)
    if result.value is None:
        return result
    return dataclasses.replace(result, explanation=f"{backend} scores, {result.explanation}")


def _text(name: str, value: Any) -> str:
    """Validate one text argument: None is a ValueError, bytes are decoded, other objects converted."""
    if value is None:
        raise ValueError(f"{name} must be a string, got None")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def available_backends() -> list[str]:
    """The backends that can run here, default first: heuristic always; embedding when its extra is installed;
    llm_judge when a judge is configured (``evaluation.judge.base_url`` or an API key in
    ``evaluation.judge.api_key`` / ``$OPENAI_API_KEY``). The dashboard offers these.

    >>> available_backends()[0]
    'heuristic'
    """
    import os

    from llmobs._state import settings

    from .embedding import require_embedding_extra

    found = ["heuristic"]
    try:
        require_embedding_extra()
        found.append("embedding")
    except ImportError:
        pass
    conf = settings()
    if conf.get("evaluation.judge.base_url") or conf.get("evaluation.judge.api_key") or os.environ.get(
        "OPENAI_API_KEY"
    ):
        found.append("llm_judge")
    return found


def make_backend(name: str, **options: Any) -> Backend:
    """Build a backend by name; unknown names are a ValueError listing the allowed ones."""
    if name == "heuristic":
        return HeuristicBackend()
    if name == "embedding":
        from .embedding import EmbeddingBackend

        return EmbeddingBackend(
            **{
                k: v
                for k, v in options.items()
                if k in ("model_path", "tokenizer_path", "grounding_threshold", "encoder")
            }
        )
    if name == "llm_judge":
        from .llm_judge import JudgeBackend

        return JudgeBackend(
            **{
                k: v
                for k, v in options.items()
                if k
                in (
                    "base_url",
                    "api_key",
                    "model",
                    "timeout",
                    "max_concurrency",
                    "max_retries",
                    "backoff_base",
                    "backoff_max",
                    "max_retry_after",
                    "cache_size",
                    "metrics",
                    "json_mode",
                )
            }
        )
    raise ValueError(f"backend={name!r} is not allowed; use one of {', '.join(BACKENDS)}")


class LLMEvaluator:
    """Scores LLM responses (relevance, coherence, accuracy, toxicity, bias, hallucination, task metrics, quality)
    and stores the scores in the ``evaluations`` table.

    ``backend``: "heuristic" (default from ``evaluation.backend``), "embedding" or "llm_judge". ``store``: None
    stores a result when it is linked to a span or trace, True always, False never. Judge options: ``judge_base_url``,
    ``judge_api_key``, ``judge_model``, ``judge_timeout``, ``max_concurrency``, ``judge_metrics``, ``max_retries``,
    ``backoff_base``, ``cache_size``. Embedding options: ``model_path``, ``tokenizer_path``, ``grounding_threshold``.

    >>> ev = LLMEvaluator()
    >>> ev.add_custom_evaluator("custom_task", lambda response, prompt, custom_metrics: {"my_metric": 0.75})
    """

    def __init__(
        self,
        backend: str | None = None,
        *,
        store: bool | None = None,
        judge_base_url: str | None = None,
        judge_api_key: str | None = None,
        judge_model: str | None = None,
        judge_timeout: float | None = None,
        max_concurrency: int | None = None,
        judge_metrics: Sequence[str] | None = None,
        use_registry: bool = True,
        **backend_options: Any,
    ) -> None:
        if backend is None:
            from llmobs._state import settings

            backend = settings().get("evaluation.backend")
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not allowed; use one of {', '.join(BACKENDS)}")
        if store is not None and not isinstance(store, bool):
            raise ValueError(f"store={store!r} must be True, False or None (store when linked to a span)")
        options = dict(backend_options)
        options.update(
            {
                k: v
                for k, v in (
                    ("base_url", judge_base_url),
                    ("api_key", judge_api_key),
                    ("model", judge_model),
                    ("timeout", judge_timeout),
                    ("max_concurrency", max_concurrency),
                    ("metrics", judge_metrics),
                )
                if v is not None
            }
        )
        self.backend: Backend = make_backend(backend, **options)
        self.store = store
        self.use_registry = use_registry
        self._custom: list[Evaluator] = []

    def __repr__(self) -> str:
        return f"LLMEvaluator(backend={self.backend_name!r}, version={self.evaluator_version!r})"

    def close(self) -> None:
        """Release the backend's worker threads (the judge's); the evaluator stays usable and restarts them."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> LLMEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def backend_name(self) -> str:
        """heuristic, embedding or llm_judge (also the ``source`` of the rows it stores)."""
        return self.backend.name

    @property
    def evaluator_version(self) -> str:
        """Stored with every built-in score, e.g. ``heuristic-1``; resume and online evaluation key on it."""
        return self.backend.version

    @property
    def max_workers(self) -> int:
        """Default parallelism for batches: the judge's concurrency limit, else 1 (the CPU tiers gain nothing)."""
        return int(getattr(self.backend, "max_concurrency", 1) or 1)

    # --- custom metrics ----------------------------------------------------------------------------------------
    def add_custom_evaluator(self, task_type: str, evaluator_fn: Callable[[str, str, dict[str, Any]], Any]) -> None:
        """Run ``evaluator_fn(response, prompt, custom_metrics) -> {metric: value}`` for ``task_type`` ("*": all).

        ``custom_metrics`` holds the metric values computed so far (built-in and earlier custom ones).
        """
        self._custom.append(legacy_evaluator(task_type, evaluator_fn))

    def add_evaluator(self, ev: Evaluator) -> None:
        """Run an :class:`~llmobs.evaluation.registry.Evaluator` with this evaluator only (not registered)."""
        if not isinstance(ev, Evaluator):
            raise TypeError(f"{ev!r} does not implement the Evaluator protocol (name, version, task_types, evaluate)")
        self._custom.append(ev)

    def custom_evaluators(self, task_type: str) -> list[Evaluator]:
        """The custom evaluators that run for ``task_type``: registered ones, then this instance's."""
        own = [e for e in self._custom if "*" in e.task_types or task_type in e.task_types]
        found = registered_evaluators(task_type) if self.use_registry else []
        return [*found, *[e for e in own if e not in found]]

    # --- evaluation ----------------------------------------------------------------------------------------------
    def evaluate_response(
        self,
        model_name: str | None,
        prompt: str,
        response: str,
        task_type: str = "general",
        expected_response: str | None = None,
        context: str | None = None,
        span_id: str | None = None,
        trace_id: str | None = None,
        *,
        store: bool | None = None,
    ) -> EvaluationResult:
        """Score one response. ``span_id``/``trace_id`` link the stored scores to what they judge; ``store``
        overrides the evaluator's setting for this call. None as prompt or response is a ValueError.

        >>> r = LLMEvaluator().evaluate_response("gpt-4", "Explain quantum computing to a 10-year-old",
        ...                                      "Quantum computers use qubits, which can be 0 and 1 at once.")
        >>> sorted(r.explanations)[:3]
        ['accuracy', 'bias', 'coherence']
        """
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type={task_type!r} is not allowed; use one of {', '.join(TASK_TYPES)}")
        prompt_s, response_s = _text("prompt", prompt), _text("response", response)
        expected_s, context_s = (
            _optional_text("expected_response", expected_response),
            _optional_text("context", context),
        )
        span_id, trace_id = _id_text("span_id", span_id, 16), _id_text("trace_id", trace_id, 32)
        started = time.perf_counter()
        metrics, sources, fallbacks, errors = self._builtin(prompt_s, response_s, task_type, expected_s, context_s)
        versions = {m: self.evaluator_version for m in metrics}
        values = {m: ms.value for m, ms in metrics.items()}
        custom, custom_errors, owners = run_custom(
            self.custom_evaluators(task_type),
            Sample(prompt_s, response_s, task_type, expected_s, context_s, model_name, values),
        )
        errors.update(custom_errors)
        for metric, ms in custom.items():
            metrics[metric] = ms
            sources[metric] = "custom"
            versions[metric] = f"{owners[metric].name}-{owners[metric].version}"[:64]
        result = self._result(model_name, task_type, metrics, sources, versions, fallbacks, errors, span_id, trace_id)
        result.duration_ms = (time.perf_counter() - started) * 1000
        if self._should_store(store, span_id, trace_id):
            from .storage import store_result

            store_result(result)
        return result

    def score(
        self,
        prompt: str,
        response: str,
        *,
        task_type: str = "general",
        expected_response: str | None = None,
        context: str | None = None,
    ) -> dict[str, MetricScore]:
        """Built-in metrics of this backend as MetricScores: the same signature and shape as ``score_response``,
        so benchmarks can compare backends. Nothing is stored and custom evaluators do not run."""
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type={task_type!r} is not allowed; use one of {', '.join(TASK_TYPES)}")
        metrics, *_ = self._builtin(
            _text("prompt", prompt),
            _text("response", response),
            task_type,
            _optional_text("expected_response", expected_response),
            _optional_text("context", context),
        )
        return metrics

    def _builtin(
        self,
        prompt: str,
        response: str,
        task_type: str,
        expected: str | None,
        context: str | None,
    ) -> tuple[dict[str, MetricScore], dict[str, str], dict[str, bool], dict[str, str]]:
        """Heuristic scores overlaid with the backend's, quality recombined; (metrics, sources, fallbacks, errors)."""
        errors: dict[str, str] = {}
        try:
            heuristic = score_response(
                prompt, response, task_type=task_type, expected_response=expected, context=context
            )
        except Exception as exc:  # noqa: BLE001 - a scorer bug must not crash the caller
            log.exception("llmobs: heuristic scoring failed")
            errors["heuristic"] = f"{type(exc).__name__}: {exc}"
            heuristic = {
                m: MetricScore(m, None, "heuristic scoring failed; see errors")
                for m in (*CORE_METRICS, *TASK_METRICS[task_type])
            }
        name = self.backend_name
        if name == "heuristic":
            return heuristic, {m: "heuristic" for m in heuristic}, {}, errors
        try:
            extra, backend_errors = self.backend.score(
                prompt, response, task_type=task_type, expected_response=expected, context=context, heuristic=heuristic
            )
        except Exception as exc:  # noqa: BLE001 - the heuristic scores still stand
            log.warning("llmobs: %s backend failed; heuristic scores used", name, exc_info=True)
            extra, backend_errors = {}, {name: f"{type(exc).__name__}: {str(exc)[:300]}; heuristic scores used"}
        errors.update(backend_errors)
        merged: dict[str, MetricScore] = {}
        sources: dict[str, str] = {}
        fallbacks: dict[str, bool] = {}
        for metric, ms in heuristic.items():
            if metric == "quality":
                continue
            if metric in extra:
                merged[metric], sources[metric] = extra[metric], name
                continue
            why = "after a judge error" if metric in backend_errors else f"the {name} tier does not compute it"
            if ms.value is None and metric not in backend_errors:
                merged[metric] = ms
            else:
                merged[metric] = MetricScore(
                    metric,
                    ms.value,
                    f"heuristic fallback ({why}): {ms.explanation}",
                    label=ms.label,
                    details={**ms.details, "fallback": True},
                )
                fallbacks[metric] = True
            sources[metric] = "heuristic"
        quality = combine_quality(task_type, merged, name)
        sources["quality"] = name
        return {"quality": quality, **merged}, sources, fallbacks, errors

    def _result(
        self,
        model_name: str | None,
        task_type: str,
        metrics: dict[str, MetricScore],
        sources: dict[str, str],
        versions: dict[str, str],
        fallbacks: dict[str, bool],
        errors: dict[str, str],
        span_id: str | None,
        trace_id: str | None,
    ) -> EvaluationResult:
        value = {m: ms.value for m, ms in metrics.items()}
        task = {m: value.get(m) for m in TASK_METRICS[task_type]}
        custom = {m: ms.value for m, ms in metrics.items() if sources.get(m) == "custom"}
        return EvaluationResult(
            model_name=model_name,
            task_type=task_type,
            backend=self.backend_name,
            evaluator_version=self.evaluator_version,
            quality_score=value.get("quality"),
            relevance_score=value.get("relevance"),
            coherence_score=value.get("coherence"),
            accuracy_score=value.get("accuracy"),
            toxicity_score=value.get("toxicity"),
            bias_score=value.get("bias"),
            hallucination_score=value.get("hallucination"),
            task_scores=task,
            custom_metrics=custom,  # type: ignore[arg-type]
            explanations={m: ms.explanation for m, ms in metrics.items()},
            labels={m: ms.label for m, ms in metrics.items()},
            sources=sources,
            versions=versions,
            fallbacks=fallbacks,
            errors=errors,
            span_id=span_id,
            trace_id=trace_id,
            metrics=metrics,
        )

    def _should_store(self, store: bool | None, span_id: str | None, trace_id: str | None) -> bool:
        if store is not None:
            return store
        if self.store is not None:
            return self.store
        return span_id is not None or trace_id is not None

    # --- batch, online, summary ----------------------------------------------------------------------------------
    def evaluate_batch(
        self,
        rows: Any,
        resume: bool = False,
        workers: int | None = None,
        progress: bool | Callable[[int, int], None] | None = None,
        *,
        task_type: str | None = None,
        store: bool | None = None,
    ) -> Any:
        """Score many responses (list of dicts, DataFrame, or a CSV/JSONL path) into a pandas DataFrame.

        See :func:`llmobs.evaluation.batch.evaluate_batch`.
        """
        from .batch import evaluate_batch

        return evaluate_batch(
            self, rows, resume=resume, workers=workers, progress=progress, task_type=task_type, store=store
        )

    def evaluate_spans(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        kind: str = "generation",
        sample_rate: float = 1.0,
        limit: int | None = None,
        *,
        task_type: str = "general",
        **options: Any,
    ) -> Any:
        """Score stored spans that this evaluator has not scored yet (``options``: filters, span_ids, progress,
        workers); see :func:`llmobs.evaluation.batch.evaluate_spans`."""
        from .batch import evaluate_spans

        return evaluate_spans(
            start=start, end=end, kind=kind, sample_rate=sample_rate, limit=limit, evaluator=self, task_type=task_type,
            **options,
        )

    def get_evaluation_summary(
        self,
        model_name: str | None = None,
        task_type: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        metric: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Averages and p10 of stored scores (all sources unless ``source=``); see
        :func:`llmobs.evaluation.storage.get_evaluation_summary`."""
        from .storage import get_evaluation_summary

        return get_evaluation_summary(
            model_name=model_name, task_type=task_type, start=start, end=end, metric=metric, **options
        )


def _id_text(name: str, value: Any, length: int) -> str | None:
    """Span/trace ids as stored (lower-case hex); a malformed one is a ValueError now rather than a lost row."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{name}={value!r} is not a {length}-character hex id")
    return text
