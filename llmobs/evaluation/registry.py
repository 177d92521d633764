"""Custom metrics: the ``Evaluator`` protocol, the ``@evaluator`` decorator and the process-wide registry.

A custom evaluator runs after the built-in metrics of a response, in the same paths as they do: single
``evaluate_response`` calls, ``evaluate_batch``, ``evaluate_spans`` and storage in the ``evaluations`` table
(``source="custom"``). Whatever it returns is checked: a raise, a non-number, NaN or a value outside [0, 1]
becomes an entry in the result's ``errors`` and the other metrics still come back.

>>> @evaluator("mentions_source", task_types=("qa",))
... def mentions_source(response: str) -> float:
...     return 1.0 if "according to" in response.lower() else 0.0
>>> unregister("mentions_source")
"""

from __future__ import annotations

import inspect
import math
import numbers
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .heuristic import CORE_METRICS, TASK_METRICS, MetricScore

__all__ = [
    "Evaluator",
    "FunctionEvaluator",
    "Sample",
    "evaluator",
    "register",
    "unregister",
    "registered_evaluators",
    "run_custom",
    "legacy_evaluator",
    "BUILTIN_METRICS",
]

# Metric names a custom evaluator may not reuse: they belong to the built-in tiers.
BUILTIN_METRICS = frozenset((*CORE_METRICS, *(m for task in TASK_METRICS.values() for m in task)))
ALL_TASKS = "*"
# Parameters a decorated function may declare; each is filled in by name.
INJECTABLE = (
    "prompt",
    "response",
    "task_type",
    "expected_response",
    "context",
    "model_name",
    "scores",
    "custom_metrics",
    "sample",
)


@dataclass(frozen=True)
class Sample:
    """What a custom evaluator sees: the evaluated texts and the metric values computed so far."""

    prompt: str
    response: str
    task_type: str = "general"
    expected_response: str | None = None
    context: str | None = None
    model_name: str | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """A custom metric source: a name, a version (stored as ``evaluator_version``), the task types it runs for
    (``"*"`` for all) and ``evaluate``, which returns a value, a MetricScore, or a mapping of metric -> value.

    >>> class Length:
    ...     name, version, task_types = "length", "1", ("*",)
    ...     def evaluate(self, sample: Sample) -> dict[str, float]:
    ...         return {"short_enough": 1.0 if len(sample.response) < 500 else 0.0}
    >>> isinstance(Length(), Evaluator)
    True
    """

    name: str
    version: str
    task_types: tuple[str, ...]

    def evaluate(self, sample: Sample) -> Any:
        """Score one sample."""


class FunctionEvaluator:
    """An Evaluator made from a plain function; its parameters are filled in by name from the sample.

    Parameter names understood: prompt, response, task_type, expected_response, context, model_name,
    scores / custom_metrics (metric values so far) and sample (the whole Sample).
    """

    def __init__(
        self, fn: Callable[..., Any], name: str, version: str = "1", task_types: Iterable[str] = (ALL_TASKS,)
    ) -> None:
        self.fn = fn
        self.name = _check_name(name)
        self.version = str(version)
        self.task_types = tuple(task_types) or (ALL_TASKS,)
        self._params = _injected_params(fn)

    def evaluate(self, sample: Sample) -> Any:
        """Call the function with the parameters it declares."""
        values = {
            "prompt": sample.prompt,
            "response": sample.response,
            "task_type": sample.task_type,
            "expected_response": sample.expected_response,
            "context": sample.context,
            "model_name": sample.model_name,
            "scores": dict(sample.scores),
            "custom_metrics": dict(sample.scores),
            "sample": sample,
        }
        return self.fn(**{p: values[p] for p in self._params})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Still callable as the original function."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionEvaluator({self.name!r}, version={self.version!r}, task_types={self.task_types!r})"


class _LegacyEvaluator:
    """Adapter for the seed API ``add_custom_evaluator(task_type, fn)``: ``fn(response, prompt, custom_metrics)``."""

    def __init__(self, fn: Callable[[str, str, dict[str, Any]], Any], task_type: str) -> None:
        self.fn = fn
        raw = getattr(fn, "__name__", "custom")
        self.name = _check_name("custom" if raw == "<lambda>" else raw)
        self.version = "1"
        self.task_types = (task_type,)

    def evaluate(self, sample: Sample) -> Any:
        """Call ``fn(response, prompt, custom_metrics)`` positionally, as the seed did."""
        return self.fn(sample.response, sample.prompt, dict(sample.scores))


def legacy_evaluator(task_type: str, fn: Callable[[str, str, dict[str, Any]], Any]) -> Evaluator:
    """Wrap a seed-style ``fn(response, prompt, custom_metrics) -> {metric: value}`` as an Evaluator."""
    if not callable(fn):
        raise TypeError(f"add_custom_evaluator: {fn!r} is not callable")
    if not isinstance(task_type, str) or not task_type:
        raise ValueError(f"add_custom_evaluator: task_type={task_type!r} must be a task type or '*'")
    return _LegacyEvaluator(fn, task_type)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValueError(f"evaluator name {name!r} must be a non-empty string of at most 100 characters")
    return name.strip()


