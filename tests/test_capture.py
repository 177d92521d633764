"""What @observe records of inputs and outputs: snapshots of any value, truncation, redaction, masks, switches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest

import llmobs
from llmobs.serialize import redact, snapshot
from tests.support.databases import Store


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Doc:
    id: int
    tags: list[str]


class Query(pydantic.BaseModel):
    text: str
    k: int = 3


class Node:
    def __init__(self) -> None:
        self.name = "n"
        self.self_ref = self
        self._private = "hidden"


class Exploding:
    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        raise RuntimeError("no dict for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


def test_snapshot_turns_common_python_values_into_json_safe_data() -> None:
    import numpy as np

    value = {
        "model": Query(text="hi"), "doc": Doc(1, ["a"]), "color": Color.RED, "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "path": Path("/tmp/x"), "ids": {3, 1, 2}, "raw": b"bytes", "blob": b"\xff\xfe", "array": np.arange(4),
        "uuid": uuid.UUID(int=1), "money": Decimal("1.50"), "gen": (i for i in range(3)), 7: "int key",
    }
    snap = snapshot(value)
    json.dumps(snap)  # must be JSON-safe as is
    assert snap["model"] == {"text": "hi", "k": 3} and snap["doc"] == {"id": 1, "tags": ["a"]}
    assert snap["color"] == "red" and snap["when"] == "2024-01-02T03:04:05" and snap["path"] == "/tmp/x"
    assert snap["ids"] == [1, 2, 3] and snap["raw"] == "bytes" and snap["blob"] == "<2 bytes>"
    assert snap["array"] == [0, 1, 2, 3] and snap["money"] == "1.50" and snap["7"] == "int key"
    assert snap["gen"] == "<generator>"


def test_snapshot_survives_cycles_deep_nesting_and_hostile_objects() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    node = snapshot(Node())
    assert snapshot(cyclic) == [1, "<cycle>"]
    assert "max depth" in json.dumps(snapshot(deep))
    assert node["name"] == "n" and node["self_ref"] == "<cycle>" and "_private" not in node
    assert snapshot(Exploding()) == "<unserializable Exploding>"


def test_inputs_are_captured_by_parameter_name_at_call_time(store: Store) -> None:
    @llmobs.observe(name="mutating")
    def mutating(items: list[int], *rest: int, flag: bool = False, **extra: Any) -> None:
        items.append(99)

    data = [1, 2]
    mutating(data, 5, 6, flag=True, note="n")
    data.append(100)
    assert loads(store.span("mutating")["input"]) == {"items": [1, 2], "rest": [5, 6], "flag": True, "note": "n"}


def test_an_input_set_inside_the_call_replaces_the_captured_arguments(store: Store) -> None:
    @llmobs.observe(name="rewritten")
    def rewritten(question: str, n: int) -> str:
        llmobs.update_current_span(input={"question": question.upper()})
        return "ok"

    @llmobs.observe(name="cleared")
    def cleared(question: str) -> str:
        llmobs.update_current_span(input=None)
        return "ok"

    rewritten("why?", 3)
    cleared("kept out")
    assert loads(store.span("rewritten")["input"]) == {"question": "WHY?"}
    assert store.span("cleared")["input"] is None


def test_unserializable_arguments_and_outputs_never_break_the_call(store: Store) -> None:
    hostile = Exploding()

    @llmobs.observe(name="hostile")
    def use(obj: Any) -> Any:
        return obj

    assert use(hostile) is hostile
    row = store.span("hostile")
    assert loads(row["input"]) == {"obj": "<unserializable Exploding>"}
    assert loads(row["output"]) == "<unserializable Exploding>"


def test_long_fields_are_truncated_with_a_visible_marker(store: Store) -> None:
    llmobs.configure(max_field_chars=100)

    @llmobs.observe(name="long")
    def long(text: str) -> list[str]:
        return [text] * 50

    long("x" * 1000)
    row = store.span("long")
    assert "…[truncated 1000 chars]" in row["input"] and len(row["input"]) < 200
    out = loads(row["output"])
    assert isinstance(out, str) and "truncated" in out and len(row["output"]) < 250


def test_a_value_cut_at_call_time_is_stored_with_its_original_length_not_cut_again(store: Store) -> None:
    llmobs.configure(max_field_chars=64)

    @llmobs.observe(name="cut_once")
    def cut_once(items: list[str]) -> str:
        return "z" * 200

    cut_once(["y" * 300])
    row = store.span("cut_once")
    assert loads(row["output"]) == "z" * 64 + "…[truncated 200 chars]"
    assert loads(row["input"]) == {"items": ["y" * 64 + "…[truncated 300 chars]"]}


def test_a_span_without_a_name_is_stored_as_unnamed_and_a_nul_in_a_name_is_replaced(store: Store) -> None:
    with llmobs.span(""):
        pass
    with llmobs.span("a\x00b"):
        pass
    llmobs.flush()
    assert sorted(r["name"] for r in store.spans()) == ["a\ufffdb", "unnamed"]


def test_capture_can_be_switched_off_per_function_and_globally(store: Store) -> None:
    @llmobs.observe(name="no_in", capture_input=False)
    def no_in(secret: str) -> str:
        return "visible"

    @llmobs.observe(name="no_out", capture_output=False)
    def no_out(x: str) -> str:
        return "hidden result"

    no_in("s3cret")
    no_out("x")
    llmobs.configure(capture_input=False, capture_output=False)

    @llmobs.observe(name="global_off")
    def global_off(x: str) -> str:
        return x

    global_off("nothing")
    assert store.span("no_in")["input"] is None and loads(store.span("no_in")["output"]) == "visible"
    assert store.span("no_out")["output"] is None and loads(store.span("no_out")["input"]) == {"x": "x"}
    assert store.span("global_off")["input"] is None and store.span("global_off")["output"] is None


def test_common_secrets_are_redacted_by_default_and_can_be_kept(store: Store) -> None:
    @llmobs.observe(name="leaky")
    def leaky(prompt: str) -> str:
        llmobs.update_current_span(metadata={"auth": "Bearer abcdefghijklmnop.qrstuvwx"})
        return "contact bob@example.com with sk-proj-abcdefghijklmnopqrstuvwxyz012345"

    leaky("my key is sk-abcdefghijklmnopqrstuvwx and AKIAABCDEFGHIJKLMNOP")
    row = store.span("leaky")
    for field in ("input", "output"):
        assert "sk-" not in row[field] and "[REDACTED]" in row[field]
    assert "AKIA" not in row["input"] and "bob@" not in row["output"]
    assert row["metadata"] == {"auth": "[REDACTED]"}
    llmobs.configure(redact_secrets=False)
    leaky("plain sk-abcdefghijklmnopqrstuvwx")
    kept = [r for r in store.spans() if r["name"] == "leaky"][1]
    assert "sk-abcdefghijklmnopqrstuvwx" in kept["input"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_tokens_are_redacted_in_any_usual_case(scheme: str) -> None:
    assert redact(f"Authorization: {scheme} abcdefghijklmnop.qrstuvwx") == "Authorization: [REDACTED]"


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "The risk-free rate is 4%; ask@ the desk; skim the doc"
    assert redact(text) == text


def test_mask_hook_runs_on_every_field_and_a_failing_mask_hides_the_value(store: Store,
                                                                          llmobs_logs: pytest.LogCaptureFixture
                                                                          ) -> None:
    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("***" if k == "ssn" else v) for k, v in value.items()}
        return value

    llmobs.configure(mask=mask)

    @llmobs.observe(name="masked")
    def masked(ssn: str, name: str) -> str:
        return "ok"

    masked("123-45-6789", "Ann")
    assert loads(store.span("masked")["input"]) == {"ssn": "***", "name": "Ann"}

    def broken(value: Any) -> Any:
        raise RuntimeError("mask bug")

    llmobs.configure(mask=broken)

    @llmobs.observe(name="broken_mask")
    def broken_mask(secret: str) -> str:
        return "secret output"

    assert broken_mask("top secret") == "secret output"
    row = store.span("broken_mask")
    assert loads(row["input"]) == "<mask failed>" and loads(row["output"]) == "<mask failed>"
    assert any("mask function raised" in r.getMessage() for r in llmobs_logs.records if r.name == "llmobs")


def test_update_with_an_unknown_field_is_logged_and_ignored(store: Store,
                                                            llmobs_logs: pytest.LogCaptureFixture) -> None:
    with llmobs.span("s") as s:
        s.update(modelname="typo", model_name="real")
    assert store.span("s")["model_name"] == "real"
    assert any("unknown span field 'modelname'" in r.getMessage() for r in llmobs_logs.records)


def test_bad_token_values_are_stored_as_null_without_breaking(store: Store) -> None:
    @llmobs.observe(name="odd", kind="generation")
    def odd() -> str:
        llmobs.update_current_span(prompt_tokens="many", completion_tokens=3, cost_usd="free")
        return "x"

    assert odd() == "x"
    row = store.span("odd")
    assert row["prompt_tokens"] is None and row["completion_tokens"] == 3 and row["cost_usd"] is None


def test_nul_characters_are_stored_on_every_engine(store: Store) -> None:
    @llmobs.observe(name="nul\x00name")
    def nul(text: str) -> str:
        raise ValueError("bad\x00byte")

    with pytest.raises(ValueError):
        nul("a\x00b")
    [row] = store.spans()
    assert "\x00" not in row["name"] and loads(row["input"]) == {"text": "a\ufffdb"}
    assert row["error_message"] == "bad\ufffdbyte"


def test_a_failing_processor_is_logged_on_the_llmobs_logger_and_the_span_still_lands(
        store: Store, llmobs_logs: pytest.LogCaptureFixture) -> None:
    def broken(record: Any) -> Any:
        raise RuntimeError("processor bug")

    llmobs.configure(processors=[broken])

    @llmobs.observe(name="survives")
    def survives() -> int:
        return 7

    assert survives() == 7
    assert loads(store.span("survives")["output"]) == 7
    assert any(r.name == "llmobs" and "processor" in r.getMessage() and r.exc_info for r in llmobs_logs.records)
    llmobs.update_current_span(output="outside any span")  # nothing open: ignored, never raised
    llmobs.update_current_trace(user_id="nobody")
    assert [r["name"] for r in store.spans()] == ["survives"]
