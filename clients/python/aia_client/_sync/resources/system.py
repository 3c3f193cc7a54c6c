"""`client.health`, `client.metrics` and `client.monitoring`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aia_client import models
from aia_client._sync.resources._base import SyncResource, drop_none
from aia_client._sync.resources.tasks import _segment, _time
from aia_client.errors import AIAServerError


class SyncHealth(SyncResource):
    def check(self) -> models.Health:
        """The API's health. A degraded API answers 503 with the same body: that is returned
        (look at `.status` and `.failing_services`), not raised."""
        try:
            return self._call(
                models.Health, "GET", "/health", idempotent=False, authenticated=False
            )
        except AIAServerError as exc:
            if exc.status == 503 and isinstance(exc.body, dict) and "services" in exc.body:
                return models.Health.model_validate(exc.body)
            raise

    def live(self) -> models.Alive:
        return self._call(models.Alive, "GET", "/health/live", authenticated=False)


class SyncMetrics(SyncResource):
    def get(self) -> models.Metrics:
        return self._call(models.Metrics, "GET", "/metrics")

    def prometheus(self) -> str:
        """The Prometheus exposition text (needs the admin scope)."""
        response = self._transport.request("GET", "/metrics/prometheus")
        return response.text


class SyncMonitoring(SyncResource):
    def track_user_activity(
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
        return self._call(
            models.ActivityRecorded, "POST", "/monitoring/track-user-activity", json=body
        )

    def user_analytics(self, user_id: str) -> models.UserAnalytics:
        return self._call(
            models.UserAnalytics, "GET", f"/monitoring/user-analytics/{_segment(user_id)}"
        )
