"""Trace reading for people (llmobs.analytics.trace_tree) on SQLite and PostgreSQL."""

from __future__ import annotations

import llmobs
from llmobs import analytics
from tests.support.databases import Store


def test_trace_tree_shows_totals_then_each_span_nested_with_its_figures(store: Store) -> None:
    ids: list[str | None] = []

    @llmobs.observe(kind="generation", name="generate")
    def generate(q: str) -> str:
        llmobs.update_current_span(model_name="gpt-4o-mini", prompt_tokens=10, completion_tokens=4)
        return "x" * 300

    @llmobs.observe(kind="tool", name="lookup")
    def lookup(q: str) -> str:
        raise KeyError("no such city")

    @llmobs.observe(kind="chain", name="answer")
    def answer(q: str) -> str:
        ids.append(llmobs.get_current_trace_id())
        llmobs.update_current_trace(user_id="u-1", tags=["t"])
        try:
            lookup(q)
        except KeyError:
            pass
        return generate(q)

    answer("where?")
    llmobs.flush()
    tree = analytics.trace_tree(ids[0] or "", output_chars=20, engine=store.url).splitlines()
    trace = store.traces()[0]
    gen = store.span("generate")
    assert tree[0] == (f"trace {ids[0]}: user=u-1 tags={trace['tags']} spans=3 errors=1 tokens=14 "
                       f"cost_usd={trace['cost_usd']:.7f}")
    assert tree[1].startswith("- answer [chain] ") and tree[1].endswith(' ok output="xxxxxxxxxxxxxxxxxx…')
    children = sorted(tree[2:])
    assert children[0].startswith("  - generate [generation] ")
    assert f"model=gpt-4o-mini tokens=10/4 cost_usd={gen['cost_usd']:.7f}" in children[0]
    assert children[1].startswith("  - lookup [tool] ") and children[1].endswith(" error error=KeyError: 'no such city'")
    assert analytics.trace_tree("f" * 32, engine=store.url) == ""
