"""`strategy_agent`: rule-based recommendations, each with its rationale and evidence.

Rules over the outputs of upstream stages (thresholds overridable through params):
  R1 grow     a segment growing >= `grow_cagr_pct` (5) per period with share < 30 %  -> invest (high)
  R2 defend   a segment with share >= 30 % growing < 1 % per period                 -> defend (medium)
  R3 decline  a segment whose value fell over the window                            -> review (medium)
  R4 concentration  HHI > 2,500                                                       -> diversify (low)
  R5 sentiment      negative share >= `negative_pct` (25)                             -> fix experience (high)
                    naming the group with the lowest average score when groups exist
  R6 metric decline a trend whose direction is decreasing                            -> investigate (medium)
With no rule firing, one "maintain course" recommendation says why.
"""

from __future__ import annotations

from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent

PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def _rec(
    rule: str, action: str, target: str, priority: str, rationale: str, **evidence: Any
) -> dict[str, Any]:
    return {
        "rule": rule,
        "action": action,
        "target": target,
        "priority": priority,
        "rationale": rationale,
        "evidence": evidence,
    }


def market_rules(market: dict[str, Any], grow_cagr: float) -> list[dict[str, Any]]:
    recs = []
    for name, seg in market.get("segments", {}).items():
        cagr, share, growth = seg.get("cagr_pct"), seg.get("share_pct", 0.0), seg.get("growth_pct")
        if cagr is not None and cagr >= grow_cagr and share < 30:
            recs.append(
                _rec(
                    "R1",
                    "invest",
                    name,
                    "high",
                    f"{name} grows {cagr}% per period and holds only {share}% of the market",
                    cagr_pct=cagr,
                    share_pct=share,
                )
            )
        elif cagr is not None and share >= 30 and cagr < 1:
            recs.append(
                _rec(
                    "R2",
                    "defend",
                    name,
                    "medium",
                    f"{name} is {share}% of the market but grows only {cagr}% per period",
                    cagr_pct=cagr,
                    share_pct=share,
                )
            )
        if growth is not None and growth < 0:
            recs.append(
                _rec(
                    "R3",
                    "review",
                    name,
                    "medium",
                    f"{name} shrank {abs(growth)}% over the window",
                    growth_pct=growth,
                )
            )
    if market.get("hhi", 0) > 2500:
        recs.append(
            _rec(
                "R4",
                "diversify",
                "portfolio",
                "low",
                f"the market is concentrated (HHI {market['hhi']})",
                hhi=market["hhi"],
            )
        )
    return recs


def sentiment_rules(sentiment: dict[str, Any], negative_pct: float) -> list[dict[str, Any]]:
    negative = sentiment.get("sentiment", {}).get("negative", 0.0)
    if negative < negative_pct:
        return []
    target, evidence = "customer experience", {"negative_pct": negative}
    groups = sentiment.get("by_group", {}).get("groups", {})
    if groups:
        worst = min(groups, key=lambda g: groups[g]["average_compound"])
        target = f"{sentiment['by_group']['field']}={worst}"
        evidence["worst_group"] = {worst: groups[worst]["average_compound"]}
    return [
        _rec(
            "R5",
            "improve",
            target,
            "high",
            f"{negative}% of customer texts are negative (threshold {negative_pct}%)",
            **evidence,
        )
    ]


def trend_rules(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    recs = []
    for metric, t in analysis.get("trends", {}).get("metrics", {}).items():
        if t["direction"] == "decreasing":
            recs.append(
                _rec(
                    "R6",
                    "investigate",
                    metric,
                    "medium",
                    f"{metric} is decreasing ({t['growth_pct']}% over {t['points']} points)",
                    growth_pct=t["growth_pct"],
                )
            )
    return recs


@agent(
    "strategy_agent",
    "Rule-based recommendations (invest, defend, review, diversify, improve, investigate) from "
    "upstream market, analysis and sentiment outputs, each with rationale and evidence.",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    recs: list[dict[str, Any]] = []
    grow_cagr = float(ctx.param("grow_cagr_pct", 5.0))
    negative_pct = float(ctx.param("negative_pct", 25.0))
    for output in ctx.inputs.values():
        if "segments" in output and "hhi" in output:
            recs += market_rules(dict(output), grow_cagr)
        if "sentiment" in output and "total_texts" in output:
            recs += sentiment_rules(dict(output), negative_pct)
        if "trends" in output:
            recs += trend_rules(dict(output))
    if not recs:
        recs.append(
            _rec(
                "R0",
                "maintain",
                "current strategy",
                "low",
                "no rule fired: no fast-growing, stagnant-leading or declining segment, "
                "and sentiment is within bounds",
            )
        )
    recs.sort(key=lambda r: PRIORITY_ORDER[r["priority"]])
    return {
        "recommendations": recs,
        "count": len(recs),
        "rules_fired": sorted({r["rule"] for r in recs}),
        "based_on": sorted(ctx.inputs),
    }
