"""What is embedded for an entity, and its hash (docs/semantic-search.md). Pure.

The text is the entity's type, its `name`, then chosen properties as "key: value", joined by
"; ", e.g. `customer: Acme Systems 5; industry: Technology; region: AMER; value score: 63.5`.
Keys are shown with their underscores and dots as spaces (`value_score` -> `value score`).

An entity with a `description` (a non-empty string) is embedded as its type and that
description alone, unless its type is configured: a description says what the entity is, and
names and codes only add noise (measured on the example graph, docs/semantic-search.md).

Which properties (AIA_SEARCH_TEXT_FIELDS, JSON {"type": ["field.path", ...]}):
- a type listed there: those field paths, in that order (a dotted path reads into nested
  objects: `address.city`); a missing or null field is left out;
- any other type: every string property, every number and every list of strings or numbers
  (items joined by ", "), in sorted key order; booleans, nulls and nested objects are left out
  (list them by path to embed them).
Whitespace runs become one space, each value is cut at 500 characters and the whole text at
AIA_SEARCH_TEXT_MAX_CHARS (default 2,000; the model itself reads 256 word pieces, about 1,000
characters of English). An entity is re-embedded only when this text changes (`text_hash`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from aia_engine.settings import Settings, get_settings

MAX_VALUE_CHARS = 500
SEPARATOR = "; "
_SPACES = re.compile(r"\s+")
_MISSING = object()


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _label(key: str) -> str:
    return _clean(key.replace("_", " ").replace(".", " "))


def _render(value: Any, *, explicit: bool) -> str | None:
    """A property value as embedded text, or None when it is not embedded."""
    if isinstance(value, bool):
        return ("true" if value else "false") if explicit else None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _clean(value)[:MAX_VALUE_CHARS] or None
    if isinstance(value, list):
        items = [_render(item, explicit=False) for item in value if not isinstance(item, bool)]
        joined = ", ".join(item for item in items if item)
        return joined[:MAX_VALUE_CHARS] or None
    if explicit and isinstance(value, dict):
        parts = (
            f"{_label(k)}: {v}" for k in sorted(value) if (v := _render(value[k], explicit=False))
        )
        return ", ".join(parts)[:MAX_VALUE_CHARS] or None
    return None


def _lookup(properties: Mapping[str, Any], path: str) -> Any:
    value: Any = properties
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def entity_text(
    node_type: str, properties: Mapping[str, Any], settings: Settings | None = None
) -> str:
    """The text embedded for a node of this type with these properties."""
    settings = settings or get_settings()
    configured = settings.search_text_fields.get(node_type)
    description = properties.get("description")
    if configured is None and isinstance(description, str) and _clean(description):
        # A description says what the entity is; a name or a code is mostly noise to the model
        # (on the example graph, names in the text keep the guide's query from ranking the
        # high-value technology customers first).
        described = f"{_label(node_type)}: {_clean(description)[:MAX_VALUE_CHARS]}"
        return described[: settings.search_text_max_chars].rstrip()
    name = properties.get("name")
    head = _label(node_type)
    rendered_name = _render(name, explicit=False) if not isinstance(name, list) else None
    if rendered_name:
        head = f"{head}: {rendered_name}"
    parts = [head]
    if configured is not None:
        for path in configured:
            if path == "name" and rendered_name:
                continue
            value = _lookup(properties, path)
            text = None if value is _MISSING else _render(value, explicit=True)
            if text:
                parts.append(f"{_label(path)}: {text}")
    else:
        for key in sorted(properties):
            if key == "name" and rendered_name:
                continue
            text = _render(properties[key], explicit=False)
            if text:
                parts.append(f"{_label(key)}: {text}")
    return SEPARATOR.join(parts)[: settings.search_text_max_chars].rstrip()


def text_hash(text: str) -> str:
    """sha256 (hex) of the embedded text: a vector is recomputed only when this changes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vector_model(encoder_name: str, settings: Settings | None = None) -> str:
    """The model name stored with a vector: the encoder's, plus a digest of the text settings
    when they are not the defaults, so that changing what is embedded (AIA_SEARCH_TEXT_FIELDS,
    AIA_SEARCH_TEXT_MAX_CHARS) re-indexes in the background like a model change."""
    settings = settings or get_settings()
    default_max = Settings.model_fields["search_text_max_chars"].default
    if not settings.search_text_fields and settings.search_text_max_chars == default_max:
        return encoder_name
    chosen = json.dumps(
        [settings.search_text_fields, settings.search_text_max_chars], sort_keys=True
    )
    return f"{encoder_name}+text.{hashlib.sha256(chosen.encode()).hexdigest()[:8]}"
