"""Semantic search over a client's knowledge graph: `semantic_search`, used by POST
/knowledge-graph/semantic-search and by the `semantic_search` stage input.

A search embeds its query with the process's encoder (384 dimensions), asks the index for the
nearest entities of the client's graph (`aia_engine.search.store.nearest`: cosine similarity,
the threshold, the type and property filters applied there), then reads those entities (type,
properties) in one query. `similarity_score` is the cosine the index computed, rounded to 4
places.

`match_explanation` is evidence, computed for each result, never a canned sentence:

- *Closest fields*: each field the entity's embedded text holds (its type, and each property
  whose value appears in that text) is embedded on its own as "key: value", and the fields
  with the highest cosine to the query are named with it, e.g. `industry 'Technology' (0.62)`.
  Done for the first AIA_SEARCH_EXPLAIN_TOP results (10); field vectors are cached by their
  text in the process (LRU), so repeated values ("industry: Technology") are embedded once.
- *Query terms found*: the query's words (less stop words) that occur in the entity's
  embedded text, as words (case and a plural "s" aside): `technology, customers`.

The encoder, the index and the entity text are the search package's (`encoder.get_encoder`,
`store.nearest`, `texts.entity_text`); tests may pass stand-ins as keyword arguments.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from aia_engine.db.models import KgNode
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidSemanticSearch
from aia_engine.graph.model import NODE_RESERVED, TYPE_RE
from aia_engine.search.texts import vector_model
from aia_engine.settings import Settings

Vector = npt.NDArray[np.float32]
Scalar = str | int | float | bool

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_ENTITY_TYPES = 50
MAX_FILTERS = 20

API_FIELDS = frozenset(
    {"query", "limit", "threshold", "include_explanations", "entity_types", "filters"}
)
STAGE_FIELDS = frozenset({"query", "limit", "threshold", "entity_types", "filters"})

FIELDS_SHOWN = 2
"""Closest fields named in an explanation."""
VALUE_SHOWN = 40
"""Characters of a field's value shown in an explanation."""
FIELD_CACHE_ITEMS = 10_000
"""Field vectors kept per process (1.5 KB each)."""


class Encoder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vector: ...


class Hit(Protocol):
    @property
    def node_id(self) -> str: ...

    @property
    def score(self) -> float: ...


Nearest = Callable[..., Sequence[Hit]]
"""`nearest(session, client_id, query_vec, *, limit, threshold, entity_types, property_filters)`"""
EntityText = Callable[[str, Mapping[str, Any], Settings], str]
"""`entity_text(node_type, properties, settings)`: the text embedded for an entity."""


@dataclass(frozen=True)
class SearchSpec:
    query: str
    limit: int = DEFAULT_LIMIT
    threshold: float = 0.0
    include_explanations: bool = True
    entity_types: tuple[str, ...] | None = None
    filters: Mapping[str, Scalar] | None = None


def parse_search(
    raw: Any, where: str, settings: Settings, *, fields: frozenset[str] = API_FIELDS
) -> SearchSpec:
    """A search request (the endpoint's body, or a stage's `semantic_search` param), checked.
    `where` prefixes the field names in errors ("body", "workflow.s1.params.semantic_search")."""
    if not isinstance(raw, Mapping):
        name = where or "body"
        raise _bad(f"{name} must be an object with a `query`", name, "not an object", raw)
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise _bad(
            f"{where or 'body'} has an unknown field {unknown[0]!r}; it takes "
            f"{', '.join(sorted(fields))}",
            _at(where, unknown[0]),
            "unknown field",
            unknown[0],
        )
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _bad(
            f"{_at(where, 'query')} must be text to search for (not blank)",
            _at(where, "query"),
            "missing" if query is None else "blank" if isinstance(query, str) else "not text",
            query,
        )
    most = settings.search_query_max_chars
    if len(query) > most:
        raise _bad(
            f"{_at(where, 'query')} is {len(query)} characters; at most {most} "
            "(AIA_SEARCH_QUERY_MAX_CHARS)",
            _at(where, "query"),
            "too long",
            query,
            limit=most,
        )
    limit = raw.get("limit", DEFAULT_LIMIT)
    if not _is_int(limit) or not 1 <= limit <= MAX_LIMIT:
        raise _bad(
            f"{_at(where, 'limit')} must be an integer from 1 to {MAX_LIMIT}",
            _at(where, "limit"),
            "out of range" if _is_int(limit) else "not an integer",
            limit,
        )
    threshold = raw.get("threshold", 0.0)
    if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
        raise _bad(
            f"{_at(where, 'threshold')} must be a number from 0 to 1 (a cosine similarity)",
            _at(where, "threshold"),
            "out of range" if _is_number(threshold) else "not a number",
            threshold,
        )
    explain = raw.get("include_explanations", True)
    if not isinstance(explain, bool):
        raise _bad(
            f"{_at(where, 'include_explanations')} must be true or false",
            _at(where, "include_explanations"),
            "not a boolean",
            explain,
        )
    return SearchSpec(
        query=query,
        limit=limit,
        threshold=float(threshold),
        include_explanations=explain,
        entity_types=_entity_types(raw.get("entity_types"), _at(where, "entity_types")),
        filters=_filters(raw.get("filters"), _at(where, "filters")),
    )


