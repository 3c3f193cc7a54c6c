"""Semantic search over the knowledge graph: the encoder, the entities' texts, their vectors
(indexing by workers, storage and nearest-neighbour search)."""
