"""Helpers shared by the OpenAI and LangChain integrations: usage and message normalisation, provider names,
token estimates, and the hand-off that lets two integrations record one LLM call as one span.

Nothing here imports a framework; everything reads provider objects by duck typing (dicts or attributes), so a
new or odd response shape degrades to "fewer fields recorded", never to an exception in the user's call.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmobs._state import rt
from llmobs.context import SpanRecord
from llmobs.serialize import snapshot, truncate_text

log = logging.getLogger("llmobs")

_MISSING = object()
MAX_ITEMS = 200
USAGE_REPORTED = "reported"
USAGE_ESTIMATED = "estimated"


# --- one LLM call seen by two integrations --------------------------------------------------------------------------

_claim_lock = threading.Lock()


class ActiveModelRun:
    """An open generation span owned by a framework integration (LangChain) while its model runs.

    A lower-level integration (the OpenAI client wrapper) that sees an open, not yet enriched run fills that span
    with what the wire says (model, usage, ids) instead of opening a second generation span for the same call.
    """

    __slots__ = ("span", "enriched")

    def __init__(self, span: SpanRecord) -> None:
        self.span = span
        self.enriched = False

    def claim(self) -> bool:
        """Take the right to enrich this run (once, also across threads); False when it is ended or already taken."""
        with _claim_lock:
            if self.enriched or self.span.ended:
                return False
            self.enriched = True
            return True


active_model_run: contextvars.ContextVar[ActiveModelRun | None] = contextvars.ContextVar(
    "llmobs_active_model_run", default=None)


# --- reading provider objects ----------------------------------------------------------------------------------------

def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; None when absent or unreadable."""
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    attrs = getattr(obj, "__dict__", None)
    if attrs is not None and name in attrs:  # pydantic models keep their fields here: the fast path
        return attrs[name]
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if extra is not _MISSING:  # a pydantic model without that field (getattr would raise inside pydantic: slow)
        return extra.get(name) if type(extra) is dict else None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a broken property is just a missing field
        return None


def fields_of(obj: Any) -> Any:
    """``obj`` as a plain dict when it is a pydantic model (fields plus extras) or a dict, so that many lookups in a
    row skip ``field``'s checks; other objects are returned as they are. None stays None.
    """
    if obj is None or type(obj) is dict:
        return obj
    attrs = getattr(obj, "__dict__", None)
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if type(attrs) is dict and extra is not _MISSING:
        return {**attrs, **extra} if type(extra) is dict and extra else attrs
    return obj


def as_count(value: Any) -> int | None:
    """A token count as a non-negative int, or None for anything else (bools, negatives, text, NaN)."""
    if value is None:  # the usual answer for the names a provider does not use
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


class Usage:
    """Token counts of one call in llmobs's convention: cached tokens are a subset of prompt tokens."""

    __slots__ = ("prompt", "completion", "total", "cached", "reasoning", "cache_creation")

    def __init__(self, prompt: int | None, completion: int | None, total: int | None = None,
                 cached: int | None = None, reasoning: int | None = None, cache_creation: int | None = None) -> None:
        self.prompt = prompt
        self.completion = completion
        self.total = total if total is not None or (prompt is None and completion is None) \
            else (prompt or 0) + (completion or 0)
        self.cached = cached if cached is None or prompt is None or cached <= prompt else None
        self.reasoning = reasoning
        self.cache_creation = cache_creation

    def details(self) -> dict[str, int]:
        """The ``metadata["usage_details"]`` entry: only the counts the provider reported."""
        out: dict[str, int] = {}
        if self.cached is not None:
            out["cached_tokens"] = self.cached
        if self.reasoning is not None:
            out["reasoning_tokens"] = self.reasoning
        if self.cache_creation is not None:
            out["cache_creation_tokens"] = self.cache_creation
        return out

    def __add__(self, other: "Usage") -> "Usage":
        def plus(a: int | None, b: int | None) -> int | None:
            return a if b is None else b if a is None else a + b

        return Usage(plus(self.prompt, other.prompt), plus(self.completion, other.completion),
                     plus(self.total, other.total), plus(self.cached, other.cached),
                     plus(self.reasoning, other.reasoning), plus(self.cache_creation, other.cache_creation))

    def __repr__(self) -> str:
        return f"Usage(prompt={self.prompt}, completion={self.completion}, total={self.total}, cached={self.cached})"


