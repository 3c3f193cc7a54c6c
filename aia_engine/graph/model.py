"""What a node and a relationship are, and the checks every writer applies. Pure.

A node: `node_id` (unique in its client's graph), `type` (an identifier: its Cypher labels are
`Entity`, the type itself and the type in PascalCase, so `customer` matches `(n:Customer)`,
`(n:customer)` and `(n:Entity)`), `properties` (a JSON object).
A relationship: `relationship_id` (given, or derived from source, type and target, so the same
triple written twice is one relationship), `type` (an identifier, its one label), `source` and
`target` (node ids of the same graph), `properties`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_ID = 200
MAX_TYPE = 64
MAX_PROPERTIES_BYTES = 64 * 1024
TYPE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ENTITY_LABEL = "Entity"
NODE_RESERVED = frozenset({"node_id", "type"})
"""Property names a node may not set: its own fields, readable in Cypher as `n.node_id` and
`n.type`. Names starting with `__` are reserved for the engine."""
RELATIONSHIP_RESERVED = frozenset({"relationship_id", "type", "source", "target"})


class ItemError(ValueError):
    """One item of a write is wrong: `field` names where, the message says what to do."""

    def __init__(self, message: str, *, field: str, issue: str) -> None:
        super().__init__(message)
        self.field, self.issue = field, issue


@dataclass(frozen=True)
class NodeIn:
    node_id: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RelationshipIn:
    relationship_id: str
    type: str
    source: str
    target: str
    properties: dict[str, Any] = field(default_factory=dict)


def labels_for(node_type: str) -> frozenset[str]:
    """The Cypher labels of a node of this type."""
    pascal = "".join(part[:1].upper() + part[1:] for part in node_type.split("_") if part)
    return frozenset({ENTITY_LABEL, node_type, pascal or node_type})


def derived_relationship_id(source: str, rel_type: str, target: str) -> str:
    digest = hashlib.sha256(json.dumps([source, rel_type, target]).encode()).hexdigest()
    return f"rel_{digest[:24]}"


def check_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ItemError(f"{where} must be a non-empty string", field=where, issue="not an id")
    if len(value) > MAX_ID:
        raise ItemError(
            f"{where} is {len(value)} characters; at most {MAX_ID}", field=where, issue="too long"
        )
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ItemError(
            f"{where} holds a control character or a lone surrogate",
            field=where,
            issue="invalid character",
        )
    return value


def check_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not TYPE_RE.fullmatch(value):
        raise ItemError(
            f"{where} must be an identifier (a letter or _, then letters, digits or _; at most "
            f"{MAX_TYPE} characters), e.g. 'customer' or 'PURCHASED'",
            field=where,
            issue="not a type name",
        )
    return value


def check_properties(value: Any, where: str, reserved: frozenset[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ItemError(f"{where} must be a JSON object", field=where, issue="not an object")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ItemError(f"{where} has an empty key", field=where, issue="bad key")
        if key in reserved or key.startswith("__"):
            raise ItemError(
                f"{where}.{key} is reserved (the item's own field{'' if key in reserved else 's'}"
                f"{'' if key in reserved else ' starting with __'}); rename the property",
                field=f"{where}.{key}",
                issue="reserved name",
            )
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ItemError(
            f"{where} must be plain JSON (no NaN, Infinity or lone surrogates)",
            field=where,
            issue="not JSON",
        ) from None
    if _has_nul(value):
        raise ItemError(f"{where} holds a NUL character", field=where, issue="invalid character")
    if len(encoded.encode("utf-8")) > MAX_PROPERTIES_BYTES:
        raise ItemError(
            f"{where} is larger than {MAX_PROPERTIES_BYTES // 1024} KB",
            field=where,
            issue="too large",
        )
    return value


def node_from(item: Any, where: str = "entity") -> NodeIn:
    """A checked node from a client's JSON item (`node_id`, `type`, `properties`)."""
    if not isinstance(item, dict):
        raise ItemError(f"{where} must be a JSON object", field=where, issue="not an object")
    unknown = set(item) - {"node_id", "type", "properties"}
    if unknown:
        raise ItemError(
            f"{where} has unknown fields {sorted(unknown)}; a node has node_id, type, properties",
            field=f"{where}.{sorted(unknown)[0]}",
            issue="unknown field",
        )
    return NodeIn(
        node_id=check_id(item.get("node_id"), f"{where}.node_id"),
        type=check_type(item.get("type"), f"{where}.type"),
        properties=check_properties(item.get("properties"), f"{where}.properties", NODE_RESERVED),
    )


def relationship_from(item: Any, where: str = "relationship") -> RelationshipIn:
    """A checked relationship (`relationship_id` optional, `type`, `source`, `target`,
    `properties`)."""
    if not isinstance(item, dict):
        raise ItemError(f"{where} must be a JSON object", field=where, issue="not an object")
    unknown = set(item) - {"relationship_id", "type", "source", "target", "properties"}
    if unknown:
        raise ItemError(
            f"{where} has unknown fields {sorted(unknown)}; a relationship has relationship_id "
            "(optional), type, source, target, properties",
            field=f"{where}.{sorted(unknown)[0]}",
            issue="unknown field",
        )
    rel_type = check_type(item.get("type"), f"{where}.type")
    source = check_id(item.get("source"), f"{where}.source")
    target = check_id(item.get("target"), f"{where}.target")
    given = item.get("relationship_id")
    rel_id = (
        derived_relationship_id(source, rel_type, target)
        if given is None
        else check_id(given, f"{where}.relationship_id")
    )
    props = check_properties(item.get("properties"), f"{where}.properties", RELATIONSHIP_RESERVED)
    return RelationshipIn(rel_id, rel_type, source, target, props)


def _has_nul(value: Any) -> bool:
    """True if a key or string in `value` holds a NUL character (PostgreSQL's jsonb refuses
    it); the text backslash-u-0000 is not one."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
