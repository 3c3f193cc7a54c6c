"""Re-export: the tiers live in `aia_engine.tiers`, below `settings`, so that `settings` need not
import `limits` (which imports `db`, which imports `settings`). Kept so the limiter modules and
their callers need no edit; point them at `aia_engine.tiers` and delete this file."""

from aia_engine.tiers import DEFAULT_TIERS, TierLimits

__all__ = ["DEFAULT_TIERS", "TierLimits"]
