"""Safe JSON snapshots of any value: taken at call time, never raising, bounded in size and depth.

``snapshot`` runs on the caller's thread so a later mutation of an argument does not change what was
recorded; ``encode`` and ``redact`` run on the writer thread and turn snapshots into stored JSON text.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import re
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Callable

import orjson

MAX_DEPTH = 12
MAX_ITEMS = 200
TRUNCATION_MARK = "…[truncated {} chars]"
_EARLIER_CUT = re.compile(r"…\[truncated (\d+) chars\]$")
# Room for one marker: a value cut at capture time (max_chars + marker) is stored as it is, not cut a second time.
MARK_SLACK = 64
_ATOMS = (int, float, bool, type(None))
_INT64, _UINT64 = 2**63, 2**64  # orjson's integer range


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars`` and append a visible marker with the original length.

    >>> truncate_text("abcdef", 3)
    'abc…[truncated 6 chars]'
    """
    if len(text) <= max_chars:
        return text
    original = len(text)
    earlier = _EARLIER_CUT.search(text, max(0, len(text) - 40))
    if earlier is not None:  # cut again (e.g. a whole field over the limit): keep the first cut's original length
        text, original = text[: earlier.start()], int(earlier.group(1))
    return text[:max_chars] + TRUNCATION_MARK.format(original)


def snapshot(value: Any, max_chars: int = 20000) -> Any:
    """Return a JSON-safe copy of ``value`` (dicts, lists, str, numbers, bool, None); never raises.

    Containers are copied, so mutating the original afterwards leaves the snapshot unchanged.

    >>> snapshot({"a": {1, 2}, "b": b"hi"})
    {'a': [1, 2], 'b': 'hi'}
    """
    try:
        return _snap(value, max_chars, 0, set())
    except Exception:  # noqa: BLE001 - the boundary: a snapshot never fails
        return _describe(value)


def _describe(value: Any) -> str:
    return f"<unserializable {type(value).__qualname__}>"


