"""`client.health`, `client.metrics` and `client.monitoring`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aia_client import models
from aia_client._async.resources._base import AsyncResource, drop_none
from aia_client._async.resources.tasks import _segment, _time
from aia_client.errors import AIAServerError


class AsyncHealth(AsyncResource):
    async def check(self) -> models.Health:
        """The API's health. A degraded API answers 503 with the same body: that is returned
        (look at `.status` and `.failing_services`), not raised."""
        try:
            return await self._call(
                models.Health, "GET", "/health", idempotent=False, authenticated=False
            )
        except AIAServerError as exc:
            if exc.status == 503 and isinstance(exc.body, dict) and "services" in exc.body:
                return models.Health.model_validate(exc.body)
            raise

    async def live(self) -> models.Alive:
        return await self._call(models.Alive, "GET", "/health/live", authenticated=False)


class AsyncMetrics(AsyncResource):
    async def get(self) -> models.Metrics:
        return await self._call(models.Metrics, "GET", "/metrics")

    async def prometheus(self) -> str:
        """The Prometheus exposition text (needs the admin scope)."""
        response = await self._transport.request("GET", "/metrics/prometheus")
        return response.text


class AsyncMonitoring(AsyncResource):
    async def track_user_activity(
        self,
        user_id: str,
        activity_type: str,
        *,
        session_id: str | None = None,
        timestamp: datetime | str | None = None,
        details: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> models.ActivityRecorded:
        body = drop_none(
            user_id=user_id,
            activity_type=activity_type,
            session_id=session_id,
            timestamp=_time(timestamp),
            details=details,
            context=context,
        )
        return await self._call(
            models.ActivityRecorded, "POST", "/monitoring/track-user-activity", json=body
        )

    async def user_analytics(self, user_id: str) -> models.UserAnalytics:
        return await self._call(
            models.UserAnalytics, "GET", f"/monitoring/user-analytics/{_segment(user_id)}"
        )
