"""`sentiment_analysis_agent`: VADER sentiment over texts from the requirements or upstream stages.

A text is positive when VADER's compound score is >= 0.05, negative when <= -0.05, otherwise
neutral (the thresholds VADER's authors recommend). Percentages are of all scored texts.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from aia_engine.agents.base import AgentContext
from aia_engine.agents.builtin.inputs import find_texts
from aia_engine.agents.registry import agent

POSITIVE, NEGATIVE = 0.05, -0.05
BATCH = 50


@cache
def analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def label(compound: float) -> str:
    if compound >= POSITIVE:
        return "positive"
    if compound <= NEGATIVE:
        return "negative"
    return "neutral"


def _shares(counts: dict[str, int], total: int) -> dict[str, float]:
    return {
        k: round(100.0 * counts.get(k, 0) / total, 1) if total else 0.0
        for k in ("positive", "negative", "neutral")
    }


@agent(
    "sentiment_analysis_agent",
    "Scores texts with the VADER lexicon: shares of positive/negative/neutral, average compound "
    "score, most positive and negative texts, and per-group figures (params.group_by).",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    texts, records, source = find_texts(ctx)
    vader = analyzer()
    scores: list[float] = []
    counts: dict[str, int] = defaultdict(int)
    for start in range(0, len(texts), BATCH):
        for text in texts[start : start + BATCH]:
            compound = float(vader.polarity_scores(text)["compound"])
            scores.append(compound)
            counts[label(compound)] += 1
        done = len(scores)
        ctx.progress(
            100.0 * done / max(1, len(texts)),
            {
                "processed_tickets": done,
                "total_tickets": len(texts),
                "preliminary_sentiment": _shares(counts, done),
            },
        )
    ranked = sorted(zip(scores, texts, strict=True), key=lambda pair: pair[0])
    result: dict[str, Any] = {
        "source": source,
        "total_texts": len(texts),
        "sentiment": _shares(counts, len(texts)),
        "counts": {k: counts.get(k, 0) for k in ("positive", "negative", "neutral")},
        "average_compound": round(sum(scores) / len(scores), 4) if scores else 0.0,
        "most_negative": [{"text": t[:200], "compound": s} for s, t in ranked[:3] if s < 0],
        "most_positive": [{"text": t[:200], "compound": s} for s, t in ranked[::-1][:3] if s > 0],
    }
    group_by = ctx.param("group_by") or (
        "category" if records and "category" in records[0] else None
    )
    if records and group_by:
        result["by_group"] = _by_group(records, scores, str(group_by))
    return result


def _by_group(records: list[dict[str, Any]], scores: list[float], field: str) -> dict[str, Any]:
    groups: dict[str, list[float]] = defaultdict(list)
    for record, score in zip(records, scores, strict=True):
        groups[str(record.get(field))].append(score)
    out: dict[str, Any] = {"field": field, "groups": {}}
    for name, values in sorted(groups.items()):
        counts: dict[str, int] = defaultdict(int)
        for value in values:
            counts[label(value)] += 1
        out["groups"][name] = {
            "count": len(values),
            "average_compound": round(sum(values) / len(values), 4),
            "sentiment": _shares(counts, len(values)),
        }
    return out