def _entity_types(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(f"{field} must be a list of entity types", field, "not a list", value)
    if len(value) > MAX_ENTITY_TYPES:
        raise _bad(
            f"{field} lists {len(value)} types; at most {MAX_ENTITY_TYPES}", field, "too many", None
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not TYPE_RE.fullmatch(item):
            raise _bad(
                f"{field}[{i}] must be an entity type: a letter or _, then letters, digits or _ "
                "(e.g. customer)",
                f"{field}[{i}]",
                "not a type name",
                item,
            )
    return tuple(dict.fromkeys(value)) or None  # empty: no filter, as in the graph stream


def _filters(value: Any, field: str) -> dict[str, Scalar] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _bad(f"{field} must be an object {{property: value}}", field, "not an object", value)
    if len(value) > MAX_FILTERS:
        raise _bad(
            f"{field} has {len(value)} properties; at most {MAX_FILTERS}", field, "too many", None
        )
    for key, item in value.items():
        if not key or key in NODE_RESERVED or key.startswith("__"):
            hint = "; filter types with entity_types" if key == "type" else ""
            raise _bad(
                f"{field}: {key!r} is not a property an entity can have{hint}",
                f"{field}.{key}",
                "not a property name",
                key,
            )
        if not isinstance(item, str | bool) and not _is_number(item):
            raise _bad(
                f"{field}.{key} must be a string, a number or a boolean the property equals",
                f"{field}.{key}",
                "not a scalar",
                item,
            )
    return dict(value) or None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _bad(message: str, field: str, issue: str, value: Any, **details: Any) -> InvalidSemanticSearch:
    shown = value[:200] + "..." if isinstance(value, str) and len(value) > 200 else value
    if isinstance(shown, dict | list):
        shown = f"<{type(value).__name__}>"
    return InvalidSemanticSearch(message, field=field, issue=issue, provided_value=shown, **details)


# -- the search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One result: the entity, its cosine to the query, and the evidence of the match."""

    node_id: str
    type: str
    properties: dict[str, Any]
    score: float
    explanation: str | None = None


def semantic_search(
    sessions: Sessions,
    client_id: str,
    request: SearchSpec,
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    nearest: Nearest | None = None,
    entity_text: EntityText | None = None,
) -> dict[str, Any]:
    """The guide's answer: {search_id, results [{entity_id, similarity_score,
    match_explanation, entity_data, entity_type}], query_vector_dimensions, search_time_ms}."""
    started = time.perf_counter()
    found = search(
        sessions,
        client_id,
        request,
        settings,
        encoder=encoder,
        nearest=nearest,
        entity_text=entity_text,
    )
    results = [
        {
            "entity_id": f.node_id,
            "similarity_score": round(f.score, 4),
            "match_explanation": f.explanation,
            "entity_data": f.properties,
            "entity_type": f.type,
        }
        for f in found
    ]
    return {
        "search_id": f"kgs_{secrets.token_hex(12)}",
        "results": results,
        "query_vector_dimensions": (encoder or _default_encoder()).dim,
        "search_time_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def search(
    sessions: Sessions,
    client_id: str,
    request: SearchSpec,
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    nearest: Nearest | None = None,
    entity_text: EntityText | None = None,
) -> list[Found]:
    """The entities of `client_id`'s graph nearest to `request.query`, best first."""
    encoder = encoder or _default_encoder()
    nearest = nearest or _default_nearest()
    query_vec = encoder.encode([request.query])[0]
    with sessions.begin() as session:
        hits = nearest(
            session,
            client_id,
            query_vec,
            limit=request.limit,
            threshold=request.threshold,
            entity_types=list(request.entity_types) if request.entity_types else None,
            property_filters=dict(request.filters) if request.filters else None,
            model=vector_model(encoder.name, settings),
            ef_search=settings.search_hnsw_ef_search,
        )
        nodes = _load(session, client_id, [h.node_id for h in hits])
    found = [
        Found(h.node_id, nodes[h.node_id][0], nodes[h.node_id][1], float(h.score))
        for h in hits
        if h.node_id in nodes  # deleted since it was indexed
    ]
    if not request.include_explanations or not found:
        return found
    explanations = explain(
        request.query,
        query_vec,
        [(f.type, f.properties) for f in found],
        encoder,
        settings,
        entity_text=entity_text or _default_entity_text(),
        owner=client_id,
    )
    return [
        Found(f.node_id, f.type, f.properties, f.score, e)
        for f, e in zip(found, explanations, strict=True)
    ]


def _load(
    session: Session, client_id: str, node_ids: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    if not node_ids:
        return {}
    rows = session.execute(
        select(KgNode.node_id, KgNode.type, KgNode.properties).where(
            KgNode.client_id == client_id, KgNode.node_id.in_(list(node_ids))
        )
    )
    return {r.node_id: (r.type, dict(r.properties or {})) for r in rows}


# -- explanations ---------------------------------------------------------------------------

STOP_WORDS = frozenset({
    "a", "an", "and", "any", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
    "into", "is", "it", "its", "of", "on", "or", "our", "that", "the", "their", "them", "these",
    "this", "those", "to", "was", "were", "what", "which", "who", "with", "all", "about", "show",
    "find", "me", "my", "some", "give", "list", "get",
})  # fmt: skip
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
"""Words: runs of letters and digits (`value_score` is two words, `high-value` too)."""


def query_terms(query: str) -> list[str]:
    """The query's words worth finding in an entity: lower case, no stop words, no one-letter
    words, each once, in the query's order."""
    words = (w.lower() for w in _WORD.findall(query))
    return list(dict.fromkeys(w for w in words if len(w) > 1 and w not in STOP_WORDS))


def _forms(word: str) -> set[str]:
    """A word and its singular guesses: `switches` -> switche, switch; `customers` -> customer."""
    forms = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
    return forms


def terms_found(terms: Sequence[str], text: str) -> list[str]:
    """The terms that occur in `text` as words (ignoring case and a plural s or es)."""
    words = {w.lower() for w in _WORD.findall(text)}
    singular = set().union(*(_forms(w) for w in words)) if words else set()
    return [t for t in terms if _forms(t) & singular]


def fields_of(node_type: str, properties: Mapping[str, Any], text: str) -> list[tuple[str, str]]:
    """The entity's fields its embedded text holds, as (key, value shown): its type, then each
    scalar property whose value appears in `text` (so AIA_SEARCH_TEXT_FIELDS is respected)."""
    fields = [("type", node_type)]
    for key, value in properties.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        shown = " ".join(value.split()) if isinstance(value, str) else str(value)
        if shown and shown in text:
            fields.append((key, shown))
    return fields


def field_text(key: str, value: str) -> str:
    """What is embedded for one field: `industry: Technology`, `value score: 63.5`."""
    return f"{key.replace('_', ' ')}: {value}"


def explain(
    query: str,
    query_vec: Vector,
    entities: Sequence[tuple[str, Mapping[str, Any]]],
    encoder: Encoder,
    settings: Settings,
    *,
    entity_text: EntityText,
    cache: FieldVectors | None = None,
    owner: str = "",
) -> list[str]:
    """One explanation per (type, properties), in order (see the module's docstring)."""
    cache = cache if cache is not None else _FIELD_VECTORS
    terms = query_terms(query)
    texts = [entity_text(t, p, settings) for t, p in entities]
    top = settings.search_explain_top
    fields = [fields_of(t, p, text) for (t, p), text in zip(entities[:top], texts, strict=False)]
    vectors = cache.vectors(
        encoder,
        list(dict.fromkeys(field_text(k, v) for fs in fields for k, v in fs)),
        owner=owner,
    )
    out = []
    for i, text in enumerate(texts):
        parts = []
        if i < len(fields) and fields[i]:
            scored = sorted(
                ((float(vectors[field_text(k, v)] @ query_vec), k, v) for k, v in fields[i]),
                key=lambda s: -s[0],
            )[:FIELDS_SHOWN]
            parts.append(
                "Closest fields: "
                + ", ".join(f"{k} {_quoted(v)} ({score:.2f})" for score, k, v in scored)
            )
        found = terms_found(terms, text)
        parts.append(
            f"query terms found: {', '.join(found)}" if found else "no query term found as a word"
        )
        sentence = "; ".join(parts)
        out.append(sentence[:1].upper() + sentence[1:])
    return out


def _quoted(value: str) -> str:
    shown = value if len(value) <= VALUE_SHOWN else value[: VALUE_SHOWN - 1] + "…"
    return f"'{shown}'"


class FieldVectors:
    """Vectors of field texts, least recently used first out, shared by the process's threads."""

    def __init__(self, max_items: int = FIELD_CACHE_ITEMS) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0
        """Texts embedded so far (the rest came from the cache)."""

    def vectors(
        self, encoder: Encoder, texts: Sequence[str], *, owner: str = ""
    ) -> dict[str, Vector]:
        """`owner` (the client) is part of the key: whether a text was cached (the search's
        time) must not tell one client what another's entities hold."""
        out: dict[str, Vector] = {}
        with self._lock:
            for t in texts:
                if (owner, t) in self._items:
                    self._items.move_to_end((owner, t))
                    out[t] = self._items[(owner, t)]
        missing = [t for t in texts if t not in out]
        if missing:
            encoded = encoder.encode(missing)
            with self._lock:
                self.encoded += len(missing)
                for t, v in zip(missing, encoded, strict=True):
                    out[t] = self._items[(owner, t)] = v
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return out


_FIELD_VECTORS = FieldVectors()


# -- the search package's parts, imported when first used -----------------------------------


def _default_encoder() -> Encoder:
    from aia_engine.search.encoder import get_encoder

    return get_encoder()


def _default_nearest() -> Nearest:
    from aia_engine.search.store import nearest

    return nearest


def _default_entity_text() -> EntityText:
    from aia_engine.search.texts import entity_text

    return entity_text
