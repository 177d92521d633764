"""Score LLM responses offline with llmobs.evaluation and store the scores next to the traced calls.

Run: python examples/evaluate_responses.py
Scores land in $LLMOBS_DATABASE_URL (default: sqlite:///data/llmobs.db), in the `evaluations` table, linked to the
generation spans they judge. No network, no model download: the default heuristic backend is pure Python.
"""

from __future__ import annotations

import llmobs
from llmobs.evaluation import LLMEvaluator, evaluate_spans, evaluator, unregister

CANNED = {  # stands in for an LLM so that the example runs anywhere
    "What is the capital of Australia?": "The capital of Australia is Canberra, not Sydney.",
    "Explain photosynthesis to a 10-year-old.": ("Plants are like tiny chefs. They take sunlight, water and air, "
                                                 "and cook them into sugar for food. The leftover is the oxygen "
                                                 "we breathe."),
    "Summarise: The council approved the new cycle lane on Tuesday after a two-year consultation.":
        "The council approved the cycle lane on Friday after a ten-year consultation.",
}


@llmobs.observe(kind="generation")
def ask(question: str) -> str:
    """A traced 'LLM call'."""
    llmobs.update_current_span(model_name="demo-model", provider="canned")
    return CANNED[question]


@evaluator("mentions_no_sydney", task_types=("qa",))
def mentions_no_sydney(response: str) -> float:
    """A custom metric: runs with the built-in ones and is stored with source='custom'."""
    return 0.0 if "Sydney" in response and "not Sydney" not in response else 1.0


def show(title: str, result: object) -> None:
    """Print every score of a result with its explanation."""
    print(f"\n== {title}")
    for name, value in result.scores().items():  # type: ignore[attr-defined]
        shown = "  n/a" if value is None else f"{value:5.2f}"
        print(f"  {name:<22}{shown}  {result.explanations[name][:90]}")  # type: ignore[attr-defined]


def main() -> None:
    """Trace three calls, score them directly and online, and print a summary from the database."""
    ev = LLMEvaluator()  # backend="heuristic"; "embedding" needs pip install 'llmobs[embed]', "llm_judge" an endpoint
    with llmobs.span("qa request") as request:
        answer = ask("What is the capital of Australia?")
        result = ev.evaluate_response(model_name="demo-model", prompt="What is the capital of Australia?",
                                      response=answer, task_type="qa", expected_response="Canberra",
                                      trace_id=request.trace_id)
    show("qa, scored directly and linked to its trace", result)

    source = "The council approved the new cycle lane on Tuesday after a two-year consultation."
    summary = ev.evaluate_response("demo-model", "Summarise the text.", CANNED[f"Summarise: {source}"],
                                   task_type="summarization", context=source, store=False)
    show("summarization with a changed day and number (hallucination is higher-is-worse)", summary)

    for question in list(CANNED)[1:]:
        ask(question)
    llmobs.flush()
    report = evaluate_spans(task_type="general")  # what the scheduler runs: scores spans not yet scored
    print(f"\nonline evaluation: {report.scored} stored generation spans scored ({report.evaluator_version})")

    totals = ev.get_evaluation_summary(model_name="demo-model")
    print(f"summary for demo-model: {totals['count']} scored responses, "
          f"average quality {totals['average_quality']:.2f}, "
          f"p10 quality {totals['metrics']['quality']['p10']:.2f}")
    print(f"stored in {llmobs.get_settings().database_url}")
    unregister("mentions_no_sydney")
    llmobs.shutdown()


if __name__ == "__main__":
    main()
