"""Per-client request rate limits (tiers) and execution quotas."""
