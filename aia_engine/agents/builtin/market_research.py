"""`market_research_agent`: market size, segment shares, growth and concentration.

Input records carry a segment, a period and a value (params `segment_field`, `period_field`,
`value_field`; defaults segment / period / revenue). With no data it fails, saying how to give
some: sample data only when named (`data_source: "sample:market_segments"`).

* size: the sum of values in the latest period; share: a segment's part of it (%).
* growth_pct: latest over first period; cagr_pct: compound growth per period.
* hhi: Herfindahl-Hirschman index of the latest shares (0-10,000; > 2,500 is concentrated).
The output keeps the records, so a downstream data_analysis_agent can analyse their trends.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.builtin.inputs import find_records
from aia_engine.agents.registry import agent
from aia_engine.errors import AgentError


@agent(
    "market_research_agent",
    "Market size, segment shares, growth (total and per period) and HHI concentration from "
    "segment/period/value records; keeps the records for downstream analysis.",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    records, source = find_records(ctx)
    seg_f = str(ctx.param("segment_field", "segment"))
    per_f = str(ctx.param("period_field", "period"))
    val_f = str(ctx.param("value_field", "revenue"))
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for record in records:
        try:
            table[str(record[seg_f])][str(record[per_f])] = table[str(record[seg_f])].get(
                str(record[per_f]), 0.0
            ) + float(record[val_f])
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentError(
                f"market record {record!r} lacks a numeric {val_f!r} or a {seg_f!r}/{per_f!r}; "
                "set params segment_field / period_field / value_field",
                field="params.value_field",
            ) from exc
    periods = sorted({p for per_seg in table.values() for p in per_seg})
    if not periods:
        raise AgentError("no market records to analyse", field="requirements.records")
    first, latest = periods[0], periods[-1]
    size = sum(seg.get(latest, 0.0) for seg in table.values())
    segments: dict[str, Any] = {}
    for name, values in sorted(table.items()):
        start, end = values.get(first, 0.0), values.get(latest, 0.0)
        steps = len(periods) - 1
        segments[name] = {
            "latest_value": round(end, 2),
            "share_pct": round(100.0 * end / size, 2) if size else 0.0,
            "growth_pct": round(100.0 * (end - start) / start, 2) if start else None,
            "cagr_pct": round(100.0 * ((end / start) ** (1 / steps) - 1), 2)
            if start and end and steps
            else None,
        }
    hhi = round(sum(s["share_pct"] ** 2 for s in segments.values()), 1)
    leader = max(segments, key=lambda n: segments[n]["latest_value"])
    fastest = max(segments, key=lambda n: segments[n]["cagr_pct"] or float("-inf"))
    return {
        "source": source,
        "periods": {"first": first, "latest": latest, "count": len(periods)},
        "market_size": round(size, 2),
        "value_field": val_f,
        "segments": segments,
        "hhi": hhi,
        "concentration": "high" if hhi > 2500 else "moderate" if hhi > 1500 else "low",
        "leader": leader,
        "fastest_growing": fastest,
        "records": records,
    }
