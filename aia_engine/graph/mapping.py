"""The `knowledge_graph_agent`'s mapping: which nodes and relationships a stage makes from its
upstream outputs. Pure: checked when the workflow is submitted (`parse_mapping`, raising
`InvalidGraphMapping` naming the field), applied when the stage runs (`build_items`).

    {"entities": [{"from": "stage_1.segments", "node_id": "segment_{_key}", "type": "segment",
                   "properties": {"share_pct": "share_pct"}, "merge": true}],
     "relationships": [{"from": "stage_3.recommendations", "type": "RECOMMENDS",
                        "source": "recommendation_{rule}", "target": "segment_{target}",
                        "properties": ["priority"]}]}

* `from`: a dependency's name (or `requirements`), then a dotted path into its output
  (`stage_1.segments`, `stage_2.group_by.groups`, `requirements.records`; a list position is a
  number). A list gives one item per element; an object one item per entry (`{_key}` is the
  entry's key); with `"single": true` the object itself is the one item.
* `node_id`, `source`, `target`, `relationship_id` (optional: derived from source, type and
  target when absent) are templates: text with `{field}` placeholders (a dotted path into the
  item; `{_key}`, `{_index}`; `{{` and `}}` for literal braces) filled with the item's string
  or integer fields.
* `type`: the node or relationship type, an identifier.
* `properties`: a list of field paths (each copied under its own name), an object
  `{"property": "field path"}`, or `"*"` (every field of the item but the reserved names).
  A field the item lacks is left out.
* `merge` (entities only, default false): merge properties into the stored node's key by key
  instead of replacing them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aia_engine.errors import GraphWriteRefused, InvalidGraphMapping
from aia_engine.graph.model import (
    NODE_RESERVED,
    RELATIONSHIP_RESERVED,
    ItemError,
    NodeIn,
    RelationshipIn,
    check_type,
    node_from,
    relationship_from,
)

MAX_MAPPINGS = 20
MAX_ITEMS = 50_000
"""Nodes and relationships one stage may write (more fails the stage with E048)."""
MAX_ERRORS_SHOWN = 100
REQUIREMENTS = "requirements"
_FIELD = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
ENTITY_KEYS = frozenset({"from", "node_id", "type", "properties", "merge", "single"})
RELATIONSHIP_KEYS = frozenset(
    {"from", "type", "source", "target", "relationship_id", "properties", "single"}
)


@dataclass(frozen=True)
class Template:
    parts: tuple[str | tuple[str, ...], ...]
    """Literal text, or a field path (a tuple of keys) to fill in."""

    def render(self, item: Mapping[str, Any], key: str | None, index: int, where: str) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _lookup(item, part, key, index)
            if isinstance(value, bool) or not isinstance(value, str | int):
                shown = ".".join(part)
                problem = "is missing" if value is None else "is not a string or an integer"
                raise ItemError(
                    f"{where}: field {shown!r} {problem}", field=where, issue="missing field"
                )
            out.append(str(value))
        return "".join(out)


@dataclass(frozen=True)
class Source:
    stage: str
    """A dependency's name, or `requirements`."""
    path: tuple[str, ...]
    single: bool


@dataclass(frozen=True)
class EntityMap:
    source: Source
    node_id: Template
    type: str
    properties: str | tuple[tuple[str, tuple[str, ...]], ...]
    """"*", or (property name, field path) pairs."""
    merge: bool


@dataclass(frozen=True)
class RelationshipMap:
    source: Source
    type: str
    source_id: Template
    target_id: Template
    relationship_id: Template | None
    properties: str | tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class GraphMapping:
    entities: tuple[EntityMap, ...]
    relationships: tuple[RelationshipMap, ...]


@dataclass(frozen=True)
class Built:
    """What a stage will write, and the items its mapping could not make."""

    nodes: list[tuple[NodeIn, bool]]
    node_origins: list[dict[str, Any]]
    relationships: list[RelationshipIn]
    relationship_origins: list[dict[str, Any]]
    errors: list[dict[str, Any]]


# -- checking, at submit ------------------------------------------------------------------


def parse_mapping(
    params: Mapping[str, Any], where: str, dependencies: Collection[str]
) -> GraphMapping:
    """The mapping in a stage's `params` (`where` is e.g. "workflow.record.params")."""
    entities = _list_of(params.get("entities", []), f"{where}.entities")
    relationships = _list_of(params.get("relationships", []), f"{where}.relationships")
    if not entities and not relationships:
        raise _bad(
            f"{where}: give at least one mapping in entities or relationships",
            f"{where}.entities",
            "no mapping",
            None,
        )
    if len(entities) + len(relationships) > MAX_MAPPINGS:
        raise _bad(
            f"{where}: {len(entities) + len(relationships)} mappings; at most {MAX_MAPPINGS}",
            f"{where}.entities",
            "too many mappings",
            len(entities) + len(relationships),
        )
    return GraphMapping(
        tuple(_entity(m, f"{where}.entities[{i}]", dependencies) for i, m in enumerate(entities)),
        tuple(
            _relationship(m, f"{where}.relationships[{i}]", dependencies)
            for i, m in enumerate(relationships)
        ),
    )


