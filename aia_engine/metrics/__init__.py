"""Metrics: the guide's JSON (`GET /metrics`) and the Prometheus exposition."""