def _injected_params(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The sample fields ``fn`` asks for, decided once; unknown required parameters are an error now."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ("response",)
    wanted = []
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in INJECTABLE:
            wanted.append(p.name)
        elif p.default is p.empty:
            raise TypeError(
                f"evaluator {getattr(fn, '__name__', fn)!r}: parameter {p.name!r} cannot be filled; "
                f"use any of {', '.join(INJECTABLE)}"
            )
    return tuple(wanted)


_registry: dict[str, Evaluator] = {}
_lock = threading.Lock()


def register(ev: Evaluator) -> Evaluator:
    """Add ``ev`` to the evaluators every LLMEvaluator runs (replacing one of the same name)."""
    if not isinstance(ev, Evaluator):
        raise TypeError(f"{ev!r} does not implement the Evaluator protocol (name, version, task_types, evaluate)")
    with _lock:
        _registry[ev.name] = ev
    return ev


def unregister(name: str) -> None:
    """Remove a registered evaluator (no error when absent)."""
    with _lock:
        _registry.pop(name, None)


def registered_evaluators(task_type: str | None = None) -> list[Evaluator]:
    """Registered evaluators, optionally only those that run for ``task_type``."""
    with _lock:
        found = list(_registry.values())
    if task_type is None:
        return found
    return [e for e in found if ALL_TASKS in e.task_types or task_type in e.task_types]


def evaluator(
    name: str | Callable[..., Any] | None = None,
    *,
    version: str = "1",
    task_types: Iterable[str] = (ALL_TASKS,),
    registered: bool = True,
) -> Any:
    """Decorator turning a function into a custom Evaluator, registered unless ``registered=False``.

    The function returns a float in [0, 1] (stored under the evaluator's name), a MetricScore, or a mapping
    of metric name -> float / MetricScore / (value, explanation).

    >>> @evaluator(task_types=("summarization",))
    ... def brevity(response: str, context: str | None) -> float:
    ...     return 1.0 if context and len(response) < len(context) / 3 else 0.5
    >>> brevity.name, brevity.task_types
    ('brevity', ('summarization',))
    >>> unregister("brevity")
    """

    def wrap(fn: Callable[..., Any]) -> FunctionEvaluator:
        ev = FunctionEvaluator(fn, name if isinstance(name, str) else fn.__name__, version, task_types)
        if registered:
            register(ev)
        return ev

    if callable(name):
        return wrap(name)
    return wrap


def _checked_value(metric: str, value: Any) -> tuple[float | None, str | None]:
    """(value, None) when ``value`` is a number in [0, 1]; (None, reason) otherwise."""
    if isinstance(value, bool):
        return float(value), None
    if not isinstance(value, numbers.Real):
        return None, f"returned {type(value).__name__} {str(value)[:60]!r} for {metric!r}; expected a number in [0, 1]"
    number = float(value)
    if math.isnan(number):
        return None, f"returned NaN for {metric!r}; expected a number in [0, 1]"
    if not 0.0 <= number <= 1.0:
        return None, f"returned {number!r} for {metric!r}, outside [0, 1]"
    return number, None


def _normalise(ev: Evaluator, raw: Any) -> tuple[dict[str, MetricScore], dict[str, str]]:
    """Turn what an evaluator returned into MetricScores, collecting every bad value as an error."""
    if isinstance(raw, MetricScore) or isinstance(raw, numbers.Real) and not isinstance(raw, Mapping):
        raw = {raw.name if isinstance(raw, MetricScore) else ev.name: raw}
    if not isinstance(raw, Mapping):
        return {}, {
            f"custom:{ev.name}": f"returned {type(raw).__name__}; expected a number, a MetricScore or a "
            "mapping of metric -> number"
        }
    scores: dict[str, MetricScore] = {}
    errors: dict[str, str] = {}
    for key, item in raw.items():
        metric = str(key)
        where = f"custom:{ev.name}:{metric}"
        if metric in BUILTIN_METRICS:
            errors[where] = f"metric name {metric!r} is a built-in metric; choose another name"
            continue
        explanation = f"custom evaluator {ev.name} (version {ev.version})"
        label = None
        if isinstance(item, MetricScore):
            value, explanation, label = item.value, item.explanation or explanation, item.label
        elif isinstance(item, tuple) and len(item) == 2:
            value, explanation = item[0], str(item[1])
        else:
            value = item
        checked, problem = _checked_value(metric, value)
        if problem is not None:
            errors[where] = problem
            continue
        scores[metric] = MetricScore(
            metric, checked, explanation, label=label, details={"evaluator": ev.name, "evaluator_version": ev.version}
        )
    return scores, errors


def run_custom(
    evaluators: Iterable[Evaluator], sample: Sample
) -> tuple[dict[str, MetricScore], dict[str, str], dict[str, Evaluator]]:
    """Run each evaluator on ``sample``; returns (scores, errors, metric -> evaluator that produced it).

    Each evaluator sees the built-in values plus those of the evaluators before it; one failing never stops
    the others.
    """
    scores: dict[str, MetricScore] = {}
    errors: dict[str, str] = {}
    owners: dict[str, Evaluator] = {}
    values = dict(sample.scores)
    for ev in evaluators:
        try:
            raw = ev.evaluate(
                Sample(
                    sample.prompt,
                    sample.response,
                    sample.task_type,
                    sample.expected_response,
                    sample.context,
                    sample.model_name,
                    dict(values),
                )
            )
        except Exception as exc:  # noqa: BLE001 - a user's evaluator must not break the others
            _add_error(errors, f"custom:{ev.name}", f"raised {type(exc).__name__}: {str(exc)[:300]}")
            continue
        got, problems = _normalise(ev, raw)
        for where, problem in problems.items():
            _add_error(errors, where, problem)
        for metric, ms in got.items():
            scores[metric] = ms
            owners[metric] = ev
            values[metric] = ms.value
    return scores, errors, owners


def _add_error(errors: dict[str, str], where: str, problem: str) -> None:
    """Record a problem; two evaluators sharing a name (e.g. lambdas) keep both messages."""
    errors[where] = f"{errors[where]}; {problem}" if where in errors else problem
