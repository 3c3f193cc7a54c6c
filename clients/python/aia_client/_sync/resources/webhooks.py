"""`client.webhooks`: endpoints, secrets, test pings and deliveries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aia_client import models
from aia_client._sync.resources._base import SyncResource, drop_none
from aia_client._sync.resources.tasks import _segment


class SyncWebhooks(SyncResource):
    def register(
        self,
        webhook_url: str,
        events: Sequence[str],
        *,
        secret: str | None = None,
        active: bool | None = None,
    ) -> models.WebhookPublic:
        """Register an endpoint. The answer holds the signing secret: the only time it is shown
        (unless you chose it). Not retried after a network error: it could register twice."""
        body = drop_none(webhook_url=webhook_url, events=list(events), secret=secret, active=active)
        return self._call(models.WebhookPublic, "POST", "/webhooks/register", json=body)

    def list(self) -> models.WebhookList:
        return self._call(models.WebhookList, "GET", "/webhooks")

    def get(self, webhook_id: str) -> models.WebhookPublic:
        return self._call(models.WebhookPublic, "GET", f"/webhooks/{_segment(webhook_id)}")

    def update(
        self,
        webhook_id: str,
        *,
        webhook_url: str | None = None,
        events: Sequence[str] | None = None,
        active: bool | None = None,
    ) -> models.WebhookPublic:
        body = drop_none(
            webhook_url=webhook_url,
            events=list(events) if events is not None else None,
            active=active,
        )
        return self._call(
            models.WebhookPublic,
            "PATCH",
            f"/webhooks/{_segment(webhook_id)}",
            json=body,
            idempotent=True,
        )

    def delete(self, webhook_id: str) -> None:
        self._transport.request("DELETE", f"/webhooks/{_segment(webhook_id)}", idempotent=True)

    def rotate_secret(self, webhook_id: str) -> models.WebhookPublic:
        return self._call(
            models.WebhookPublic, "POST", f"/webhooks/{_segment(webhook_id)}/rotate-secret"
        )

    def test(self, webhook_id: str) -> models.WebhookDeliveryView:
        """Send a signed `webhook.test` ping now; the delivery's outcome."""
        return self._call(
            models.WebhookDeliveryView, "POST", f"/webhooks/{_segment(webhook_id)}/test"
        )

    def deliveries(
        self, webhook_id: str, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[models.DeliveryAttempt]:
        for delivery in self._pages(
            models.DeliveryList,
            "deliveries",
            f"/webhooks/{_segment(webhook_id)}/deliveries",
            {"status": status, "limit": page_size},
        ):
            yield delivery

    def get_delivery(self, delivery_id: str) -> models.WebhookDeliveryView:
        return self._call(
            models.WebhookDeliveryView, "GET", f"/webhooks/deliveries/{_segment(delivery_id)}"
        )

    def redeliver(self, delivery_id: str) -> models.WebhookDeliveryView:
        return self._call(
            models.WebhookDeliveryView,
            "POST",
            f"/webhooks/deliveries/{_segment(delivery_id)}/redeliver",
        )
