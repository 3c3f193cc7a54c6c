"""`client.business_intelligence`: the dashboard and optimization cycles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aia_client import models
from aia_client._async.resources._base import AsyncResource, drop_none
from aia_client._async.resources.tasks import _key_header, _segment


class AsyncBusinessIntelligence(AsyncResource):
    async def get_dashboard(self, month: str | None = None) -> models.Dashboard:
        """This client's dashboard (`month` as `YYYY-MM`; default: the latest month with data)."""
        return await self._call(
            models.Dashboard,
            "GET",
            "/business-intelligence/dashboard",
            params=drop_none(month=month),
        )

    async def execute_cycle(
        self,
        cycle_type: str,
        focus_areas: Sequence[str],
        constraints: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> models.CycleAccepted:
        """Start an optimization cycle (a workflow; follow it with `get_cycle`)."""
        body = {
            "cycle_type": cycle_type,
            "focus_areas": list(focus_areas),
            "constraints": dict(constraints),
        }
        return await self._call(
            models.CycleAccepted,
            "POST",
            "/business-intelligence/execute-cycle",
            json=body,
            create=True,
            headers=_key_header(idempotency_key),
        )

    async def get_cycle(self, optimization_id: str) -> models.CycleView:
        return await self._call(
            models.CycleView,
            "GET",
            f"/business-intelligence/cycles/{_segment(optimization_id)}",
        )

    async def list_cycles(self, *, page_size: int = 50) -> AsyncIterator[models.CycleSummary]:
        async for cycle in self._pages(
            models.CycleList, "cycles", "/business-intelligence/cycles", {"limit": page_size}
        ):
            yield cycle

    async def cancel_cycle(self, optimization_id: str) -> models.CycleCancelled:
        return await self._call(
            models.CycleCancelled,
            "POST",
            f"/business-intelligence/cycles/{_segment(optimization_id)}/cancel",
            idempotent=True,
        )
