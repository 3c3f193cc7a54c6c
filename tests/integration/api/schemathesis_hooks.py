"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by test_schemathesis.py): besides the
values the schema describes, send the inputs that once gave 500s.

- a NUL character (`%00`), or digits that are not ASCII (`²`, `٣`), in path and query values;
- numbers past what the storage or Python reads: 2**70 and 2**63 (past bigint), 2**53 (past
  exact JSON integers), ±1e308 (sums overflow a double), and integer literals of more than
  4,300 digits (past Python's int-from-text limit), put in place of any one value of a JSON body.
"""

from __future__ import annotations

import sys
from typing import Any

import schemathesis
from hypothesis import strategies as st

# The hooks run in schemathesis' process, which must be able to write the long literals.
sys.set_int_max_str_digits(0)

ODD_TEXT = ["\x00", "a\x00b", "\u00b2", "\u0663"]
HUGE = [2**70, -(2**70), 2**63, 2**53, 1e308, -1e308, 10**5000, -(10**4301)]


def _with_odd_value(values: dict[str, Any], key: str, odd: str) -> dict[str, Any]:
    value = values[key]
    shown = "" if value is None else str(value)
    return {**values, key: odd if odd != "\x00" else shown + odd}


def _odd_variants(values: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if not values:
        return st.just(values)
    keys = sorted(values)
    odd = st.builds(
        _with_odd_value, st.just(values), st.sampled_from(keys), st.sampled_from(ODD_TEXT)
    )
    return st.one_of(st.just(values), odd)


@schemathesis.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    return _odd_variants(path_parameters)


@schemathesis.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    return _odd_variants(query)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replaced(copy[head], rest, new)
    return copy


def _with_huge_number(body: Any, pick: int, number: Any) -> Any:
    leaves = _leaves(body)
    return _replaced(body, leaves[pick % len(leaves)], number)


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict | list):
        return st.just(body)
    huge = st.builds(
        _with_huge_number, st.just(body), st.integers(0, 10_000), st.sampled_from(HUGE)
    )
    return st.one_of(st.just(body), huge)
