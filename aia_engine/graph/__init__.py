"""Each client's knowledge graph: nodes and relationships in PostgreSQL (one version per graph,
bumped by every write), written by the API, `aia-engine kg import` and the
`knowledge_graph_agent`, queried with Cypher over a cached networkx copy, and every change an
event in the event log (streams and webhooks)."""
