"""llmobs.score(): judgments land in the evaluations table, linked to span and trace, checked at the call."""

from __future__ import annotations

import datetime as dt

import pytest

import llmobs
from tests.support.databases import Store


def test_score_inside_a_span_links_to_that_span_and_trace(store: Store) -> None:
    with llmobs.span("answer", kind="generation") as s:
        score_id = llmobs.score("helpfulness", 0.8, comment="clear and short", source="custom")
    [row] = store.rows("evaluations", order="created_at")
    assert row["id"] == score_id and row["span_id"] == s.id and row["trace_id"] == s.trace_id
    assert (row["name"], row["value"], row["comment"], row["source"]) == ("helpfulness", 0.8, "clear and short",
                                                                          "custom")
    assert row["created_at"].tzinfo is not None
    assert abs(row["created_at"] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_feedback_given_later_with_a_span_id_gets_the_trace_id_filled_in(store: Store) -> None:
    with llmobs.span("answer") as s:
        pass
    llmobs.flush()
    llmobs.score("user_feedback", True, span_id=s.id, label="thumbs_up", author="u-42",
                 metadata={"channel": "web"})
    [row] = store.rows("evaluations", order="created_at")
    assert (row["span_id"], row["trace_id"], row["value"], row["label"]) == (s.id, s.trace_id, 1.0, "thumbs_up")
    assert row["source"] == "human" and row["author"] == "u-42" and row["metadata"] == {"channel": "web"}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"name": "", "value": 1}, "name=''"),
    ({"name": "x", "value": float("nan")}, "finite number"),
    ({"name": "x", "value": "good"}, "finite number"),
    ({"name": "x", "value": 1, "source": "robot"}, "source='robot' is not allowed"),
    ({"name": "x"}, "give a value, a label"),
    ({"name": "x", "value": 1, "span_id": "nothex"}, "span_id='nothex'"),
])
def test_bad_score_arguments_raise_value_error_naming_them(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        llmobs.score(**kwargs)