def reader(obj: Any) -> Callable[[str], Any]:
    """``get(name)`` for ``obj``: the bound ``dict.get`` of a dict or a pydantic model's fields (one C call per
    lookup), else ``field(obj, name)``. For reading many names of one object in a row.
    """
    values = fields_of(obj)
    if type(values) is dict:
        return values.get
    return lambda name: field(obj, name)


def _count(get: Callable[[str], Any], names: tuple[str, ...]) -> int | None:
    """The first of ``names`` that is a valid token count, read through ``get`` (a ``reader``)."""
    for name in names:
        value = get(name)
        if value is not None:
            value = value if type(value) is int and value >= 0 else as_count(value)
            if value is not None:
                return value
    return None


def _first(get: Callable[[str], Any], names: tuple[str, ...]) -> Any:
    """The first of ``names`` that is present (not None), read through ``get`` (a ``reader``)."""
    for name in names:
        value = get(name)
        if value is not None:
            return value
    return None


_PROMPT = ("prompt_tokens", "input_tokens", "prompt_token_count")
_COMPLETION = ("completion_tokens", "output_tokens", "candidates_token_count")
_TOTAL = ("total_tokens", "total_token_count")
_DETAILS_IN = ("prompt_tokens_details", "input_tokens_details", "input_token_details")
_DETAILS_OUT = ("completion_tokens_details", "output_tokens_details", "output_token_details")
_CACHED = ("cached_tokens", "cache_read")
_CACHE_CREATION = ("cache_creation", "cache_write_tokens", "cache_creation_tokens")
_REASONING = ("reasoning_tokens", "reasoning")


def usage_from(obj: Any) -> Usage | None:
    """Normalise a usage block from any provider shape; None when it carries no token count.

    Understands OpenAI chat/completions (``prompt_tokens``), the Responses API and LangChain's ``usage_metadata``
    (``input_tokens``, ``input_token_details.cache_read``), Anthropic (cache reads reported beside, not inside,
    ``input_tokens``) and Gemini (``prompt_token_count``).

    >>> usage_from({"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}).cached
    4
    """
    if obj is None:
        return None
    try:
        get = reader(obj)
        prompt = _count(get, _PROMPT)
        completion = _count(get, _COMPLETION)
        total = _count(get, _TOTAL)
        if prompt is None and completion is None and total is None:
            return None
        details_in = _first(get, _DETAILS_IN)
        cached = cache_creation = reasoning = None
        if details_in is not None:
            get_in = reader(details_in)
            cached = _count(get_in, _CACHED)
            cache_creation = _count(get_in, _CACHE_CREATION)
        details_out = _first(get, _DETAILS_OUT)
        if details_out is not None:
            reasoning = _count(reader(details_out), _REASONING)
        anthropic_read = as_count(get("cache_read_input_tokens"))
        anthropic_write = as_count(get("cache_creation_input_tokens"))
        if anthropic_read is not None or anthropic_write is not None:
            # Anthropic's input_tokens excludes cache reads and writes; llmobs counts them inside prompt tokens.
            prompt = (prompt or 0) + (anthropic_read or 0) + (anthropic_write or 0)
            cached = anthropic_read if cached is None else cached
            cache_creation = anthropic_write if cache_creation is None else cache_creation
            total = None
        if cached is None:
            cached = as_count(get("cached_content_token_count"))
        if reasoning is None:
            reasoning = as_count(get("thoughts_token_count"))
        return Usage(prompt, completion, total, cached, reasoning, cache_creation)
    except Exception:  # noqa: BLE001 - an odd usage block is recorded as no usage
        log.debug("llmobs: could not read usage from %r", type(obj).__name__, exc_info=True)
        return None


def usage_fields(usage: Usage, source: str) -> dict[str, Any]:
    """Span fields (tokens) and the metadata entries for ``usage``, ready for ``span.update(**fields)``."""
    meta: dict[str, Any] = {"usage_source": source}
    details = usage.details()
    if details:
        meta["usage_details"] = details
    return {"prompt_tokens": usage.prompt, "completion_tokens": usage.completion, "total_tokens": usage.total,
            "metadata": meta}


