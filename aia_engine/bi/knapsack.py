"""Exact 0/1 knapsack over real-valued costs: the set of strategies with the most total expected
impact whose total investment stays within the budget.

Method: a sparse dynamic programme over the Pareto frontier of (cost, value). Items are taken
in order; after each, the frontier holds every subset of the items so far that no other subset
beats (costs no more and yields no less), so the best subset of all items is on the final
frontier. Arithmetic is exact (`fractions.Fraction` of the given floats), so "within budget"
and "equal value" never depend on rounding, and the result equals an exhaustive search. The
frontier holds at most 2^n entries but, for catalogues of a few dozen strategies, stays small
(it only keeps subsets that are better in cost or value than all others).

Deterministic ties: among subsets of maximum value, the cheapest; among those, the one that
holds the earliest item (in the given order) where they differ. That order composes (a subset
extended by later items compares as the subset did), so the frontier can drop a tied subset at
once. Items with no positive value are never chosen (they add cost and nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Item:
    key: str
    value: float
    cost: float


@dataclass(frozen=True)
class Selection:
    chosen: tuple[str, ...]
    """Keys of the chosen items, in the given order."""
    total_value: float
    total_cost: float


@dataclass(frozen=True)
class _State:
    cost: Fraction
    value: Fraction
    mask: tuple[bool, ...]
    """Item i taken or not (prefix of the items seen so far)."""


def _prefers(a: _State, b: _State) -> bool:
    """a is better than b among subsets of equal cost and value: it holds the earliest item
    where they differ."""
    return a.mask > b.mask  # True > False: taking the earlier item wins


def _frontier(states: list[_State]) -> list[_State]:
    """The undominated states, cheapest first (ties of cost and value broken by `_prefers`)."""
    states.sort(key=lambda s: (s.cost, -s.value))
    kept: list[_State] = []
    for s in states:
        if kept and kept[-1].cost == s.cost and kept[-1].value == s.value:
            if _prefers(s, kept[-1]):
                kept[-1] = s
            continue
        if kept and kept[-1].value >= s.value:
            continue  # something no dearer yields as much
        kept.append(s)
    return kept


def best_selection(items: Sequence[Item], budget: float) -> Selection:
    """The subset of `items` with the greatest total value and total cost <= `budget`."""
    limit = Fraction(budget)
    states = [_State(Fraction(0), Fraction(0), ())]
    for item in items:
        value, cost = Fraction(item.value), Fraction(item.cost)
        grown = [_State(s.cost, s.value, (*s.mask, False)) for s in states]
        if value > 0 and cost >= 0:
            grown += [
                _State(s.cost + cost, s.value + value, (*s.mask, True))
                for s in states
                if s.cost + cost <= limit
            ]
        states = _frontier(grown)
    best = max(states, key=lambda s: (s.value, -s.cost, s.mask))
    chosen = tuple(item.key for item, taken in zip(items, best.mask, strict=True) if taken)
    return Selection(chosen, float(best.value), float(best.cost))
