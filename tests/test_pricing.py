"""Costs follow the price table's per-token prices, overrides win, unknowns stay None, token estimates are sane."""

from __future__ import annotations

import codecs
import math
import os
import subprocess
import sys
import textwrap
import this
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from genai_prices.data_snapshot import get_snapshot

from llmobs import pricing
from llmobs.context import SpanRecord, TraceState, new_trace_id
from llmobs.processors import price_processor
from llmobs.pricing import CostResult, compute_cost, estimate_tokens, get_price_overrides, set_price_overrides

REPO_ROOT = Path(__file__).resolve().parents[1]

# Real token counts of these texts under OpenAI's encodings (reference facts, measured with tiktoken-compatible BPE).
SAMPLES: dict[str, tuple[str, int, int]] = {
    "support": (
        "Hi team, my order #48213 arrived damaged yesterday. The box was crushed and two of the glasses inside were "
        "broken. Could you send replacements, or should I return the whole set first? Thanks for your help!",
        44,
        44,
    ),
    "summary": (
        "Summarize the following meeting notes in three bullet points. The quarterly revenue grew by eight percent, "
        "driven mostly by the new subscription tier. Marketing wants a larger budget for the autumn campaign, while "
        "engineering asked for two more weeks to finish the migration to the new database.",
        54,
        54,
    ),
    "rag": (
        "You are a helpful assistant. Answer the question using only the context below. If the answer is not in the "
        "context, say that you do not know.\n\nContext:\nThe Eiffel Tower was completed in 1889 for the World's Fair "
        "in Paris. It is 330 metres tall and was the tallest man-made structure in the world until 1930.\n\n"
        "Question: How tall is the Eiffel Tower?",
        84,
        79,
    ),
    "zen": (codecs.decode(this.s, "rot13"), 181, 176),
}


@pytest.fixture(autouse=True)
def no_overrides() -> Iterator[None]:
    """Each test starts and ends with no price overrides installed."""
    set_price_overrides(None)
    yield
    set_price_overrides(None)


def table_prices(model: str, provider: str | None = None) -> dict[str, Decimal | None]:
    """Read a model's per-million prices straight from the genai-prices table, independently of llmobs."""
    _, info = get_snapshot().find_provider_model(model, None, provider, None)
    return {key: getattr(info.prices, key) for key in ("input_mtok", "output_mtok", "cache_read_mtok")}


def by_hand(prices: dict[str, Decimal | None], prompt: int, completion: int, cached: int = 0) -> float:
    """Cost from per-million prices: uncached input, cached input (at the cached rate if any), output."""
    cache_rate = prices["cache_read_mtok"] if prices["cache_read_mtok"] is not None else prices["input_mtok"]
    total = (
        (prompt - cached) * (prices["input_mtok"] or 0)
        + cached * (cache_rate or 0)
        + completion * (prices["output_mtok"] or 0)
    )
    return float(Decimal(total) / 1_000_000)


# -- price table ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022"])
def test_known_models_cost_their_table_prices(model: str) -> None:
    """The cost equals prompt and completion tokens times the table's per-token prices."""
    result = compute_cost(model, 1_234, 567)
    assert result.source == "price_table"
    assert result.cost_usd == pytest.approx(by_hand(table_prices(model), 1_234, 567), rel=1e-12)
    independent = genai_prices.calc_price(genai_prices.Usage(input_tokens=1_234, output_tokens=567), model)
    assert result.cost_usd == pytest.approx(float(independent.total_price), rel=1e-12)


def test_cached_tokens_are_billed_at_the_cached_rate() -> None:
    """Cached prompt tokens (a subset of prompt tokens) cost the cached rate, so caching lowers the bill."""
    prices = table_prices("gpt-4o")
    assert prices["cache_read_mtok"] is not None and prices["cache_read_mtok"] < prices["input_mtok"]  # type: ignore[operator]
    cached = compute_cost("gpt-4o", 10_000, 100, cached_tokens=8_000)
    assert cached.cost_usd == pytest.approx(by_hand(prices, 10_000, 100, cached=8_000), rel=1e-12)
    uncached = compute_cost("gpt-4o", 10_000, 100)
    assert cached.cost_usd is not None and uncached.cost_usd is not None
    assert cached.cost_usd < uncached.cost_usd


