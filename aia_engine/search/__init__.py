"""Semantic search over the knowledge graph (docs/semantic-search.md)."""
