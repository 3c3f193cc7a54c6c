"""`client.knowledge_graph`: Cypher queries, semantic search, entities and relationships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aia_client import models
from aia_client._sync.resources._base import SyncResource, drop_none
from aia_client._sync.resources.tasks import _segment


class SyncKnowledgeGraph(SyncResource):
    def query(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        format: str | None = None,
        include_metadata: bool | None = None,
    ) -> models.GraphQueryResult:
        """Run a read-only Cypher query over this client's graph."""
        body = drop_none(
            query=query, parameters=parameters, format=format, include_metadata=include_metadata
        )
        return self._call(
            models.GraphQueryResult, "POST", "/knowledge-graph/query", json=body, idempotent=True
        )

    def semantic_search(
        self,
        query: str,
        limit: int | None = None,
        *,
        threshold: float | None = None,
        include_explanations: bool | None = None,
        entity_types: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> models.SemanticSearchResult:
        """The entities nearest in meaning to `query`, best first."""
        body = drop_none(
            query=query,
            limit=limit,
            threshold=threshold,
            include_explanations=include_explanations,
            entity_types=list(entity_types) if entity_types is not None else None,
            filters=filters,
        )
        return self._call(
            models.SemanticSearchResult,
            "POST",
            "/knowledge-graph/semantic-search",
            json=body,
            idempotent=True,
        )

    def summary(self) -> models.GraphSummaryView:
        return self._call(models.GraphSummaryView, "GET", "/knowledge-graph")

    def get_entity(self, node_id: str) -> models.GraphNodeView:
        return self._call(
            models.GraphNodeView, "GET", f"/knowledge-graph/entities/{_segment(node_id)}"
        )

    def upsert_entities(self, entities: Sequence[Mapping[str, Any]]) -> models.GraphWriteResult:
        """Create or update entities (`{"node_id", "type", "properties"}` each): writing the same
        entity again changes nothing, so this is retried safely."""
        return self._call(
            models.GraphWriteResult,
            "POST",
            "/knowledge-graph/entities",
            json={"entities": list(entities)},
            idempotent=True,
        )

    def upsert_relationships(
        self, relationships: Sequence[Mapping[str, Any]]
    ) -> models.GraphWriteResult:
        return self._call(
            models.GraphWriteResult,
            "POST",
            "/knowledge-graph/relationships",
            json={"relationships": list(relationships)},
            idempotent=True,
        )

    def delete_entity(self, node_id: str) -> models.GraphNodeDeleted:
        return self._call(
            models.GraphNodeDeleted, "DELETE", f"/knowledge-graph/entities/{_segment(node_id)}"
        )
