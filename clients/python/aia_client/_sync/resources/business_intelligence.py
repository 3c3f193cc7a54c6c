"""`client.business_intelligence`: the dashboard and optimization cycles."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aia_client import models
from aia_client._sync.resources._base import SyncResource, drop_none
from aia_client._sync.resources.tasks import _key_header, _segment


class SyncBusinessIntelligence(SyncResource):
    def get_dashboard(self, month: str | None = None) -> models.Dashboard:
        """This client's dashboard (`month` as `YYYY-MM`; default: the latest month with data)."""
        return self._call(
            models.Dashboard,
            "GET",
            "/business-intelligence/dashboard",
            params=drop_none(month=month),
        )

    def execute_cycle(
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
        return self._call(
            models.CycleAccepted,
            "POST",
            "/business-intelligence/execute-cycle",
            json=body,
            create=True,
            headers=_key_header(idempotency_key),
        )

    def get_cycle(self, optimization_id: str) -> models.CycleView:
        return self._call(
            models.CycleView,
            "GET",
            f"/business-intelligence/cycles/{_segment(optimization_id)}",
        )

    def list_cycles(self, *, page_size: int = 50) -> Iterator[models.CycleSummary]:
        for cycle in self._pages(
            models.CycleList, "cycles", "/business-intelligence/cycles", {"limit": page_size}
        ):
            yield cycle

    def cancel_cycle(self, optimization_id: str) -> models.CycleCancelled:
        return self._call(
            models.CycleCancelled,
            "POST",
            f"/business-intelligence/cycles/{_segment(optimization_id)}/cancel",
            idempotent=True,
        )
