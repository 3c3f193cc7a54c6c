"""Batch files of tasks for scripts, sent through the SDK (`aia_client`).

    from aia_client import AIASyncClient
    from aia_engine.client import submit_file

    with AIASyncClient(client_id, client_secret, base_url="http://127.0.0.1:8000",
                       max_rate_limit_retries=None) as client:
        summary = submit_file(client, "tasks.jsonl", wait_for_tasks=True,
                              results="results.jsonl")
    print(summary.accepted, summary.rejected)

`aia-engine batch submit FILE` is this, with a progress bar. There is one HTTP client in the
repository, the SDK: this package keeps only what is about files.
"""

from aia_engine.client.batch import BatchSummary, Line, read_lines, submit_file

__all__ = ["BatchSummary", "Line", "read_lines", "submit_file"]
