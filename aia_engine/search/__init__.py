"""Semantic search over the knowledge graph (docs/semantic-search.md): the encoder, the
entities' texts, their vectors (indexing by workers, storage and nearest-neighbour search), the
search itself and its stage input."""