def test_reported_names_and_provider_prefixes_resolve() -> None:
    """Dated names, `provider/model` prefixes and an explicit provider all find the right table entry."""
    base = compute_cost("gpt-4o", 1000, 1000).cost_usd
    assert compute_cost("gpt-4o-2024-08-06", 1000, 1000).cost_usd == base
    assert compute_cost("openai/gpt-4o", 1000, 1000).cost_usd == base
    azure = compute_cost("azure/gpt-4o", 1000, 1000)
    assert azure.source == "price_table" and azure.note is not None and "azure" in azure.note
    assert compute_cost("gpt-4o", 1000, 1000, provider="azure").note == azure.note
    assert compute_cost("gpt-4o", 1000, 1000, provider="no-such-provider").cost_usd == base


def test_embedding_model_priced_on_prompt_tokens_only() -> None:
    """Embeddings report only prompt tokens; completion None counts as zero."""
    result = compute_cost("text-embedding-3-small", 5_000, None)
    assert result.source == "price_table"
    assert result.cost_usd == pytest.approx(by_hand(table_prices("text-embedding-3-small", "openai"), 5_000, 0))


def test_tiered_model_is_priced_by_genai_prices() -> None:
    """Models with tiered prices go through genai-prices itself and still give a cost."""
    result = compute_cost("gemini-1.5-pro", 1000, 1000)
    expected = genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=1000), "gemini-1.5-pro")
    assert result.source == "price_table" and result.cost_usd == pytest.approx(float(expected.total_price))


# -- the writer's price processor ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "provider", "prompt", "completion", "metadata"),
    [
        ("gpt-4o-mini", "openai", 40, 12, None),  # linear table price
        ("gpt-4o", None, 1000, 500, {"usage_details": {"cached_tokens": 400}}),  # cached tokens at their rate
        ("text-embedding-3-small", "openai", 5000, None, {"team": "search"}),  # completion not reported
        ("gemini-1.5-pro", None, 1000, 1000, None),  # tiered: genai-prices computes it
        ("acme-large-2", None, 2_000_000, 1_000_000, None),  # a pattern override
        ("gpt-4o-mini", "openai", "40", "12", None),  # counts that are not ints yet
    ],
)
def test_price_processor_stores_what_compute_cost_gives(model: str, provider: str | None, prompt: Any,
                                                        completion: Any, metadata: dict[str, Any] | None) -> None:
    """Every path of the writer's pricing (linear fast path included) fills the cost compute_cost computes."""
    set_price_overrides({"acme-*": {"input_per_million": 1.5, "output_per_million": 4.0}})
    record = SpanRecord("call", "generation", TraceState(new_trace_id(), True), None, "observe")
    record.model_name, record.provider, record.metadata = model, provider, metadata
    record.prompt_tokens, record.completion_tokens = prompt, completion
    cached = ((metadata or {}).get("usage_details") or {}).get("cached_tokens")
    expected = compute_cost(model, int(prompt), None if completion is None else int(completion),
                            cached_tokens=cached, provider=provider)
    assert expected.cost_usd is not None and expected.cost_usd > 0
    assert price_processor(record).cost_usd == pytest.approx(expected.cost_usd, rel=1e-12)


def test_price_processor_notes_why_an_unknown_model_has_no_cost() -> None:
    """An unpriced model keeps a NULL cost and gets metadata.cost_note; the user's metadata stays."""
    record = SpanRecord("call", "generation", TraceState(new_trace_id(), True), None, "observe")
    record.model_name, record.prompt_tokens, record.completion_tokens = "my-private-model-7b", 10, 5
    record.metadata = {"team": "search"}
    priced = price_processor(record)
    assert priced.cost_usd is None and priced.metadata["team"] == "search"
    assert "my-private-model-7b" in priced.metadata["cost_note"]


# -- unknowns and bad input ---------------------------------------------------------------------------------------
def test_unknown_model_costs_none_with_a_reason() -> None:
    """An unpriced model gives cost None (never 0) and a note naming it and the fix."""
    result = compute_cost("my-private-model-7b", 100, 50)
    assert result == CostResult(None, "unknown_model", result.note)
    assert result.note is not None and "my-private-model-7b" in result.note and "pricing" in result.note
    nameless = compute_cost(None, 100, 50)
    assert nameless.cost_usd is None and nameless.source == "unknown_model" and nameless.note


