"""A webhook receiver on 127.0.0.1 built from the API guide's Flask handler.

`verify_webhook_signature` and the body of `handle_aia_webhook` are the guide's, unchanged;
the receiver only records each request (and can be told to misbehave) around them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from aia_engine.embedded import free_port


# -- the guide's code, verbatim -------------------------------------------------------------
def verify_webhook_signature(payload, signature, secret):  # type: ignore[no-untyped-def]
    """Verify webhook signature for security"""
    expected_signature = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()

    return hmac.compare_digest(f"sha256={expected_signature}", signature)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float
    verified: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    path: str = "/aia-webhook"
    status: int = 200
    retry_after: str | None = None
    location: str | None = None
    hang_s: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    handled: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _server: BaseWSGIServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"

    def app(self) -> Flask:
        app = Flask(f"receiver-{self.port}")
        receiver = self

        @app.route(self.path, methods=["POST"])
        def handle_aia_webhook():  # type: ignore[no-untyped-def]
            """Handle incoming webhook from AIA API"""
            signature = request.headers.get("X-AIA-Signature")
            verified = verify_webhook_signature(request.data, signature, receiver.secret)
            receiver.deliveries.append(
                Delivery(dict(request.headers), request.data, time.time(), verified)
            )
            if receiver.hang_s:
                time.sleep(receiver.hang_s)
            if receiver.status != 200:
                headers = {}
                if receiver.retry_after is not None:
                    headers["Retry-After"] = receiver.retry_after
                if receiver.location is not None:
                    headers["Location"] = receiver.location
                return jsonify({"status": "not now"}), receiver.status, headers

            # Verify signature (the guide's handler from here on)
            if not verify_webhook_signature(request.data, signature, receiver.secret):
                return jsonify({"error": "Invalid signature"}), 401

            # Process webhook data
            webhook_data = request.json
            event_type = webhook_data.get("event_type")
            data = webhook_data.get("data")

            if event_type == "task.completed":
                receiver.handled.append(
                    (event_type, {"task_id": data["task_id"], "results": data["results"]})
                )
            elif event_type == "task.failed":
                receiver.handled.append(
                    (event_type, {"task_id": data["task_id"], "error": data["error"]})
                )
            elif event_type == "system.alert":
                receiver.handled.append((event_type, {
                    "alert_type": data["alert_type"], "message": data["message"],
                    "severity": data["severity"],
                }))  # fmt: skip

            return jsonify({"status": "received"}), 200

        return app

    def start(self) -> Receiver:
        self._server = make_server("127.0.0.1", self.port, self.app(), threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 60, *, verified_only: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len([d for d in self.deliveries if d.verified or not verified_only]) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.deliveries)} deliveries after {timeout}s, wanted {count}")
