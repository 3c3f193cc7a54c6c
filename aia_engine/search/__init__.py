"""Semantic search over the knowledge graph's entities (docs/semantic-search.md): the encoder
(all-MiniLM-L6-v2, 384 dimensions, offline), the text embedded per entity, the vectors' storage
and the nearest-neighbour search."""
