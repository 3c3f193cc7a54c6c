"""Which graph changes a subscriber asked for: the `entity_types` and `change_types` filters of
`GET /knowledge-graph/stream`. Pure.

A change passes when its entity type is asked for and its change type is asked for (a filter
that is absent, or holds no value, asks for every one):
- a node change (`created`, `updated`, `deleted`): the node's type;
- a relationship change (`relationship_added`, `relationship_removed`): the type of its source
  node (the change's `entity_type`, as `entity_id` is the source's id; the relationship's own
  type is `relationship.type` and is not filtered on);
- an `imported` summary (one per import chunk): its change type passes when `imported` is asked
  for or any change type it counts (above zero) is; its entity type passes when any of its
  `entity_types` is asked for.
Entity types match exactly, as stored (`customer` is not `Customer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aia_engine.errors import InvalidRequest, UnknownChangeType
from aia_engine.graph.changes import CHANGE_TYPES, SUMMARY
from aia_engine.graph.model import TYPE_RE

FILTER_CHANGE_TYPES = (*CHANGE_TYPES, SUMMARY)
"""What `change_types` takes, in the order the API lists them."""
MAX_VALUES = 100
"""At most this many distinct values per filter."""


@dataclass(frozen=True)
class ChangeFilter:
    entity_types: frozenset[str] | None = None
    """None: every entity type."""
    change_types: frozenset[str] | None = None
    """None: every change type, summaries included."""

    def accepts(self, data: Mapping[str, Any]) -> bool:
        """Whether a change (the `data` of a graph event body) passes."""
        if data.get("change_type") == SUMMARY:
            return self._accepts_summary(data)
        if self.change_types is not None and data.get("change_type") not in self.change_types:
            return False
        return self.entity_types is None or data.get("entity_type") in self.entity_types

    def _accepts_summary(self, data: Mapping[str, Any]) -> bool:
        if self.change_types is not None and SUMMARY not in self.change_types:
            counted = {kind for kind, n in (data.get("changes") or {}).items() if n}
            if not counted & self.change_types:
                return False
        if self.entity_types is None:
            return True
        return any(t in self.entity_types for t in data.get("entity_types") or ())


def split_values(raw: Iterable[str]) -> list[str]:
    """Values given comma-separated, repeated, or both (`a,b&x=c`), blanks dropped, in order."""
    return list(dict.fromkeys(v.strip() for item in raw for v in item.split(",") if v.strip()))


def parse_filter(entity_types: Iterable[str], change_types: Iterable[str]) -> ChangeFilter:
    """The filter the query parameters ask for (each a list of raw values as given).

    Raises `UnknownChangeType` for a change type outside `FILTER_CHANGE_TYPES`, and
    `InvalidRequest` for an entity type that cannot be one, or too many values."""
    entities = split_values(entity_types)
    changes = split_values(change_types)
    for name, values in (("entity_types", entities), ("change_types", changes)):
        if len(values) > MAX_VALUES:
            raise InvalidRequest(
                f"{name} lists {len(values)} values; at most {MAX_VALUES} are allowed",
                field=name,
                issue="too many values",
            )
    for value in entities:
        if not TYPE_RE.fullmatch(value):
            raise InvalidRequest(
                f"{value[:100]!r} is not an entity type: types are identifiers (letters, digits "
                "and _, not starting with a digit, at most 64 characters); separate several "
                "with commas",
                field="entity_types",
                issue="not an entity type",
                provided_value=value[:100],
            )
    for value in changes:
        if value not in FILTER_CHANGE_TYPES:
            raise UnknownChangeType(value, FILTER_CHANGE_TYPES)
    return ChangeFilter(
        frozenset(entities) if entities else None, frozenset(changes) if changes else None
    )
