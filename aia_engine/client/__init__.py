"""A small client of the AIA Engine HTTP API for scripts: tokens, retries and batch files.

    from aia_engine.client import ApiClient, submit_file

    with ApiClient("http://127.0.0.1:8000", client_id, client_secret) as api:
        summary = submit_file(api, "tasks.jsonl", wait=True, results="results.jsonl")
    print(summary.accepted, summary.rejected)

`aia-engine batch submit FILE` is this, with a progress bar.
"""

from aia_engine.client.batch import BatchSummary, Line, read_lines, submit_file
from aia_engine.client.http import ApiClient, ApiError

__all__ = ["ApiClient", "ApiError", "BatchSummary", "Line", "read_lines", "submit_file"]
