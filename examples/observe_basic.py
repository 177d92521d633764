"""The core ``@observe`` example from the README, runnable as it is: a nested retrieve/generate call tree.

    pip install llmobs
    python examples/observe_basic.py

Spans go to the configured database (``LLMOBS_DATABASE_URL``, default ``sqlite:///data/llmobs.db``); the script
then reads the trace back and prints it as a tree with tokens, cost and the trace's user/session/tags.
"""

from __future__ import annotations


import llmobs
from _recorded import print_recorded  # examples/_recorded.py

TRACE_IDS: list[str | None] = []


@llmobs.observe(kind="retriever")
def retrieve(question: str) -> list[str]:
    """Find the documents for a question (a stand-in for a vector search)."""
    return ["doc-1", "doc-2"]


@llmobs.observe(kind="generation")
def generate(question: str, docs: list[str]) -> str:
    """Answer from the documents; a real app would call its LLM here and report what the provider returned."""
    llmobs.update_current_span(model_name="gpt-4o-mini", provider="openai", prompt_tokens=120, completion_tokens=40)
    return "Machine learning is ..."          # cost is filled in from the price table


@llmobs.observe
def answer(question: str) -> str:
    """The request handler: one trace with the user, session and tags of this request."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    llmobs.update_current_trace(user_id="u-42", session_id="s-1", tags=["prod"], metadata={"team": "search"})
    return generate(question, retrieve(question))


def main() -> None:
    """Run the example and print what was stored."""
    print("answer:", answer("What is machine learning?"))
    print_recorded(TRACE_IDS)


if __name__ == "__main__":
    main()
