"""Evaluation of LLM responses: heuristic (offline, default), embedding and LLM-judge backends behind one API.

>>> from llmobs.evaluation import LLMEvaluator
>>> result = LLMEvaluator().evaluate_response(model_name="gpt-4", prompt="What is 2 + 2?", response="2 + 2 is 4.",
...                                           task_type="qa")
>>> 0.0 <= result.quality_score <= 1.0
True
"""

from .batch import SpanEvaluationReport, evaluate_spans
from .evaluator import EvaluationResult, LLMEvaluator
from .heuristic import MetricScore, score_response
from .registry import Evaluator, Sample, evaluator, register, registered_evaluators, unregister
from .storage import get_evaluation_summary

__all__ = [
    "EvaluationResult",
    "Evaluator",
    "LLMEvaluator",
    "MetricScore",
    "Sample",
    "SpanEvaluationReport",
    "evaluate_spans",
    "evaluator",
    "get_evaluation_summary",
    "register",
    "registered_evaluators",
    "score_response",
    "unregister",
]
