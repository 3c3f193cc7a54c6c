"""The guide's tiers. Each is a token bucket (capacity = burst, refilled at the per-minute
rate) with an hourly cap on top (a fixed window on the clock hour), plus a cap on active tasks."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TierLimits(BaseModel):
    per_hour: int = Field(ge=1)
    per_minute: int = Field(ge=1)
    burst: int = Field(ge=1)
    max_active_tasks: int = Field(default=500, ge=1)

    @property
    def refill_per_s(self) -> float:
        return self.per_minute / 60.0


DEFAULT_TIERS: dict[str, TierLimits] = {
    "free": TierLimits(per_hour=100, per_minute=10, burst=20),
    "developer": TierLimits(per_hour=1_000, per_minute=50, burst=100),
    "business": TierLimits(per_hour=10_000, per_minute=500, burst=1_000),
    "enterprise": TierLimits(per_hour=100_000, per_minute=5_000, burst=10_000),
}
