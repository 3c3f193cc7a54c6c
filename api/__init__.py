"""The HTTP API: Starlette handlers that parse, authorise, call `aia_engine`, render."""
