"""What a stage may store: outputs checked before they are written, errors that always fit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aia_engine.errors import StageLost, StageOutputNotStorable
from aia_engine.storable import encode_output, storable_error
from api.errors import CATALOGUE


def reason(output: Any, max_bytes: int = 10_000) -> str:
    with pytest.raises(StageOutputNotStorable) as caught:
        encode_output(output, stage="s", agent="a", max_bytes=max_bytes)
    assert caught.value.code == "E020"
    return str(caught.value.details["reason"])


def test_outputs_json_cannot_hold_are_refused_before_writing() -> None:
    assert reason({"p25": float("-inf")}) == "not_json"
    assert reason({"x": float("nan")}) == "not_json"
    assert reason({"when": object()}) == "not_json"
    assert reason(["not", "an", "object"]) == "not_object"


def test_outputs_over_the_limit_are_refused_with_both_sizes() -> None:
    with pytest.raises(StageOutputNotStorable) as caught:
        encode_output({"pad": "é" * 600}, stage="s", agent="a", max_bytes=1024)
    details = caught.value.details
    assert details["reason"] == "too_large" and details["limit_bytes"] == 1024
    assert details["size_bytes"] == len(json.dumps({"pad": "é" * 600})) > 1024


def test_a_storable_output_is_its_json_text() -> None:
    out = {"x": 1e308, "s": "naïve", "n": None}
    assert json.loads(encode_output(out, stage="s", agent="a", max_bytes=1024)) == out


def test_errors_postgresql_would_refuse_are_cleaned_and_others_kept() -> None:
    fine = {"type": "AgentError", "code": "E010", "message": "bad \\u0000 text", "details": {}}
    assert storable_error(fine) is fine  # an escaped backslash, not a NUL
    nul = {"type": "ValueError", "code": "E022", "message": "a\x00b", "details": {"v": 1}}
    assert storable_error(nul) == {
        "type": "ValueError",
        "code": "E022",
        "message": "a\\x00b",
        "details": {},
    }
    lone = storable_error({"type": "X", "code": "E022", "message": "\ud800!", "details": {}})
    assert lone["message"] == "\\ud800!"
    nan = storable_error(
        {"type": "X", "code": "E010", "message": "m", "details": {"v": float("nan")}}
    )
    assert nan["details"] == {} and nan["message"] == "m"


def test_the_new_stage_codes_are_documented_in_the_catalogue() -> None:
    for cls in (StageOutputNotStorable, StageLost):
        entry = CATALOGUE[cls.code]
        assert entry.type == cls.type and entry.description