def _snap(value: Any, max_chars: int, depth: int, seen: set[int]) -> Any:
    t = type(value)
    if t is str:
        return value if len(value) <= max_chars else truncate_text(value, max_chars)
    if t is int:
        return value if -_INT64 <= value < _UINT64 else str(value)
    if t in _ATOMS:
        return value
    if depth >= MAX_DEPTH:
        return f"<{t.__qualname__}: max depth>"
    if t is dict or t is list or t is tuple:
        return _snap_container(value, max_chars, depth, seen)
    if isinstance(value, str):
        return _snap(str(value), max_chars, depth, seen)
    if isinstance(value, enum.Enum):
        return _snap(value.value, max_chars, depth + 1, seen)
    if isinstance(value, (int, float)):
        return _snap(int(value) if isinstance(value, int) else float(value), max_chars, depth, seen)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return truncate_text(raw.decode("utf-8"), max_chars)
        except UnicodeDecodeError:
            return f"<{len(raw)} bytes>"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (PurePath, uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)) or _is_mapping(value):
        return _snap_container(value, max_chars, depth, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        return _snap_container(fields, max_chars, depth, seen, marker=id(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return _snap(dump(), max_chars, depth + 1, seen)
    if _is_array(value):
        return _snap_array(value, max_chars, depth, seen)
    if isinstance(value, BaseException):
        return truncate_text(f"{t.__qualname__}: {value}", max_chars)
    if hasattr(value, "__next__") or t.__name__ in ("generator", "async_generator", "coroutine"):
        return f"<{t.__qualname__}>"
    if callable(value):
        return f"<{t.__qualname__} {getattr(value, '__qualname__', '')}>".replace(" >", ">")
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        public = {k: v for k, v in attrs.items() if not k.startswith("_")}
        snap = _snap_container(public, max_chars, depth, seen, marker=id(value))
        if isinstance(snap, dict):
            snap = {"__type__": t.__qualname__, **snap}
        return snap
    return truncate_text(repr(value), max_chars)


def _is_mapping(value: Any) -> bool:
    return hasattr(value, "items") and hasattr(value, "keys") and hasattr(value, "__getitem__")


def _is_array(value: Any) -> bool:
    return hasattr(value, "tolist") and hasattr(value, "shape") and hasattr(value, "dtype")


def _snap_array(value: Any, max_chars: int, depth: int, seen: set[int]) -> Any:
    size = getattr(value, "size", 0)
    if not getattr(value, "shape", ()):
        return _snap(value.item() if hasattr(value, "item") else value.tolist(), max_chars, depth + 1, seen)
    if size <= MAX_ITEMS:
        return _snap(value.tolist(), max_chars, depth + 1, seen)
    flat = value.reshape(-1)[:MAX_ITEMS].tolist()
    return {"__ndarray__": True, "shape": list(value.shape), "dtype": str(value.dtype),
            "head": _snap(flat, max_chars, depth + 1, seen)}


def _snap_container(value: Any, max_chars: int, depth: int, seen: set[int], marker: int | None = None) -> Any:
    key = id(value) if marker is None else marker
    if key in seen:
        return "<cycle>"
    seen.add(key)
    try:
        if _is_mapping(value) and not isinstance(value, (list, tuple, set, frozenset)):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out["…"] = f"[{len(value) - MAX_ITEMS} more items]"
                    break
                out[k if type(k) is str else str(_snap(k, 200, depth + 1, seen))] = _snap(v, max_chars, depth + 1,
                                                                                           seen)
            return out
        items = list(value) if not isinstance(value, (set, frozenset)) else _ordered(value)
        result = [_snap(v, max_chars, depth + 1, seen) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            result.append(f"…[{len(items) - MAX_ITEMS} more items]")
        return result
    finally:
        seen.discard(key)


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def encode(value: Any, max_chars: int) -> str | None:
    """Serialize a snapshot to JSON text of at most about ``max_chars``; longer text becomes a truncated JSON string.

    >>> encode({"a": 1}, 100)
    '{"a":1}'
    """
    if value is None:
        return None
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        value = snapshot(value, max_chars)  # e.g. an int past 64 bits kept by the fast capture path
        try:
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):  # lone surrogates: the stdlib escapes them
            text = json.dumps(value, default=str)
    if len(text) > max_chars + MARK_SLACK:
        text = _shrink(value, text, max_chars)
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    return text


def _shrink(value: Any, text: str, max_chars: int) -> str:
    """Fit a too-long field: first cut the strings inside it, and if that is not enough store a cut JSON string."""
    for limit in (max_chars // 2, max_chars // 8):
        if limit < 16:
            break
        shorter = orjson.dumps(snapshot(value, limit), option=orjson.OPT_NON_STR_KEYS).decode()
        if len(shorter) <= max_chars + MARK_SLACK:
            return shorter
    return orjson.dumps(truncate_text(text, max_chars)).decode()


# Secret shapes; none of them may match a quote or backslash, so replacing inside JSON text keeps it valid.
SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    ("api_key", r"\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    ("bearer", r"\b(?:[Bb]earer|BEARER)\s+[A-Za-z0-9._~+/\-]{12,}=*"),
    ("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("google_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("email", r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"),
)
REDACTED = "[REDACTED]"
_SECRET_RE = re.compile("|".join(f"(?:{p})" for _, p in SECRET_PATTERNS))


def redact(text: str) -> str:
    """Replace API keys, bearer tokens, cloud keys, JWTs and e-mail addresses in ``text`` with ``[REDACTED]``.

    >>> redact("key sk-abcdefghijklmnopqrstuv for bob@example.com")
    'key [REDACTED] for [REDACTED]'
    """
    if not may_hold_secret(text):
        return text
    return _SECRET_RE.sub(REDACTED, text)


def may_hold_secret(text: str) -> bool:
    """Cheap substring checks: every secret pattern contains one of these literals (most text has none).

    >>> may_hold_secret("what is the capital of France?")
    False
    """
    return ("@" in text or "k-" in text or "earer" in text or "EARER" in text or "AKIA" in text or "ASIA" in text
            or "xox" in text or "AIza" in text or "eyJ" in text or ("gh" in text and "_" in text))


def apply_mask(mask: Callable[[Any], Any], value: Any) -> Any:
    """Run a user mask on a snapshot; on failure return a placeholder rather than the unmasked value."""
    if value is None:
        return None
    try:
        return mask(value)
    except Exception:  # noqa: BLE001 - fail closed: never store what the mask should have hidden
        import logging

        logging.getLogger("llmobs").warning("llmobs: mask function raised; the field is stored as '<mask failed>'",
                                            exc_info=True)
        return "<mask failed>"
