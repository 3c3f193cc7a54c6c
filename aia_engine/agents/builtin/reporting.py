"""`reporting_agent`: an executive summary in JSON and Markdown assembled from upstream outputs.

Each upstream output is recognised by its shape (market research, data analysis, sentiment,
strategy) and contributes its key findings; anything else is listed by its top-level keys.
"""

from __future__ import annotations

from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent


def findings_of(stage: str, out: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if "segments" in out and "market_size" in out:
        found.append(
            f"Market size {out['market_size']:,.2f} in {out['periods']['latest']}; "
            f"leader {out['leader']}, fastest growing {out['fastest_growing']}, "
            f"concentration {out['concentration']} (HHI {out['hhi']})."
        )
    if "statistics" in out:
        found.append(
            f"{out['record_count']} records analysed, {len(out['numeric_fields'])} numeric fields."
        )
        for metric, t in out.get("trends", {}).get("metrics", {}).items():
            found.append(
                f"{metric} is {t['direction']} ({t['growth_pct']}% over {t['points']} points)."
            )
    if "sentiment" in out and "total_texts" in out:
        s = out["sentiment"]
        found.append(
            f"{out['total_texts']} texts: {s['positive']}% positive, {s['negative']}% negative, "
            f"{s['neutral']}% neutral (average compound {out['average_compound']})."
        )
    if "recommendations" in out:
        found.append(
            f"{out['count']} recommendations; top: "
            + "; ".join(f"{r['action']} {r['target']}" for r in out["recommendations"][:3])
            + "."
        )
    if not found:
        found.append(f"Stage {stage} produced: {', '.join(sorted(out)) or 'nothing'}.")
    return found


@agent(
    "reporting_agent",
    "Executive summary (JSON and Markdown) assembled from the outputs of upstream stages.",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    title = str(ctx.param("title") or ctx.description or "Executive summary")
    sections = {stage: findings_of(stage, dict(out)) for stage, out in ctx.inputs.items()}
    recommendations = [r for out in ctx.inputs.values() for r in out.get("recommendations", [])]
    lines = [f"# {title}", ""]
    for stage, findings in sections.items():
        lines += [f"## {stage}", *[f"- {f}" for f in findings], ""]
    if recommendations:
        lines += [
            "## Recommendations",
            *[
                f"{i}. **{r['action']} {r['target']}** ({r['priority']}): {r['rationale']}"
                for i, r in enumerate(recommendations, 1)
            ],
            "",
        ]
    if not sections:
        lines += ["No upstream results were given to this report."]
    return {
        "title": title,
        "key_findings": [f for findings in sections.values() for f in findings],
        "sections": sections,
        "recommendations": recommendations,
        "markdown": "\n".join(lines).rstrip() + "\n",
    }
