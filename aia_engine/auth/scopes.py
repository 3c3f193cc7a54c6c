"""Scopes: `read` for GETs, `write` for changes, `admin` for operator endpoints."""

from __future__ import annotations

from aia_engine.errors import InvalidRequest

KNOWN_SCOPES = ("read", "write", "admin")
TIERS = ("free", "developer", "business", "enterprise")


def parse_scopes(text: str | None) -> list[str]:
    """Space-separated scopes, validated and de-duplicated, in canonical order."""
    wanted = set((text or "").split())
    unknown = sorted(wanted - set(KNOWN_SCOPES))
    if unknown:
        raise InvalidRequest(
            f"unknown scope {unknown[0]!r}; scopes are {', '.join(KNOWN_SCOPES)}",
            field="scope",
            issue="unknown scope",
            provided_value=text,
        )
    return [s for s in KNOWN_SCOPES if s in wanted]


def format_scopes(scopes: list[str]) -> str:
    return " ".join(s for s in KNOWN_SCOPES if s in scopes)
