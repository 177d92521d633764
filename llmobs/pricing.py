"""Tokens and cost for LLM calls, shared by every integration.

Prices come from the `genai-prices` package's bundled table (offline: llmobs never starts its network
updater) and from the config file's `pricing:` section, which wins over the table. When a provider
returns no usage, `estimate_tokens` gives an offline count.

Example:
    >>> from llmobs.pricing import compute_cost
    >>> result = compute_cost("gpt-4o", prompt_tokens=1000, completion_tokens=500)
    >>> result.source, result.cost_usd is not None
    ('price_table', True)
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "CostResult",
    "CostSource",
    "compute_cost",
    "estimate_tokens",
    "get_price_overrides",
    "set_price_overrides",
]

CostSource = Literal["override", "price_table", "unknown_model", "no_tokens"]

OVERRIDE_FIELDS: Final = ("input_per_million", "output_per_million", "cached_input_per_million")
_PATTERN_CHARS: Final = frozenset("*?[")
# When a bare model name matches no provider's own rules, providers are searched in this order.
_PREFERRED_PROVIDERS: Final = ("openai", "anthropic", "google", "mistral", "x-ai", "deepseek", "cohere", "groq")
_O200K_PREFIXES: Final = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-", "gpt-oss", "codex")
_BPE_CHUNK_CHARS: Final = 50_000


class CostResult(NamedTuple):
    """The cost of one call in USD (None when it cannot be known, never a made-up 0), where it came from, and why.

    A NamedTuple rather than a frozen dataclass: the writer makes one per priced span, and this is cheaper to build.
    """

    cost_usd: float | None
    source: CostSource
    note: str | None = None


@dataclass(frozen=True, slots=True)
class _Rates:
    """Linear USD-per-token prices; `cached_input` equals `input` when the model has no cached rate."""

    input: float
    output: float
    cached_input: float
    per_request: float
    source: CostSource
    note: str

    def cost(self, prompt: int, completion: int, cached: int) -> float:
        """USD for one call: cached tokens are the part of ``prompt`` billed at the cached rate."""
        return (prompt - cached) * self.input + cached * self.cached_input + completion * self.output + self.per_request


@dataclass(frozen=True, slots=True)
class _TableModel:
    """A table entry whose price is not linear (tiers or time-dependent prices): genai-prices computes each call."""

    provider: Any
    model: Any
    note: str


_Resolved = _Rates | _TableModel | str  # a str is the note explaining why the model is unknown

_lock = threading.Lock()
_exact_overrides: dict[str, _Rates] = {}
_pattern_overrides: list[tuple[str, _Rates]] = []
_override_mapping: dict[str, dict[str, float]] = {}
_table_snapshot: object | None = None


# -- public API ------------------------------------------------------------------------------------------------
def compute_cost(
    model: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    cached_tokens: int | None = None,
    provider: str | None = None,
) -> CostResult:
    """Price one call; cached tokens are a subset of prompt tokens (OpenAI's convention) billed at the cached rate.

    Integrations for providers that report cache reads separately (Anthropic) add them into `prompt_tokens` first.
    Raises ValueError for negative or non-integer counts, or more cached than prompt tokens.

    Example:
        >>> compute_cost("no-such-model", 10, 5).cost_usd is None
        True
    """
    if prompt_tokens is None and completion_tokens is None:
        return CostResult(None, "no_tokens", "the provider reported no token counts")
    prompt = _count("prompt_tokens", prompt_tokens)
    completion = _count("completion_tokens", completion_tokens)
    cached = _count("cached_tokens", cached_tokens)
    if cached > prompt:
        raise ValueError(f"cached_tokens ({cached}) cannot exceed prompt_tokens ({prompt}): cached tokens are a subset")
    if not model:
        return CostResult(None, "unknown_model", "no model name was reported, so no price applies")
    _check_table_snapshot()
    resolved = _resolve(model, provider)
    if isinstance(resolved, _Rates):
        return CostResult(resolved.cost(prompt, completion, cached), resolved.source, resolved.note)
    if isinstance(resolved, _TableModel):
        return _table_cost(resolved, prompt, completion, cached)
    return CostResult(None, "unknown_model", resolved)


def linear_cost(model: str, provider: str | None, prompt: int, completion: int) -> float | None:
    """The cost of a call without cached tokens when the model has linear prices, else None (use compute_cost).

    The writer prices every model span; this skips compute_cost's validation and result object for the common
    case. Counts must already be non-negative ints.

    Example:
        >>> linear_cost("no-such-model", None, 10, 5) is None
        True
    """
    _check_table_snapshot()
    resolved = _resolve(model, provider)
    return resolved.cost(prompt, completion, 0) if type(resolved) is _Rates else None


def set_price_overrides(mapping: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Install the config's `pricing:` section (replacing earlier overrides); None or {} clears them.

    Keys are exact model names or fnmatch patterns (case-insensitive); exact names win over patterns, patterns
    are tried in the given order, and any override wins over the price table. Raises ValueError naming the model
    key, the field and the bad value; nothing is changed then.

    Example:
        >>> set_price_overrides({"my-llama-*": {"input_per_million": 0.2, "output_per_million": 0.6}})
        >>> compute_cost("my-llama-3", 1_000_000, 0).cost_usd
        0.2
        >>> set_price_overrides(None)
    """
    exact: dict[str, _Rates] = {}
    patterns: list[tuple[str, _Rates]] = []
    normalized: dict[str, dict[str, float]] = {}
    for key, entry in (mapping or {}).items():
        prices = _validate_override(key, entry)
        rates = _Rates(
            input=prices["input_per_million"] / 1e6,
            output=prices.get("output_per_million", 0.0) / 1e6,
            cached_input=prices.get("cached_input_per_million", prices["input_per_million"]) / 1e6,
            per_request=0.0,
            source="override",
            note=f"pricing override {key!r}",
        )
        normalized[key] = prices
        if _PATTERN_CHARS & set(key):
            patterns.append((key.lower(), rates))
        else:
            exact[key.lower()] = rates
    global _override_mapping
    with _lock:
        _exact_overrides.clear()
        _exact_overrides.update(exact)
        _pattern_overrides[:] = patterns
        _override_mapping = normalized
        _resolve.cache_clear()


def get_price_overrides() -> dict[str, dict[str, float]]:
    """Return a copy of the installed overrides, prices as floats, e.g. `{"my-llama-*": {"input_per_million": 0.2}}`."""
    with _lock:
        return {key: dict(prices) for key, prices in _override_mapping.items()}


def estimate_tokens(text: str, model: str | None = None) -> int:
    """Count tokens offline for when a provider returns no usage: exact with the optional `bpe-openai` package
    (o200k for GPT-4o/4.1/5 and o-series, cl100k otherwise), else a regex estimate within ~15% on English text.

    Example:
        >>> estimate_tokens("Hello, how are you today?", "gpt-4o")
        7
    """
    if not isinstance(text, str):
        raise TypeError(f"estimate_tokens() takes a str, got {type(text).__name__}")
    if not text:
        return 0
    encoding = _encoding_name(model)
    tokenizer = _bpe_encoding(encoding)
    if tokenizer is not None:
        try:
            return sum(len(tokenizer.encode_ordinary(chunk)) for chunk in _chunks(text, _BPE_CHUNK_CHARS))
        except Exception:  # the optional tokenizer failing must never cost the caller its span
            pass
    return _regex_estimate(text, encoding)


# -- cost internals --------------------------------------------------------------------------------------------
def _count(name: str, value: int | None) -> int:
    """Validate one token count; None means "not reported" and counts as 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
    return value


@functools.lru_cache(maxsize=4096)
def _resolve(model: str, provider: str | None) -> _Resolved:
    """Find the price for a model name once (overrides, then table); cached so repeated models cost ~1 µs."""
    override = _find_override(model)
    if override is not None:
        return override
    return _table_lookup(model, provider)


def _find_override(model: str) -> _Rates | None:
    """Exact names first (with and without a provider prefix), then patterns in declaration order."""
    full = model.lower()
    names = (full, full.rpartition("/")[2]) if "/" in full else (full,)
    for name in names:
        if name in _exact_overrides:
            return _exact_overrides[name]
    for pattern, rates in _pattern_overrides:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return rates
    return None


def _validate_override(key: object, entry: object) -> dict[str, float]:
    """Check one `pricing:` entry and return its prices as floats; errors name the key, field and value."""
    allowed = ", ".join(OVERRIDE_FIELDS)
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"pricing: model key {key!r} is invalid; allowed: a non-empty exact name or glob pattern")
    if not isinstance(entry, Mapping):
        raise ValueError(f"pricing: model {key!r} has invalid value {entry!r}; allowed: a mapping of {allowed}")
    prices: dict[str, float] = {}
    for field_name, value in entry.items():
        if field_name not in OVERRIDE_FIELDS:
            raise ValueError(f"pricing: model {key!r} has unknown field {field_name!r}; allowed fields: {allowed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"pricing: model {key!r} field {field_name!r} has invalid value {value!r}; "
                "allowed: a non-negative number of USD per million tokens"
            )
        prices[field_name] = float(value)
    if "input_per_million" not in prices:
        raise ValueError(f"pricing: model {key!r} is missing field 'input_per_million' (allowed fields: {allowed})")
    return prices


@functools.lru_cache(maxsize=1)
def _genai() -> Any | None:
    """Import genai-prices' snapshot module lazily; None when the optional package is absent."""
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    return data_snapshot


def load_price_table() -> None:
    """Import and read genai-prices' table now (the writer does this when it starts).

    Done lazily, the first priced span would import it on the writer thread; next to a busy application thread
    every file read of that import waits a switch interval for the GIL, and the first batch stalled for a second.

    Example:
        >>> load_price_table()
    """
    _check_table_snapshot()


def _check_table_snapshot() -> None:
    """Drop cached table prices if genai-prices' snapshot was replaced (only a user-started updater does that)."""
    global _table_snapshot
    module = _genai()
    snapshot = module.get_snapshot() if module is not None else None
    if snapshot is not _table_snapshot:
        _table_snapshot = snapshot
        _resolve.cache_clear()


def _table_lookup(model: str, provider: str | None) -> _Resolved:
    """Match a reported name in the table: given provider, `provider/model` prefix, name rules, then a scan."""
    module = _genai()
    if module is None:
        return f"no pricing override for {model!r} and genai-prices is not installed (pip install 'llmobs[pricing]')"
    snapshot = module.get_snapshot()
    name = model.strip()
    last = name.rpartition("/")[2]
    attempts: list[tuple[str, str | None]] = []
    if provider:
        attempts += [(name, provider), (last, provider)]
    if "/" in name:
        first, rest = name.split("/", 1)
        attempts.append((rest, first))
    attempts += [(name, None), (last, None)]
    for ref, provider_id in dict.fromkeys(attempts):
        try:
            found_provider, found_model = snapshot.find_provider_model(ref, None, provider_id, None)
        except LookupError:
            continue
        return _entry(found_provider, found_model)
    by_id = {p.id: p for p in snapshot.providers}
    ordered = [by_id[p] for p in _PREFERRED_PROVIDERS if p in by_id]
    ordered += [p for p in snapshot.providers if p.id not in _PREFERRED_PROVIDERS]
    for candidate in ordered:
        found = candidate.find_model(last)
        if found is not None:
            return _entry(candidate, found)
    return f"model {model!r} is not in the genai-prices table; add it under 'pricing:' in the config to price it"


def _entry(provider: Any, model: Any) -> _Resolved:
    """Turn a table model into linear rates when its price is a plain per-token price, else keep it for genai-prices."""
    from genai_prices.types import ModelPrice, TieredPrices

    note = f"genai-prices {provider.id}/{model.id}"
    prices = model.prices
    if not isinstance(prices, ModelPrice):
        return _TableModel(provider, model, note)
    values = {key: getattr(prices, key) for key in ("input_mtok", "output_mtok", "cache_read_mtok", "requests_kcount")}
    if values["input_mtok"] is None and values["output_mtok"] is None:
        return (
            f"genai-prices has no per-token price for {provider.id}/{model.id}; add it under 'pricing:' in the config"
        )
    if any(isinstance(v, TieredPrices) for v in values.values()):
        return _TableModel(provider, model, note)
    input_rate = float(values["input_mtok"] or 0) / 1e6
    cached = values["cache_read_mtok"]
    return _Rates(
        input=input_rate,
        output=float(values["output_mtok"] or 0) / 1e6,
        cached_input=float(cached) / 1e6 if cached is not None else input_rate,
        per_request=float(values["requests_kcount"] or 0) / 1000,
        source="price_table",
        note=note,
    )


def _table_cost(entry: _TableModel, prompt: int, completion: int, cached: int) -> CostResult:
    """Let genai-prices price a tiered or time-dependent model for this call (slower, ~100 µs)."""
    from genai_prices import Usage

    usage = Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached or None)
    calculation = entry.model.calc_price(usage, entry.provider)
    return CostResult(float(calculation.total_price), "price_table", entry.note)


