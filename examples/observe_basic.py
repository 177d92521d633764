"""The core ``@observe`` example from the README, runnable as it is: a nested retrieve/generate call tree.

    pip install llmobs
    python examples/observe_basic.py

Spans go to the configured database (``LLMOBS_DATABASE_URL``, default ``sqlite:///data/llmobs.db``); the script
then reads the trace back and prints it as a tree with tokens, cost and the trace's user/session/tags.
"""

from __future__ import annotations

from sqlmodel import Session, select

import llmobs
from llmobs.store.db import ensure_schema, get_engine
from llmobs.store.models import Span, Trace

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


def print_trace(session: Session, trace_id: str) -> None:
    """Print one trace: its attributes, then its spans as an indented tree."""
    trace = session.get(Trace, trace_id)
    if trace is not None:
        print(f"trace {trace_id}: user={trace.user_id} session={trace.session_id} tags={trace.tags} "
              f"spans={trace.span_count} tokens={trace.total_tokens} cost_usd={trace.cost_usd}")
    rows = session.exec(select(Span).where(Span.trace_id == trace_id).order_by(Span.start_time)).all()  # type: ignore[arg-type]
    children: dict[str | None, list[Span]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)

    def show(row: Span, depth: int) -> None:
        model = f" model={row.model_name}" if row.model_name else ""
        tokens = f" tokens={row.prompt_tokens}/{row.completion_tokens}" if row.prompt_tokens is not None else ""
        cost = f" cost_usd={row.cost_usd:.6f}" if row.cost_usd is not None else ""
        print(f"{'  ' * depth}- {row.name} [{row.kind}] {row.duration_ms:.2f} ms{model}{tokens}{cost} {row.status}"
              f" output={row.output}")
        for child in children.get(row.id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


def main() -> None:
    """Run the example and print what was stored."""
    print("answer:", answer("What is machine learning?"))
    assert llmobs.flush(timeout=30), "llmobs could not write the spans in time"
    engine = get_engine()
    ensure_schema(engine)
    print(f"\nRecorded into {llmobs.get_settings().database_url}:")
    with Session(engine) as session:
        for trace_id in TRACE_IDS:
            if trace_id is not None:  # None: llmobs disabled or the trace not sampled
                print_trace(session, trace_id)


if __name__ == "__main__":
    main()
