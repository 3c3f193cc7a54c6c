"""AIA_AGENT_MODULES: operators (and the test suite) register more agents by module name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROBE = "from aia_engine.agents import known_agents\nprint(' '.join(known_agents()))\n"


def agents_with(modules: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIA_")}
    env["PYTHONPATH"] = str(ROOT)
    if modules is not None:
        env["AIA_AGENT_MODULES"] = modules
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_test_agent_exists_only_where_it_is_asked_for() -> None:
    shipped = agents_with(None)
    assert shipped.returncode == 0, shipped.stderr
    assert "noop" in shipped.stdout.split() and "test_noop" not in shipped.stdout.split()
    extended = agents_with('["tests.agents"]')
    assert extended.returncode == 0, extended.stderr
    assert "test_noop" in extended.stdout.split()


def test_a_module_that_cannot_be_imported_stops_the_process_naming_it() -> None:
    broken = agents_with('["no_such_agents_module"]')
    assert broken.returncode != 0
    assert "AIA_AGENT_MODULES names 'no_such_agents_module'" in broken.stderr