def test_no_token_counts_gives_no_tokens() -> None:
    """Without any token counts there is nothing to price."""
    result = compute_cost("gpt-4o", None, None)
    assert result.cost_usd is None and result.source == "no_tokens" and result.note


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt_tokens": -1, "completion_tokens": 0}, "prompt_tokens"),
        ({"prompt_tokens": 1, "completion_tokens": True}, "completion_tokens"),
        ({"prompt_tokens": 1.5, "completion_tokens": 0}, "prompt_tokens"),
        ({"prompt_tokens": 10, "completion_tokens": 0, "cached_tokens": 11}, "cached_tokens"),
    ],
)
def test_invalid_token_counts_raise(kwargs: dict[str, Any], match: str) -> None:
    """Negative, non-integer, or more-cached-than-prompt counts are rejected, naming the argument."""
    with pytest.raises(ValueError, match=match):
        compute_cost("gpt-4o", **kwargs)


# -- overrides ---------------------------------------------------------------------------------------------------
def test_overrides_exact_beats_pattern_beats_table() -> None:
    """Exact names win over patterns; any override wins over the table; matching ignores case."""
    set_price_overrides(
        {
            "gpt-4o*": {"input_per_million": 1.0, "output_per_million": 2.0},
            "GPT-4o": {"input_per_million": 10.0, "output_per_million": 20.0, "cached_input_per_million": 5.0},
            "my-llama-*": {"input_per_million": 0.2, "output_per_million": 0.6, "cached_input_per_million": 0.1},
        }
    )
    exact = compute_cost("gpt-4o", 1_000_000, 1_000_000, cached_tokens=500_000)
    assert exact.source == "override" and exact.cost_usd == pytest.approx(0.5 * 10 + 0.5 * 5 + 20)
    assert exact.note is not None and "GPT-4o" in exact.note
    pattern = compute_cost("gpt-4o-mini", 1_000_000, 1_000_000)
    assert pattern.source == "override" and pattern.cost_usd == pytest.approx(3.0)
    llama = compute_cost("My-Llama-3-8B", 2_000_000, 1_000_000, cached_tokens=1_000_000)
    assert llama.cost_usd == pytest.approx(0.2 + 0.1 + 0.6)
    assert compute_cost("together/my-llama-3-8b", 1_000_000, 0).cost_usd == pytest.approx(0.2)
    assert compute_cost("claude-3-5-sonnet-20241022", 10, 10).source == "price_table"


def test_override_without_cached_rate_bills_cached_as_input() -> None:
    """An override with no cached price charges cached tokens at the input price; output defaults to 0."""
    set_price_overrides({"embedder-x": {"input_per_million": 4.0}})
    assert compute_cost("embedder-x", 1_000_000, 0, cached_tokens=1_000_000).cost_usd == pytest.approx(4.0)
    assert compute_cost("embedder-x", 0, 1_000_000).cost_usd == 0.0


def test_patterns_are_tried_in_declaration_order() -> None:
    """When several patterns match, the first one declared wins."""
    set_price_overrides({"acme-*": {"input_per_million": 1.0}, "acme-large-*": {"input_per_million": 9.0}})
    assert compute_cost("acme-large-2", 1_000_000, 0).cost_usd == pytest.approx(1.0)


