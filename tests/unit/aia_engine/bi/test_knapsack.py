"""The cycle's selection: the exact knapsack equals an exhaustive search (itertools over every
subset) on 200 seeded random catalogues, never passes the budget, and respects the filters."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from aia_engine.bi.knapsack import Item, best_selection
from aia_engine.bi.selection import select

RISKS = ("low", "medium", "high")


def brute_force(items: list[Item], budget: float) -> tuple[Fraction, Fraction]:
    """(best total value, least cost at that value) over every subset, exactly."""
    best = (Fraction(0), Fraction(0))
    for r in range(len(items) + 1):
        for subset in itertools.combinations(items, r):
            cost = sum((Fraction(i.cost) for i in subset), Fraction(0))
            value = sum((Fraction(i.value) for i in subset), Fraction(0))
            if cost <= Fraction(budget) and (value, -cost) > (best[0], -best[1]):
                best = (value, cost)
    return best


def brute_force_set(items: list[Item], budget: float) -> tuple[str, ...]:
    """The set the documented tie rule picks, by exhaustive search: the most value; among
    those, the cheapest; among those, the one holding the earliest item where two differ.
    Items with no positive value are never chosen."""
    best: tuple[Fraction, Fraction, tuple[bool, ...]] | None = None
    for mask in itertools.product((False, True), repeat=len(items)):
        taken = [i for i, t in zip(items, mask, strict=True) if t]
        if any(i.value <= 0 for i in taken):
            continue
        cost = sum((Fraction(i.cost) for i in taken), Fraction(0))
        value = sum((Fraction(i.value) for i in taken), Fraction(0))
        if cost > Fraction(budget):
            continue
        key = (value, -cost, mask)
        if best is None or key > (best[0], -best[1], best[2]):
            best = (value, cost, mask)
    assert best is not None
    return tuple(i.key for i, t in zip(items, best[2], strict=True) if t)


def random_items(rng: random.Random) -> tuple[list[Item], float]:
    n = rng.randint(0, 13)
    items = [
        Item(f"s{i}", round(rng.uniform(0, 30), rng.choice((0, 2, 6))), rng.uniform(0, 50_000))
        for i in range(n)
    ]
    if n and rng.random() < 0.3:  # equal values and costs: ties must still be exact
        items.append(Item(f"s{n}", items[0].value, items[0].cost))
    budget = rng.choice((0.0, rng.uniform(0, 150_000), sum(i.cost for i in items) / 2))
    return items, budget


@pytest.mark.parametrize("seed", range(200))
def test_knapsack_equals_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    items, budget = random_items(rng)
    got = best_selection(items, budget)
    chosen = [i for i in items if i.key in got.chosen]
    cost = sum((Fraction(i.cost) for i in chosen), Fraction(0))
    value = sum((Fraction(i.value) for i in chosen), Fraction(0))
    assert cost <= Fraction(budget)  # the budget is never passed
    best_value, least_cost = brute_force(items, budget)
    assert value == best_value
    assert cost == least_cost  # ties of value go to the cheapest set
    assert got.total_value == float(value) and got.total_cost == float(cost)
    assert got.chosen == brute_force_set(items, budget)  # and the very set the tie rule names


@pytest.mark.parametrize("seed", range(200))
def test_knapsack_set_equals_brute_force_under_many_ties(seed: int) -> None:
    """Values and costs from small grids, so many subsets tie on value and cost: the chosen
    set is exactly the one the documented tie rule picks."""
    rng = random.Random(5000 + seed)
    items = [
        Item(f"s{i}", float(rng.choice((0, 1, 2, 3, 5))), float(rng.choice((0, 1, 2, 4, 8))))
        for i in range(rng.randint(0, 12))
    ]
    budget = float(rng.choice((0, 1, 3, 5, 8, 12, 40)))
    assert best_selection(items, budget).chosen == brute_force_set(items, budget)


def test_ties_are_deterministic() -> None:
    items = [Item("a", 5.0, 10.0), Item("b", 5.0, 10.0), Item("c", 5.0, 10.0)]
    assert best_selection(items, 20.0).chosen == ("a", "b")
    assert best_selection(list(reversed(items)), 20.0).chosen == ("c", "b")


def test_zero_value_items_are_never_chosen() -> None:
    assert best_selection([Item("free", 0.0, 0.0), Item("x", 1.0, 5.0)], 5.0).chosen == ("x",)


def test_negative_and_zero_costs_are_reported_as_they_are() -> None:
    got = select(
        [strategy("refund", 5.0, -100.0, "low", 7), strategy("free", 2.0, 0.0, "low", 7)],
        budget=10.0,
        risk_tolerance="low",
        horizon_days=30,
    )
    by_name = {d["strategy"]: d for d in got["decisions"]}
    assert by_name["refund"]["chosen"] is False and by_name["refund"]["reason"] == "invalid_cost"
    assert by_name["free"]["chosen"] is True
    assert "None" not in by_name["free"]["explanation"]
    assert "needs no investment" in by_name["free"]["explanation"]
    assert got["total_investment"] == 0.0 and got["total_expected_impact"] == 2.0


def strategy(name: str, impact: float, cost: float, risk: str, days: int) -> dict[str, object]:
    return {
        "strategy": name,
        "focus_area": "revenue",
        "group": "revenue_strategies",
        "target_metric": "monthly_revenue",
        "expected_impact": impact,
        "investment_required": cost,
        "implementation_time": f"{days}_days",
        "implementation_days": days,
        "risk": risk,
    }


@pytest.mark.parametrize("seed", range(200))
def test_selection_respects_filters_and_is_optimal(seed: int) -> None:
    rng = random.Random(1000 + seed)
    strategies = [
        strategy(
            f"s{i}",
            round(rng.uniform(0, 20), 2),
            round(rng.uniform(0, 30_000), 2),
            rng.choice(RISKS),
            rng.choice((7, 14, 30, 60, 120)),
        )
        for i in range(rng.randint(1, 12))
    ]
    budget = round(rng.uniform(0, 80_000), 2)
    tolerance = rng.choice(RISKS)
    horizon = rng.choice((7, 30, 90, 365))
    got = select(strategies, budget=budget, risk_tolerance=tolerance, horizon_days=horizon)
    allowed = RISKS[: RISKS.index(tolerance) + 1]
    by_name = {d["strategy"]: d for d in got["decisions"]}
    assert len(by_name) == len(strategies)  # every strategy decided, once
    chosen = [by_name[s["strategy"]] for s in strategies if by_name[s["strategy"]]["chosen"]]
    for d in chosen:
        assert d["risk"] in allowed and d["implementation_days"] <= horizon
    total = sum(Fraction(d["investment_required"]) for d in chosen)
    assert total <= Fraction(budget)
    assert got["total_investment"] == round(float(total), 2)
    eligible = [
        Item(s["strategy"], s["expected_impact"], s["investment_required"])  # type: ignore[arg-type]
        for s in strategies
        if s["risk"] in allowed and s["implementation_days"] <= horizon  # type: ignore[operator]
    ]
    best_value, _ = brute_force(eligible, budget)
    assert sum(Fraction(d["expected_impact"]) for d in chosen) == best_value
    for d in got["decisions"]:
        if d["chosen"]:
            assert d["reason"] == "in_best_set"
        elif d["risk"] not in allowed:
            assert d["reason"] == "too_risky"
        elif d["implementation_days"] > horizon:
            assert d["reason"] == "too_slow"
        else:
            assert d["reason"] in ("no_impact", "over_budget", "lower_value_per_cost")
