"""Webhook registration: the guide's body, URL safety, secrets encrypted and never shown, tenancy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from aia_engine.db.models import Webhook
from aia_engine.webhooks.crypto import decrypt
from tests.integration.conftest import Services

GUIDE_BODY = {
    "webhook_url": "https://hooks.example/aia-webhook",
    "events": ["task.completed", "task.failed", "system.alert"],
    "secret": "your_webhook_secret",
    "active": True,
}


def test_register_the_guides_body_and_read_it_back(
    authed: Callable[..., httpx.Client], services: Services
) -> None:
    with authed() as http:
        r = http.post("/webhooks/register", json=GUIDE_BODY)
        assert r.status_code == 201, r.text
        hook = r.json()
        assert (
            hook["webhook_url"] == GUIDE_BODY["webhook_url"]
            and hook["events"] == GUIDE_BODY["events"]
        )
        assert "secret" not in hook and "your_webhook_secret" not in r.text
        assert http.get(f"/webhooks/{hook['webhook_id']}").json() == hook
        assert [h["webhook_id"] for h in http.get("/webhooks").json()["webhooks"]] == [
            hook["webhook_id"]
        ]
    with services.sessions.begin() as session:
        row = session.scalars(select(Webhook).where(Webhook.id == hook["webhook_id"])).one()
        assert "your_webhook_secret" not in row.secret_encrypted
        assert decrypt(row.secret_encrypted, services.settings) == "your_webhook_secret"


def test_a_generated_secret_is_shown_once(authed: Callable[..., httpx.Client]) -> None:
    body = {k: v for k, v in GUIDE_BODY.items() if k != "secret"}
    with authed() as http:
        created = http.post("/webhooks/register", json=body).json()
        assert created["secret"].startswith("whs_")
        assert "secret" not in http.get(f"/webhooks/{created['webhook_id']}").json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/",
        "http://internal.example/hook",
        "http://nowhere.example/",
        "ftp://hooks.example/",
        "http://a@hooks.example/",
    ],
)
def test_unsafe_urls_are_refused_with_e007(authed: Callable[..., httpx.Client], url: str) -> None:
    with authed() as http:
        r = http.post("/webhooks/register", json={**GUIDE_BODY, "webhook_url": url})
    assert r.status_code == 422 and r.json()["error"]["code"] == "E007"
    assert r.json()["error"]["details"]["field"] == "webhook_url"


def test_operator_allow_list_admits_an_internal_receiver(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed() as http:
        ok = http.post(
            "/webhooks/register", json={**GUIDE_BODY, "webhook_url": "http://127.0.0.1:9999/hook"}
        )
        other_port = http.post(
            "/webhooks/register", json={**GUIDE_BODY, "webhook_url": "http://127.0.0.1:9998/"}
        )
    assert ok.status_code == 201 and other_port.status_code == 422


def test_bad_bodies(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        unknown_event = http.post(
            "/webhooks/register", json={**GUIDE_BODY, "events": ["task.exploded"]}
        )
        no_events = http.post("/webhooks/register", json={**GUIDE_BODY, "events": []})
        short_secret = http.post("/webhooks/register", json={**GUIDE_BODY, "secret": "short"})
    assert unknown_event.status_code == no_events.status_code == short_secret.status_code == 422
    assert "task.exploded" in unknown_event.json()["error"]["message"]


def test_update_rotate_delete(authed: Callable[..., httpx.Client], services: Services) -> None:
    with authed() as http:
        hook = http.post("/webhooks/register", json=GUIDE_BODY).json()
        path = f"/webhooks/{hook['webhook_id']}"
        patched = http.patch(path, json={"events": ["task.completed"], "active": False}).json()
        assert patched["events"] == ["task.completed"] and patched["active"] is False
        assert http.patch(path, json={"webhook_url": "http://10.0.0.1/"}).status_code == 422
        rotated = http.post(f"{path}/rotate-secret").json()
        assert rotated["secret"].startswith("whs_") and rotated["previous_secret_valid_until"]
        with services.sessions.begin() as session:
            row = session.get(Webhook, hook["webhook_id"])
            assert row is not None and row.previous_secret_encrypted is not None
            assert (
                decrypt(row.previous_secret_encrypted, services.settings) == "your_webhook_secret"
            )
            assert decrypt(row.secret_encrypted, services.settings) == rotated["secret"]
        assert http.delete(path).status_code == 204
        assert http.get(path).status_code == 404


def test_webhooks_are_scoped_to_their_client(authed: Callable[..., httpx.Client]) -> None:
    with authed() as owner, authed() as stranger:
        hook = owner.post("/webhooks/register", json=GUIDE_BODY).json()
        path = f"/webhooks/{hook['webhook_id']}"
        absent = stranger.get("/webhooks/wh_0000000000000000")
        for method in ("GET", "PATCH", "DELETE"):
            kwargs = {"json": {"active": False}} if method == "PATCH" else {}
            r = stranger.request(method, path, **kwargs)
            assert r.status_code == 404 == absent.status_code
        r = stranger.post(f"{path}/rotate-secret")
        assert r.status_code == 404
        assert stranger.get("/webhooks").json()["webhooks"] == []
        assert owner.get(path).json()["active"] is True


def test_reading_needs_read_and_writing_needs_write(authed: Callable[..., httpx.Client]) -> None:
    with authed(scopes="read") as reader:
        assert reader.get("/webhooks").status_code == 200
        assert reader.post("/webhooks/register", json=GUIDE_BODY).status_code == 403