# -- token estimation internals ------------------------------------------------------------------------------------
def _encoding_name(model: str | None) -> str:
    """The OpenAI encoding for a model family: o200k for GPT-4o and later, cl100k for the rest (a fair proxy)."""
    name = (model or "").lower().rpartition("/")[2]
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"


@functools.lru_cache(maxsize=4)
def _bpe_encoding(name: str) -> Any | None:
    """Load an encoding from the optional `bpe-openai` package (encodings ship in its wheel, no download)."""
    try:
        import bpe_openai
    except ImportError:
        return None
    try:
        return bpe_openai.get_encoding(name)
    except Exception:  # an unusable optional tokenizer falls back to the regex estimate
        return None


def _chunks(text: str, size: int) -> Iterator[str]:
    """Split long text at whitespace into pieces the tokenizer accepts (it refuses very long inputs)."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > start else end
        yield text[start:end]
        start = end


_LETTER = r"[^\W\d_]"
# Mirrors the shape of the cl100k/o200k pre-tokenizer: a word may carry one leading space or mark.
_PRETOKEN = re.compile(
    rf"'(?:[sdmt]|ll|ve|re)|[^\r\n\w]?{_LETTER}+|_+{_LETTER}*|\d{{1,3}}| ?[^\s\w]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    re.IGNORECASE,
)
_CASE_CHANGE = re.compile(r"[a-z](?=[A-Z])")
_CJK_START = 0x2E80


def _regex_estimate(text: str, encoding: str = "cl100k_base") -> int:
    """Approximate BPE counts: one token per common word, long words every ~4 letters, digits in threes,
    punctuation runs per two marks, CJK per character (fewer with o200k's larger vocabulary)."""
    cjk_weight = 0.75 if encoding == "o200k_base" else 1.0
    total = 0.0
    for match in _PRETOKEN.finditer(text):
        piece = match.group()
        if piece.isspace():
            total += 1
            continue
        core = piece.lstrip("_") if piece[0] == "_" else (piece if piece[0].isalnum() else piece[1:])
        if core and core[-1].isalpha() and core.isalpha():
            if core.isascii():
                humps = 1 + len(_CASE_CHANGE.findall(core))
                total += max(humps, 1 if len(core) <= 10 else math.ceil(len(core) / 4))
            else:
                cjk = sum(1 for ch in core if ord(ch) >= _CJK_START)
                total += cjk * cjk_weight + math.ceil((len(core) - cjk) / 3)
        elif piece.isdigit():
            total += 1
        else:
            total += math.ceil(len(piece.strip()) / 2) or 1
    return max(1, round(total))
