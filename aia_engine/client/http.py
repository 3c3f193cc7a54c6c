"""`ApiClient`: client-credentials tokens, and requests retried the way the API asks.

429 waits for `Retry-After` (rate limit or active-task quota) and tries again, for as long as
it takes (unless the request alone is larger than the whole quota: that is raised); 502, 503,
504 and network errors are retried with exponential backoff a bounded number of times.
Retrying a submission is safe only with idempotency keys (an `Idempotency-Key` header, or a
batch item's `idempotency_key`), which the batch sender always uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

RETRYABLE = {502, 503, 504}


class ApiError(Exception):
    """An answer in the API's error envelope (or a network failure, status 0)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        super().__init__(f"{status} {error.get('code', '')} {error.get('message', '')}".strip())


class ApiClient:
    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_s: float = 0.5,
        max_wait_s: float = 60.0,
        on_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError(
                "client credentials are missing: set AIA_CLIENT_ID and AIA_CLIENT_SECRET "
                "(aia-engine clients create --name NAME prints them)"
            )
        self.url = url.rstrip("/")
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self._token = ""
        self._token_until = 0.0
        self._lock = threading.Lock()
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.on_wait = on_wait
        self._cancelled = threading.Event()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def cancel(self) -> None:
        """Make every request waiting to retry give up at once (Ctrl-C)."""
        self._cancelled.set()

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or not self._token or time.monotonic() > self._token_until:
                answer = self._send(
                    "POST",
                    "/auth/token",
                    data={"grant_type": "client_credentials", **self._credentials},
                    authed=False,
                )
                self._token = str(answer["access_token"])
                # Renew a minute early so a request never leaves with a token about to expire.
                self._token_until = time.monotonic() + max(30, int(answer["expires_in"]) - 60)
            return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self._send(method, path, json=json, params=params, headers=headers)

    def send_stream(
        self,
        method: str,
        path: str,
        content: Callable[[], Iterator[bytes]],
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a body streamed from `content()` (called again for each attempt). Rate limits
        and an expired token are retried; a network error or 5xx is not (the server stored
        nothing of a cut upload, and the caller decides whether to send it all again)."""
        renewed = False
        while True:
            sent = {**(headers or {}), "Authorization": f"Bearer {self.token()}"}
            try:
                answer = self._http.request(
                    method, path, content=content(), params=params, headers=sent
                )
            except httpx.TransportError as exc:
                raise ApiError(0, {"message": f"{type(exc).__name__}: {exc} ({self.url})"}) from exc
            if answer.status_code == 401 and not renewed:
                renewed = True
                self.token(renew=True)
                continue
            if answer.status_code == 429:
                self._wait(_error(answer).get("code", "rate limited"), _retry_after(answer))
                continue
            if answer.status_code >= 400:
                raise ApiError(answer.status_code, _error(answer))
            return answer.json()

    def _send(
        self,
        method: str,
        path: str,
        *,
        authed: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        failures = 0
        renewed = False
        while True:
            sent = dict(headers or {})
            if authed:
                sent["Authorization"] = f"Bearer {self.token()}"
            try:
                answer = self._http.request(method, path, headers=sent, **kwargs)
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.max_retries:
                    raise ApiError(
                        0, {"message": f"{type(exc).__name__}: {exc} ({self.url})"}
                    ) from exc
                self._wait("network error", self.backoff_s * 2 ** (failures - 1))
                continue
            if answer.status_code == 401 and authed and not renewed:
                renewed = True
                self.token(renew=True)
                continue
            if answer.status_code == 429:
                error = _error(answer)
                if _never_fits(error):
                    raise ApiError(429, error)
                self._wait(error.get("code", "rate limited"), _retry_after(answer))
                continue
            if answer.status_code in RETRYABLE and failures < self.max_retries:
                failures += 1
                self._wait(f"HTTP {answer.status_code}", self.backoff_s * 2 ** (failures - 1))
                continue
            if answer.status_code >= 400:
                raise ApiError(answer.status_code, _error(answer))
            return answer.json()

    def _wait(self, reason: str, seconds: float) -> None:
        seconds = min(seconds, self.max_wait_s)
        if self.on_wait is not None:
            self.on_wait(reason, seconds)
        if self._cancelled.wait(seconds):
            raise ApiError(0, {"message": "cancelled"})


def _error(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {"message": answer.text[:200]}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {"message": str(body)[:200]}


def _never_fits(error: dict[str, Any]) -> bool:
    """A batch larger than the whole active-task quota: waiting would never help."""
    details = error.get("details") or {}
    limit = details.get("limit")
    return error.get("code") == "E013" and limit is not None and details.get("requested", 0) > limit


def _retry_after(answer: httpx.Response) -> float:
    try:
        return max(0.1, float(answer.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0
