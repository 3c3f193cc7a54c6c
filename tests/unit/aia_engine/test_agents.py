"""Built-in agents on the shipped sample data: real work, checked against figures computed here."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aia_engine.agents import AgentContext, get_agent, known_agents
from aia_engine.errors import AgentError, DatasetTooLargeForAgent, UnknownAgent


def ctx(
    stage: str = "s",
    inputs: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    requirements: dict[str, Any] | None = None,
    progress: list[Any] | None = None,
) -> AgentContext:
    return AgentContext(
        task_id="task_t",
        stage=stage,
        task="",
        inputs=inputs or {},
        params=params or {},
        requirements=requirements or {},
        _progress=(lambda p, r: progress.append((p, r))) if progress is not None else None,
    )


def test_registry_has_the_built_ins_and_rejects_unknown_names() -> None:
    assert {
        "sentiment_analysis_agent",
        "data_analysis_agent",
        "market_research_agent",
        "strategy_agent",
        "reporting_agent",
        "noop",
    } <= set(known_agents())
    with pytest.raises(UnknownAgent, match="'ghost'"):
        get_agent("ghost")


def test_sentiment_uses_vader_thresholds_and_reports_progress() -> None:
    progress: list[Any] = []
    texts = ["I love this, it is wonderful!", "This is terrible and I hate it.", "The box is blue."]
    out = get_agent("sentiment_analysis_agent").run(
        ctx(requirements={"texts": texts}, progress=progress)
    )
    assert out["counts"] == {"positive": 1, "negative": 1, "neutral": 1}
    assert out["sentiment"] == {"positive": 33.3, "negative": 33.3, "neutral": 33.3}
    assert out["most_negative"][0]["text"].startswith("This is terrible")
    assert progress[-1][0] == 100.0 and progress[-1][1]["processed_tickets"] == 3


def test_sentiment_over_support_tickets_groups_by_category() -> None:
    out = get_agent("sentiment_analysis_agent").run(
        ctx(requirements={"data_source": "support_tickets"})
    )
    assert out["total_texts"] == 30
    assert sum(g["count"] for g in out["by_group"]["groups"].values()) == 30


def test_sentiment_without_texts_fails_clearly() -> None:
    with pytest.raises(AgentError, match="no records"):
        get_agent("sentiment_analysis_agent").run(ctx())


def test_data_analysis_statistics_match_the_standard_library() -> None:
    records = [
        {"region": "n", "day": f"2025-01-0{i}", "sales": v} for i, v in enumerate([3, 5, 8, 13], 1)
    ]
    records += [{"region": "s", "day": "2025-01-05", "sales": 1}]
    out = get_agent("data_analysis_agent").run(
        ctx(requirements={"records": records}, params={"time_field": "day"})
    )
    values = [3, 5, 8, 13, 1]
    assert out["statistics"]["sales"]["mean"] == round(statistics.fmean(values), 4)
    assert out["statistics"]["sales"]["stdev"] == round(statistics.stdev(values), 4)
    assert out["group_by"]["groups"]["n"]["count"] == 4
    trend = out["trends"]["metrics"]["sales"]
    assert (trend["first"], trend["last"], trend["direction"]) == (3.0, 1.0, "decreasing")


def test_market_research_shares_growth_and_hhi() -> None:
    records = [
        {"segment": "a", "period": "p1", "revenue": 100},
        {"segment": "a", "period": "p2", "revenue": 150},
        {"segment": "b", "period": "p1", "revenue": 100},
        {"segment": "b", "period": "p2", "revenue": 50},
    ]
    out = get_agent("market_research_agent").run(ctx(requirements={"records": records}))
    assert out["market_size"] == 200
    assert out["segments"]["a"] == {
        "latest_value": 150,
        "share_pct": 75.0,
        "growth_pct": 50.0,
        "cagr_pct": 50.0,
    }
    assert out["hhi"] == 75.0**2 + 25.0**2
    assert (out["leader"], out["fastest_growing"], out["concentration"]) == ("a", "a", "high")


def test_strategy_rules_fire_with_rationale() -> None:
    market = {
        "segments": {
            "up": {"cagr_pct": 9.0, "share_pct": 10.0, "growth_pct": 40.0},
            "big": {"cagr_pct": 0.2, "share_pct": 60.0, "growth_pct": 1.0},
            "down": {"cagr_pct": -2.0, "share_pct": 30.0, "growth_pct": -8.0},
        },
        "hhi": 4600,
    }
    out = get_agent("strategy_agent").run(ctx(inputs={"m": market}))
    actions = {(r["rule"], r["target"]) for r in out["recommendations"]}
    assert {("R1", "up"), ("R2", "big"), ("R3", "down"), ("R4", "portfolio")} <= actions
    assert out["recommendations"][0]["priority"] == "high"
    assert all(r["rationale"] for r in out["recommendations"])


def test_strategy_with_nothing_to_say_maintains_course() -> None:
    out = get_agent("strategy_agent").run(ctx())
    assert out["recommendations"][0]["rule"] == "R0"


def test_report_assembles_upstream_outputs_into_json_and_markdown() -> None:
    market = get_agent("market_research_agent").run(
        ctx(requirements={"data_source": "market_segments"})
    )
    strategy = get_agent("strategy_agent").run(ctx(inputs={"stage_1": market}))
    out = get_agent("reporting_agent").run(
        ctx(inputs={"stage_1": market, "stage_3": strategy}, params={"title": "Q report"})
    )
    assert out["markdown"].startswith("# Q report")
    assert "## stage_1" in out["markdown"] and "## Recommendations" in out["markdown"]
    assert out["recommendations"] == strategy["recommendations"]
    assert any("Market size" in f for f in out["key_findings"])


def test_the_test_agent_fails_for_the_first_attempts_then_succeeds() -> None:
    import tests.agents  # noqa: F401  (registers `test_noop`, as AIA_AGENT_MODULES does)

    probe = get_agent("test_noop")
    with pytest.raises(AgentError):
        probe.run(ctx(params={"fail_attempts": 1}))
    attempt_two = ctx(params={"fail_attempts": 1})
    attempt_two.attempt = 2
    assert probe.run(attempt_two)["stage"] == "s"


def test_shipped_noop_takes_no_parameter_that_reaches_the_host() -> None:
    # A client may send anything in params: the shipped noop neither looks at files, nor
    # waits, nor fails on request; its answer is the same whether a path exists or not.
    noop = get_agent("noop")
    for path in ("/etc/passwd", "/definitely/not/here", "/root/.ssh/id_rsa"):
        started = time.monotonic()
        out = noop.run(
            ctx(
                params={
                    "fail_until_exists": path,
                    "sleep_s": 3600,
                    "fail": True,
                    "fail_attempts": 5,
                    "echo": path,
                }
            )
        )
        assert out == {"stage": "s", "upstream": [], "echo": path}
        assert time.monotonic() - started < 0.5


def test_unknown_dataset_lists_the_samples() -> None:
    with pytest.raises(AgentError, match="sample:support_tickets"):
        get_agent("data_analysis_agent").run(ctx(requirements={"data_source": "nope"}))


def test_market_research_without_data_fails_saying_how_to_name_a_sample() -> None:
    with pytest.raises(AgentError, match="no records") as caught:
        get_agent("market_research_agent").run(ctx())
    assert "sample:market_segments" in caught.value.message
    named = get_agent("market_research_agent").run(
        ctx(requirements={"data_source": "sample:market_segments"})
    )
    assert named["source"] == "dataset:market_segments (sample)" and named["market_size"] > 0


@dataclass
class Rows:
    """A stored dataset's handle over a list (the worker's streams from PostgreSQL)."""

    name: str
    items: list[dict[str, Any]]
    max_rows: int = 100

    @property
    def rows(self) -> int:
        return len(self.items)

    @property
    def columns(self) -> list[dict[str, Any]]:
        return []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def records(self) -> list[dict[str, Any]]:
        if self.rows > self.max_rows:
            raise DatasetTooLargeForAgent("too many", limit=self.max_rows)
        return list(self.items)


def test_a_named_dataset_is_read_through_the_context_own_before_sample() -> None:
    stored = {"market_segments": [{"segment": "a", "period": "p1", "revenue": 5}]}
    asked: list[str] = []

    def datasets(name: str) -> Rows | None:
        asked.append(name)
        return Rows(name, stored[name]) if name in stored else None

    def run(name: str) -> dict[str, Any]:
        c = ctx(requirements={"dataset_id": name})
        c.datasets = datasets
        return get_agent("market_research_agent").run(c)

    assert run("market_segments")["source"] == "dataset:market_segments"  # the stored one
    assert run("sample:market_segments")["source"] == "dataset:market_segments (sample)"
    assert asked == ["market_segments"]  # `sample:` never looks in the store
    with pytest.raises(AgentError, match="names no dataset"):
        run("gone")


def test_first_lookups_from_many_threads_all_see_the_built_ins() -> None:
    # A fresh interpreter, so discovery really happens under contention.
    import subprocess
    import sys

    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from aia_engine.agents import known_agents\n"
        "with ThreadPoolExecutor(16) as pool:\n"
        "    seen = list(pool.map(lambda _: 'noop' in known_agents(), range(64)))\n"
        "assert all(seen), seen\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_data_analysis_of_no_records_with_a_group_by_param() -> None:
    from aia_engine.agents.builtin.data_analysis import analyse

    out = analyse([], "empty", group_by="g")
    assert out["record_count"] == 0 and out["group_by"] == {"field": "g", "groups": {}}


def test_data_analysis_follows_at_most_max_time_points_and_says_so() -> None:
    from aia_engine.agents.builtin import data_analysis as da

    n = da.MAX_TIME_POINTS + 500
    records = (
        {"timestamp": f"t{i:07d}", "kind": "ab"[i % 2], "label": f"l{i % 7}", "v": float(i)}
        for i in range(n)
    )
    analysis = da.Analysis(None, None)
    for record in records:
        analysis.add(record)
    out = analysis.result("s")
    assert out["statistics"]["v"]["count"] == n  # every record counts in the statistics
    assert out["trends"]["time_points_cut"] is True
    assert out["trends"]["metrics"]["v"]["points"] == da.MAX_TIME_POINTS
    assert len(analysis.times) == da.MAX_TIME_POINTS
    # per-group series only for the leading group field (kind), not for label
    assert out["group_by"]["field"] == "kind" and set(out["group_trends"]["groups"]) == {"a", "b"}
    assert all(not g.series for g in analysis.candidates["label"].values())
    assert sum(len(g.series) for g in analysis.candidates["kind"].values()) == da.MAX_TIME_POINTS