def estimate(text: str, model: str | None) -> int:
    """Offline token count of ``text`` with the shared estimator; 0 for empty text, never raises."""
    if not text:
        return 0
    try:
        from llmobs.pricing import estimate_tokens

        return estimate_tokens(text, model)
    except Exception:  # noqa: BLE001 - an estimate must not cost the caller its call
        return max(1, len(text) // 4)


def estimated_usage(prompt_text: str, completion_text: str, model: str | None) -> Usage:
    """A Usage estimated from the prompt and completion text, for providers that reported none."""
    return Usage(estimate(prompt_text, model), estimate(completion_text, model))


# --- messages ---------------------------------------------------------------------------------------------------------

_LC_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function",
             "chat": "user", "developer": "developer", "AIMessageChunk": "assistant"}


def content_text(content: Any) -> str:
    """The plain text inside message content: a string, or the text parts of a list of content blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            else:
                text = field(part, "text")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return str(content)


def tool_call_dict(call: Any) -> dict[str, Any]:
    """One tool call as ``{"id", "name", "arguments"}`` from OpenAI objects/dicts or LangChain tool calls."""
    get = reader(call)
    function = get("function") or get("custom")
    if function is not None:
        get_function = reader(function)
        name = get_function("name")
        arguments = _first(get_function, _ARGUMENTS_OPENAI)
    else:
        name = get("name")
        arguments = _first(get, _ARGUMENTS)
    out: dict[str, Any] = {"id": _first(get, _CALL_ID), "name": name, "arguments": arguments}
    kind = get("type")
    if kind is not None and kind not in ("function", "tool_call"):
        out["type"] = kind
    return out


_ARGUMENTS_OPENAI = ("arguments", "input")
_ARGUMENTS = ("args", "arguments", "input")
_CALL_ID = ("id", "call_id")


def message_dict(message: Any) -> Any:
    """An OpenAI-style ``{"role", "content", ...}`` dict for an OpenAI message (dict or object) or a LangChain message.

    Anything that is not message-like is returned unchanged (the caller snapshots it).
    """
    role = field(message, "role")
    if role is None:
        lc_type = field(message, "type")
        if isinstance(lc_type, str) and not isinstance(message, Mapping) and hasattr(message, "content"):
            role = _LC_ROLES.get(lc_type, lc_type)
        else:
            return message
    out: dict[str, Any] = {"role": role, "content": field(message, "content")}
    calls = field(message, "tool_calls")
    if calls:
        try:
            out["tool_calls"] = [tool_call_dict(c) for c in calls]
        except TypeError:
            out["tool_calls"] = calls
    for key in ("name", "tool_call_id"):
        value = field(message, key)
        if value is not None:
            out[key] = value
    return out


def messages_list(messages: Any) -> Any:
    """Normalise a list of messages; non-list values are returned unchanged."""
    if isinstance(messages, (list, tuple)):
        return [message_dict(m) for m in messages]
    return messages


def messages_text(messages: Any) -> str:
    """All text of a message list (or a prompt string / list of strings), for token estimates."""
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, (list, tuple)):
        return ""
    parts = []
    for message in messages:
        if isinstance(message, str):
            parts.append(message)
            continue
        parts.append(content_text(field(message, "content")))
        for call in field(message, "tool_calls") or ():
            parts.append(str(tool_call_dict(call).get("arguments") or ""))
    return "\n".join(p for p in parts if p)


# --- providers --------------------------------------------------------------------------------------------------------

_KNOWN_HOSTS = {
    "api.openai.com": "openai",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "openrouter.ai": "openrouter",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral",
    "api.fireworks.ai": "fireworks",
    "generativelanguage.googleapis.com": "google",
    "api.x.ai": "x-ai",
    "api.perplexity.ai": "perplexity",
    "api.cerebras.ai": "cerebras",
    "api.anthropic.com": "anthropic",
    "api.moonshot.ai": "moonshotai",
    "api.novita.ai": "novita",
}
_LOCAL_PORTS = {11434: "ollama", 1234: "lmstudio"}
OPENAI_COMPATIBLE = "openai-compatible"


def provider_for(host: str | None, port: int | None = None, *, azure: bool = False) -> str:
    """The provider name for an OpenAI-style endpoint (the rule is documented in docs/integrations_openai.md).

    Azure clients and ``*.azure.com`` hosts are ``azure``; well-known API hosts map to their provider (matching the
    price table's provider ids); a loopback host on Ollama's (11434) or LM Studio's (1234) default port names that
    server; every other host is ``openai-compatible``.

    >>> provider_for("api.openai.com"), provider_for("127.0.0.1", 11434), provider_for("10.0.0.5", 8000)
    ('openai', 'ollama', 'openai-compatible')
    """
    if azure:
        return "azure"
    host = (host or "").lower().strip("[]").rstrip(".")
    if not host:
        return "openai"
    if host in _KNOWN_HOSTS:
        return _KNOWN_HOSTS[host]
    for known, name in _KNOWN_HOSTS.items():
        if host.endswith("." + known):
            return name
    if host.endswith(".azure.com") or host.endswith(".azure-api.net"):
        return "azure"
    if _is_local(host) and port in _LOCAL_PORTS:
        return _LOCAL_PORTS[port]
    return OPENAI_COMPATIBLE


def _is_local(host: str) -> bool:
    if host in ("localhost", "host.docker.internal") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


# --- values to record -------------------------------------------------------------------------------------------------

def compact(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``values`` without None entries and without the ``skip`` keys."""
    skipped = set(skip)
    return {k: v for k, v in values.items() if v is not None and k not in skipped}


def plain(value: Any, special: Callable[[Any], Any] | None = None, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` built in one pass (strings cut at ``max_field_chars``), so that it can be
    stored on a span as it is instead of being snapshotted a second time.

    ``special(value)`` turns framework objects (LangChain messages, documents) into plain values itself, or returns
    ``NOT_SPECIAL``; anything else that is not a str/number/dict/list goes through llmobs's ``snapshot``.

    >>> plain({"a": ("x", 1)})
    {'a': ['x', 1]}
    """
    t = type(value)
    if t is str:
        return value if len(value) <= rt.max_field_chars else truncate_text(value, rt.max_field_chars)
    if t in _SCALARS:
        return value
    if depth > 10:
        return snapshot(value, rt.max_field_chars)
    limit = rt.max_field_chars
    if t is dict:
        if len(value) > MAX_ITEMS:
            return snapshot(value, limit)
        if _flat(value):  # str keys to short strings and numbers (messages, parameters): one C-level copy
            return value.copy()
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                return snapshot(value, limit)
            kind = type(item)
            if kind is str:
                out[key] = item if len(item) <= limit else truncate_text(item, limit)
            elif kind in _SCALARS:
                out[key] = item
            else:
                out[key] = plain(item, special, depth + 1)
        return out
    if t is list or t is tuple:
        items = []
        for item in value[:MAX_ITEMS]:
            kind = type(item)
            if kind is str:
                items.append(item if len(item) <= limit else truncate_text(item, limit))
            elif kind in _SCALARS:
                items.append(item)
            else:
                items.append(plain(item, special, depth + 1))
        if len(value) > MAX_ITEMS:
            items.append(f"…[{len(value) - MAX_ITEMS} more items]")
        return items
    if isinstance(value, str):  # a str subclass (LangChain's TextAccessor): its text, as snapshot() would store it
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a broken __str__: snapshot describes the value instead
            return snapshot(value, limit)
        if type(text) is str:
            return text if len(text) <= limit else truncate_text(text, limit)
    if special is not None:
        converted = special(value)
        if converted is not NOT_SPECIAL:
            return converted
    return snapshot(value, limit)


_SCALARS = frozenset({int, float, bool, type(None)})


def _flat(item: dict[Any, Any]) -> bool:
    """Whether ``item`` is a dict of str keys to numbers and strings within ``max_field_chars`` (no containers)."""
    limit = rt.max_field_chars
    for key, v in item.items():
        t = type(v)
        if type(key) is not str or not (t is str and len(v) <= limit or t in _SCALARS):
            return False
    return len(item) <= MAX_ITEMS
NOT_SPECIAL = object()
