"""The stage lifecycle, in one package.

- `machine`   — the pure state machine: what a claim or a completion of a stage does, decided
                from the rows (no I/O). Both executors below follow it and are tested against it.
- `run`       — the Python executor: claim, run the agent, record the result (`execute_stage`).
- `fastpath`  — the SQL executor: the common outcomes in one round trip each, through the
                functions in `sql/` (`claim_stage.sql`, `complete_stage.sql`), which
                `aia_engine.db.repeatable` applies whenever their text changes.
- `settle`    — a task's progress and, once every stage has ended, its final status.
- `progress`  — persisting an agent's `ctx.progress` calls.
- `reconcile` — finding work a lost message left behind: expired leases, lost stages.
"""