def test_get_price_overrides_returns_a_copy_and_none_clears() -> None:
    """The installed mapping reads back with float prices; editing the copy changes nothing; None clears."""
    set_price_overrides({"m": {"input_per_million": 1, "output_per_million": 2}})
    got = get_price_overrides()
    assert got == {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
    got["m"]["input_per_million"] = 99.0
    assert get_price_overrides()["m"]["input_per_million"] == 1.0
    set_price_overrides(None)
    assert get_price_overrides() == {}
    assert compute_cost("m", 10, 10).source == "unknown_model"


@pytest.mark.parametrize(
    ("entry", "field", "value"),
    [
        ({"input_per_million": 1.0, "ouput_per_million": 2.0}, "ouput_per_million", None),
        ({"input_per_million": -0.5}, "input_per_million", "-0.5"),
        ({"input_per_million": "cheap"}, "input_per_million", "'cheap'"),
        ({"input_per_million": True}, "input_per_million", "True"),
        ({"input_per_million": 1.0, "output_per_million": float("nan")}, "output_per_million", "nan"),
        ({"output_per_million": 1.0}, "input_per_million", None),
        (0.5, None, "0.5"),
    ],
)
def test_bad_overrides_raise_naming_key_field_and_value(entry: Any, field: str | None, value: str | None) -> None:
    """An invalid override raises ValueError naming the model key, the field, the value and what is allowed;
    the previously installed overrides stay in force."""
    set_price_overrides({"keep-me": {"input_per_million": 1.0}})
    with pytest.raises(ValueError) as info:
        set_price_overrides({"fine": {"input_per_million": 1.0}, "broken-model": entry})
    message = str(info.value)
    assert "broken-model" in message
    if field is not None:
        assert field in message
    if value is not None:
        assert value in message
    assert "allowed" in message
    assert get_price_overrides() == {"keep-me": {"input_per_million": 1.0}}


# -- performance and offline guarantees ---------------------------------------------------------------------------
def test_pricing_never_opens_a_network_connection() -> None:
    """Pricing many models and estimating tokens runs with every socket connection forbidden."""
    script = textwrap.dedent("""
        import sys
        def forbid(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
                raise RuntimeError(f"network access attempted: {event} {args!r}")
        sys.addaudithook(forbid)
        from llmobs.pricing import compute_cost, estimate_tokens
        for model in ["gpt-4o", "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "gemini-1.5-pro", "nope-1"]:
            compute_cost(model, 100, 10, cached_tokens=5)
        assert estimate_tokens("hello world", "gpt-4o") > 0
        print("offline-ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "offline-ok" in done.stdout


def test_without_genai_prices_overrides_still_work() -> None:
    """If the optional genai-prices package is missing, table models are unknown (saying how to fix) and
    overrides still price."""
    script = textwrap.dedent("""
        import sys
        sys.modules["genai_prices"] = None  # makes `import genai_prices` raise ImportError
        from llmobs.pricing import compute_cost, set_price_overrides
        missing = compute_cost("gpt-4o", 100, 10)
        assert missing.cost_usd is None and missing.source == "unknown_model", missing
        assert "llmobs[pricing]" in missing.note, missing.note
        set_price_overrides({"gpt-4o": {"input_per_million": 1.0}})
        assert compute_cost("gpt-4o", 1_000_000, 0).cost_usd == 1.0
        print("fallback-ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "fallback-ok" in done.stdout


# -- token estimation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_estimate_tokens_within_fifteen_percent(name: str) -> None:
    """Both the estimate and the regex fallback land within 15% of the real count for each encoding family."""
    text, cl100k, o200k = SAMPLES[name]
    for model, encoding, real in (("gpt-4", "cl100k_base", cl100k), ("gpt-4o", "o200k_base", o200k)):
        assert abs(estimate_tokens(text, model) - real) <= 0.15 * real
        assert abs(pricing._regex_estimate(text, encoding) - real) <= 0.15 * real


def test_estimate_tokens_is_exact_with_bpe_openai() -> None:
    """With the optional bpe-openai package installed the counts are the encodings' exact counts."""
    pytest.importorskip("bpe_openai")
    for text, cl100k, o200k in SAMPLES.values():
        assert estimate_tokens(text, "gpt-3.5-turbo") == cl100k
        assert estimate_tokens(text, "openai/gpt-4o-mini") == o200k
    assert estimate_tokens("hello world") == 2


def test_estimate_tokens_edge_cases() -> None:
    """Empty text is 0 tokens, long text is counted in chunks, and non-strings are refused."""
    assert estimate_tokens("") == 0
    assert estimate_tokens(" ") >= 1
    sentence = SAMPLES["support"][0] + " "
    long_text = sentence * 2_000  # ~400k characters, beyond what one tokenizer call accepts
    per_sentence = estimate_tokens(sentence, "gpt-4o")
    assert math.isclose(estimate_tokens(long_text, "gpt-4o"), per_sentence * 2_000, rel_tol=0.05)
    with pytest.raises(TypeError):
        estimate_tokens(None)  # type: ignore[arg-type]


def test_model_family_picks_the_encoding() -> None:
    """GPT-4o, 4.1, 5 and o-series use o200k; older GPT models and other vendors use cl100k."""
    for model in ("gpt-4o", "gpt-4o-2024-08-06", "openai/gpt-4.1-mini", "o3-mini", "gpt-5"):
        assert pricing._encoding_name(model) == "o200k_base"
    for other in ("gpt-4", "gpt-3.5-turbo", "claude-3-5-sonnet-20241022", None, "text-embedding-3-small"):
        assert pricing._encoding_name(other) == "cl100k_base"