def _entity(raw: Any, where: str, deps: Collection[str]) -> EntityMap:
    body = _object(raw, where, ENTITY_KEYS)
    return EntityMap(
        source=_source(body, where, deps),
        node_id=_template(body.get("node_id"), f"{where}.node_id"),
        type=_type(body.get("type"), f"{where}.type"),
        properties=_properties(body.get("properties", []), f"{where}.properties", NODE_RESERVED),
        merge=_flag(body.get("merge", False), f"{where}.merge"),
    )


def _relationship(raw: Any, where: str, deps: Collection[str]) -> RelationshipMap:
    body = _object(raw, where, RELATIONSHIP_KEYS)
    rel_id = body.get("relationship_id")
    return RelationshipMap(
        source=_source(body, where, deps),
        type=_type(body.get("type"), f"{where}.type"),
        source_id=_template(body.get("source"), f"{where}.source"),
        target_id=_template(body.get("target"), f"{where}.target"),
        relationship_id=None if rel_id is None else _template(rel_id, f"{where}.relationship_id"),
        properties=_properties(
            body.get("properties", []), f"{where}.properties", RELATIONSHIP_RESERVED
        ),
    )


def _object(raw: Any, where: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _bad(f"{where} must be an object", where, "not an object", raw)
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise _bad(
            f"{where} has an unknown field {unknown[0]!r}; its fields are {', '.join(sorted(keys))}",
            f"{where}.{unknown[0]}",
            "unknown field",
            unknown[0],
        )
    return raw


def _list_of(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _bad(f"{where} must be a list of mappings", where, "not a list", raw)
    return raw


def _source(body: Mapping[str, Any], where: str, deps: Collection[str]) -> Source:
    raw = body.get("from")
    field = f"{where}.from"
    if not isinstance(raw, str) or not raw:
        raise _bad(
            f"{field} must name a dependency's output, e.g. 'stage_1.segments'",
            field,
            "missing",
            raw,
        )
    # Stage names may hold dots: the longest dependency the text starts with wins.
    stage = max(
        (d for d in [*deps, REQUIREMENTS] if raw == d or raw.startswith(d + ".")),
        key=len,
        default=None,
    )
    if stage is None:
        known = ", ".join(sorted(deps)) or "none"
        raise _bad(
            f"{field} {raw!r} must start with one of the stage's dependencies ({known}) or "
            f"'{REQUIREMENTS}', then a dotted path into it",
            field,
            "not a dependency",
            raw,
        )
    rest = raw[len(stage) + 1 :]
    if rest and not _FIELD.fullmatch(rest):
        raise _bad(
            f"{field}: {rest!r} is not a dotted path (letters, digits, _ and -, separated by .)",
            field,
            "bad path",
            raw,
        )
    return Source(
        stage,
        tuple(rest.split(".")) if rest else (),
        _flag(body.get("single", False), f"{where}.single"),
    )


def _template(raw: Any, where: str) -> Template:
    if not isinstance(raw, str) or not raw:
        raise _bad(f"{where} must be a template such as 'customer_{{id}}'", where, "missing", raw)
    parts: list[str | tuple[str, ...]] = []
    last = 0
    for match in _PLACEHOLDER.finditer(raw):
        parts.append(raw[last : match.start()])
        last = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise _bad(
                f"{where}: unbalanced {token!r} in {raw!r}; write {token * 2} for a literal one",
                where,
                "bad template",
                raw,
            )
        else:
            name = match.group(1).strip()
            if not _FIELD.fullmatch(name):
                raise _bad(
                    f"{where}: {{{match.group(1)}}} does not name a field (a dotted path)",
                    where,
                    "bad template",
                    raw,
                )
            parts.append(tuple(name.split(".")))
    parts.append(raw[last:])
    return Template(tuple(p for p in parts if p != ""))


def _type(raw: Any, where: str) -> str:
    try:
        return check_type(raw, where)
    except ItemError as exc:
        raise _bad(str(exc), where, exc.issue, raw) from None


def _properties(
    raw: Any, where: str, reserved: frozenset[str]
) -> str | tuple[tuple[str, tuple[str, ...]], ...]:
    if raw == "*":
        return "*"
    if isinstance(raw, list):
        pairs = [(f, f) for f in raw]
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        raise _bad(
            f'{where} must be a list of fields, an object {{property: field}} or "*"',
            where,
            "wrong type",
            raw,
        )
    out = []
    for name, field in pairs:
        if not isinstance(field, str) or not _FIELD.fullmatch(field):
            raise _bad(f"{where}: {field!r} is not a field path", where, "bad field", field)
        if not isinstance(name, str) or not name or name in reserved or name.startswith("__"):
            raise _bad(
                f"{where}: property name {name!r} is reserved or empty; rename it with the "
                'object form {"new_name": "field"}',
                where,
                "reserved name",
                name,
            )
        out.append((name, tuple(field.split("."))))
    return tuple(out)


def _flag(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise _bad(f"{where} must be true or false", where, "not a boolean", raw)
    return raw


def _bad(message: str, field: str, issue: str, value: Any) -> InvalidGraphMapping:
    shown = value if isinstance(value, str | int | float | bool) or value is None else None
    return InvalidGraphMapping(message, field=field, issue=issue, provided_value=shown)


# -- applying, when the stage runs ---------------------------------------------------------


def build_items(
    mapping: GraphMapping,
    inputs: Mapping[str, Mapping[str, Any]],
    requirements: Mapping[str, Any],
) -> Built:
    """The nodes and relationships the mapping makes from the stage's inputs. A `from` that
    names nothing usable fails the stage (E048); a wrong item is listed in `errors`."""
    built = Built([], [], [], [], [])
    for i, emap in enumerate(mapping.entities):
        label = f"entities[{i}]"
        for index, key, item in _items(emap.source, inputs, requirements, label, built):
            origin = _origin(label, index, key)
            try:
                node = node_from(
                    {
                        "node_id": emap.node_id.render(item, key, index, "node_id"),
                        "type": emap.type,
                        "properties": _props(emap.properties, item, key, index, NODE_RESERVED),
                    }
                )
            except ItemError as exc:
                built.errors.append(item_error(origin, exc))
                continue
            built.nodes.append((node, emap.merge))
            built.node_origins.append(origin)
    for i, rmap in enumerate(mapping.relationships):
        label = f"relationships[{i}]"
        for index, key, item in _items(rmap.source, inputs, requirements, label, built):
            origin = _origin(label, index, key)
            try:
                body: dict[str, Any] = {
                    "type": rmap.type,
                    "source": rmap.source_id.render(item, key, index, "source"),
                    "target": rmap.target_id.render(item, key, index, "target"),
                    "properties": _props(rmap.properties, item, key, index, RELATIONSHIP_RESERVED),
                }
                if rmap.relationship_id is not None:
                    body["relationship_id"] = rmap.relationship_id.render(
                        item, key, index, "relationship_id"
                    )
                rel = relationship_from(body)
            except ItemError as exc:
                built.errors.append(item_error(origin, exc))
                continue
            built.relationships.append(rel)
            built.relationship_origins.append(origin)
    return built


def item_error(origin: Mapping[str, Any], exc: ItemError) -> dict[str, Any]:
    """One wrong item, as the stage's output lists it."""
    field = exc.field.removeprefix("entity.").removeprefix("relationship.")
    return {**origin, "field": field, "issue": exc.issue, "message": str(exc)}


def _origin(label: str, index: int, key: str | None) -> dict[str, Any]:
    origin: dict[str, Any] = {"mapping": label, "index": index}
    if key is not None:
        origin["key"] = key
    return origin


def _items(
    source: Source,
    inputs: Mapping[str, Mapping[str, Any]],
    requirements: Mapping[str, Any],
    label: str,
    built: Built,
) -> list[tuple[int, str | None, Mapping[str, Any]]]:
    root: Any = inputs.get(source.stage)
    if root is None and source.stage == REQUIREMENTS:
        root = requirements
    value = _walk(root, source.path)
    shown = ".".join((source.stage, *source.path))
    if value is None or (source.single and not isinstance(value, Mapping)):
        raise GraphWriteRefused(
            f"{label}.from: {shown!r} is not in the output of {source.stage!r}"
            if value is None
            else f"{label}.from: {shown!r} is not an object (single: true takes one object)",
            field=f"{label}.from",
            provided_value=shown,
        )
    if source.single:
        return [(0, None, value)]
    if isinstance(value, list):
        entries: Sequence[tuple[str | None, Any]] = [(None, v) for v in value]
    elif isinstance(value, Mapping):
        entries = [(str(k), v) for k, v in value.items()]
    else:
        raise GraphWriteRefused(
            f"{label}.from: {shown!r} is a {type(value).__name__}, not a list or an object",
            field=f"{label}.from",
            provided_value=shown,
        )
    found = []
    for index, (key, item) in enumerate(entries):
        if isinstance(item, Mapping):
            found.append((index, key, item))
        else:
            built.errors.append(
                {
                    **_origin(label, index, key),
                    "field": "from",
                    "issue": "not an object",
                    "message": f"{shown}: item {index} is not an object",
                }
            )
    return found


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _lookup(item: Mapping[str, Any], path: tuple[str, ...], key: str | None, index: int) -> Any:
    if path == ("_key",) and "_key" not in item:
        return key
    if path == ("_index",) and "_index" not in item:
        return index
    return _walk(item, path)


def _props(
    spec: str | tuple[tuple[str, tuple[str, ...]], ...],
    item: Mapping[str, Any],
    key: str | None,
    index: int,
    reserved: frozenset[str],
) -> dict[str, Any]:
    if isinstance(spec, str):  # "*"
        return {k: v for k, v in item.items() if k not in reserved and not k.startswith("__")}
    out: dict[str, Any] = {}
    for name, path in spec:
        value = _lookup(item, path, key, index)
        if value is not None:
            out[name] = value
    return out
