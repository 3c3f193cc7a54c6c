"""`.env.example` lists every setting, under the name the settings object reads."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from aia_engine.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def env_names(name: str, alias: object) -> set[str]:
    if isinstance(alias, AliasChoices):
        return {str(c) for c in alias.choices}
    return {f"AIA_{name.upper()}"}


def test_env_example_names_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    missing = [
        name
        for name, info in Settings.model_fields.items()
        if not env_names(name, info.validation_alias) & listed
    ]
    assert not missing, f".env.example does not list: {missing}"


def test_env_example_names_nothing_unknown() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    known = set().union(
        *(env_names(n, i.validation_alias) for n, i in Settings.model_fields.items())
    )
    compose_only = {"POSTGRES_PASSWORD", "API_PUBLISH_PORT", "FLOWER_PUBLISH_PORT"}
    assert listed - known - compose_only == set()
