"""The body of POST /business-intelligence/execute-cycle, validated (docs/bi-optimization.md).

The guide's fields: `cycle_type`, `focus_areas`, `constraints` {`budget_limit`, `time_horizon`,
`risk_tolerance`}. Each cycle type implies a default time horizon; an explicit `time_horizon`
is `N_days`, `N_weeks` or `N_months` (a month counted as 30 days), from 1 day to 24 months.
Anything else is refused with E072 (422) naming the field.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aia_engine.errors import InvalidCycleRequest, InvalidRequest
from aia_engine.validation import validate_model

CycleType = Literal[
    "weekly_optimization", "monthly_optimization", "quarterly_optimization", "annual_optimization"
]
FocusArea = Literal[
    "revenue", "customer_satisfaction", "customer_retention", "operational_efficiency"
]
Risk = Literal["low", "medium", "high"]

DEFAULT_HORIZON: dict[str, str] = {
    "weekly_optimization": "7_days",
    "monthly_optimization": "30_days",
    "quarterly_optimization": "90_days",
    "annual_optimization": "365_days",
}
UNIT_DAYS = {"day": 1, "week": 7, "month": 30}
MAX_HORIZON_DAYS = 730  # 24 months of 30 days
MAX_BUDGET = 1e12
_HORIZON = re.compile(r"([1-9][0-9]{0,3})_(day|week|month)s?")


def horizon_days(horizon: str) -> int:
    """Days of a time horizon written N_days / N_weeks / N_months (ValueError otherwise)."""
    match = _HORIZON.fullmatch(horizon)  # fullmatch: "$" would accept a final newline
    if not match:
        raise ValueError("must be N_days, N_weeks or N_months (e.g. 90_days)")
    days = int(match.group(1)) * UNIT_DAYS[match.group(2)]
    if days > MAX_HORIZON_DAYS:
        raise ValueError(f"must be at most {MAX_HORIZON_DAYS} days (24 months)")
    return days


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_limit: float = Field(
        ge=0, le=MAX_BUDGET, description="Most the chosen strategies may cost together (>= 0)"
    )
    time_horizon: str | None = Field(
        default=None,
        max_length=20,
        description="N_days, N_weeks or N_months (1 day to 24 months); default from cycle_type",
    )
    risk_tolerance: Risk = "medium"

    @field_validator("budget_limit", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # A JSON number, not a string or a boolean pydantic would coerce.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("time_horizon")
    @classmethod
    def _horizon(cls, value: str | None) -> str | None:
        if value is not None:
            horizon_days(value)
        return value


class CycleRequest(BaseModel):
    """The guide's execute-cycle body."""

    model_config = ConfigDict(extra="forbid")

    cycle_type: CycleType
    focus_areas: list[FocusArea] = Field(min_length=1, max_length=4)
    constraints: Constraints

    @field_validator("focus_areas")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a focus area twice")
        return value

    @property
    def horizon(self) -> str:
        return self.constraints.time_horizon or DEFAULT_HORIZON[self.cycle_type]

    @property
    def horizon_days(self) -> int:
        return horizon_days(self.horizon)

    def normalized(self) -> dict[str, Any]:
        """The request with its defaults filled in (what is stored and handed to the workflow)."""
        return {
            "cycle_type": self.cycle_type,
            "focus_areas": list(self.focus_areas),
            "constraints": {
                "budget_limit": self.constraints.budget_limit,
                "time_horizon": self.horizon,
                "risk_tolerance": self.constraints.risk_tolerance,
            },
            "horizon_days": self.horizon_days,
        }


def parse_cycle_request(data: Any) -> CycleRequest:
    """The validated body, or InvalidCycleRequest (E072) naming the first offending field."""
    try:
        return validate_model(CycleRequest, data)
    except InvalidRequest as exc:
        raise InvalidCycleRequest(exc.message, **exc.details) from exc
