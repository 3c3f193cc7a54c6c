"""The SDK's source: every class here is async; `aia_client/_sync/` is generated from it."""
