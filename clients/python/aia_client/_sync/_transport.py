"""One connection pool, one token, and every request's retries.

- **Tokens**: fetched with the client credentials on first use and renewed shortly before
  they expire: with the refresh token first, then with the credentials again when the refresh
  token is refused. A request answered 401 drops its token and is sent once more with a new one.
- **Retries**: network errors and 502/503/504 are retried with exponential backoff and full
  jitter, at most `max_retries` times, and only when retrying cannot do the work twice: the
  request never left (connection refused), it reads (GET, HEAD), or it carries an
  `Idempotency-Key`. A 429 is retried after its `Retry-After`, at most
  `max_rate_limit_retries` times (None: no limit), except a batch larger than the whole
  active-task quota (E013 with `requested > limit`), which waiting would never help.
- **Waits**: `config.on_retry(reason, seconds)` hears of each one before it starts; after
  `cancel()` every wait ends at once with `AIACancelledError` and no request is sent.
- **Idempotency**: a request sent with `create=True` gets an `Idempotency-Key` (one per call,
  the same on every retry), so a submission retried after a dropped connection returns the
  task the first attempt created instead of a second one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from aia_client._backoff import RETRYABLE_STATUSES, backoff_delay, retry_after
from aia_client._config import Config
from aia_client._io import SyncCancel, SyncLock
from aia_client.errors import AIAConnectionError, AIARateLimitError, error_for
from aia_client.version import USER_AGENT

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SyncTransport:
    def __init__(self, config: Config, *, http: httpx.Client | None = None) -> None:
        self.config = config
        self.http = http or httpx.Client(
            base_url=config.base_url,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            headers={"User-Agent": USER_AGENT},
        )
        if self.http.headers.get("user-agent", "").startswith("python-httpx/"):
            self.http.headers["User-Agent"] = USER_AGENT  # your client, unless it names itself
        self._lock = SyncLock()
        self._token = ""
        self._renew_at = 0.0
        self._refresh_token = ""
        self._cancel = SyncCancel()

    def cancel(self) -> None:
        """Stop: waits to retry end at once with `AIACancelledError`, and nothing more is sent."""
        self._cancel.set()

    def close(self) -> None:
        self.http.close()

    # -- tokens ------------------------------------------------------------------------------

    def authorization(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"}

    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() >= self._renew_at:
                self._renew()
            return self._token

    def token_rejected(self, token: str) -> None:
        """The server answered 401 to `token`: the next `token()` gets a new one."""
        with self._lock:
            if self._token == token:
                self._token = ""

    def _renew(self) -> None:
        answer = None
        if self._refresh_token:
            answer = self._token_request(
                {"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                refused_ok=True,
            )
        if answer is None:
            form = {"grant_type": "client_credentials"}
            if self.config.scope:
                form["scope"] = self.config.scope
            answer = self._token_request(form, refused_ok=False)
        assert answer is not None
        expires_in = float(answer.get("expires_in") or 300)
        self._token = str(answer["access_token"])
        self._refresh_token = str(answer.get("refresh_token") or "")
        # Renew before expiry by a tenth of the lifetime (at most a minute): a request never
        # leaves with a token about to expire, and a renewal is rare.
        self._renew_at = time.monotonic() + expires_in - min(60.0, expires_in / 10)

    def _token_request(self, form: dict[str, str], *, refused_ok: bool) -> Any:
        form = {
            **form,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }
        response = self._send("POST", "/auth/token", data=form, idempotent=True)
        if response.status_code == 200:
            return response.json()
        if refused_ok and response.status_code in (400, 401):
            return None  # the refresh token expired or was revoked: use the credentials
        raise error_for(response)

    # -- requests ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        create: bool = False,
        idempotent: bool | None = None,
        authenticated: bool = True,
        content: Callable[[], Iterable[bytes]] | None = None,
    ) -> httpx.Response:
        """Send an authenticated request; the answer when 2xx, else the error it maps to.

        `create`: the request creates work; it gets an `Idempotency-Key` (unless `headers`
        has one), which makes it safe to retry. `idempotent`: override whether a network
        error or 5xx may be retried (default: safe methods and `create` requests).
        `content`: makes the body (a new stream for each attempt)."""
        headers = dict(headers or {})
        if create and not any(name.lower() == "idempotency-key" for name in headers):
            headers["Idempotency-Key"] = f"aia-sdk-{uuid.uuid4().hex}"
        if idempotent is None:
            idempotent = method.upper() in SAFE_METHODS or create or _has_key(headers)
        renewed = False
        while True:
            token = self.token() if authenticated else ""
            sent = {**headers, "Authorization": f"Bearer {token}"} if token else headers
            response = self._send(
                method,
                path,
                json=json,
                params=params,
                headers=sent,
                idempotent=idempotent,
                content=content,
            )
            if response.status_code == 401 and authenticated and not renewed:
                renewed = True
                self.token_rejected(token)
                continue
            if response.status_code >= 400:
                raise error_for(response, retry_after=retry_after(response))
            return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        content: Callable[[], Iterable[bytes]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with the retries the config allows; the last answer (any status)."""
        failures = limited = 0
        while True:
            self._cancel.check()
            if content is not None:
                kwargs["content"] = content()
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failures += 1
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if (idempotent or never_sent) and failures <= self.config.max_retries:
                    self.backoff(failures, reason=f"network error ({type(exc).__name__})")
                    continue
                raise AIAConnectionError(
                    f"{type(exc).__name__}: {exc or 'connection failed'} "
                    f"({method} {self.config.base_url}{path})"
                ) from exc
            if response.status_code == 429:
                wait = retry_after(response)
                limited += 1
                most = self.config.max_rate_limit_retries
                if (
                    (most is not None and limited > most)
                    or (wait or 0) > self.config.max_retry_after
                    or _never_fits(response)
                ):
                    error = error_for(response, retry_after=wait)
                    assert isinstance(error, AIARateLimitError)
                    raise error
                self.backoff(limited, wait, reason=_limited(response))
                continue
            if (
                response.status_code in RETRYABLE_STATUSES
                and idempotent
                and failures < self.config.max_retries
            ):
                failures += 1
                self.backoff(failures, retry_after(response), reason=f"HTTP {response.status_code}")
                continue
            return response

    def backoff(
        self, attempt: int, retry_after: float | None = None, *, reason: str = "retrying"
    ) -> None:
        """Sleep before retry `attempt`: the server's `Retry-After` when it gave one (plus up to
        10 % jitter, so clients told the same time do not return together), else backoff.
        `reason` goes to `config.on_retry`; `cancel()` ends the sleep at once."""
        if retry_after is not None:
            delay = retry_after + backoff_delay(1, retry_after / 10, self.config.backoff_max)
        else:
            delay = backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max)
        if self.config.on_retry is not None:
            self.config.on_retry(reason, delay)
        self._cancel.sleep(delay)


def _has_key(headers: dict[str, str]) -> bool:
    return any(name.lower() == "idempotency-key" for name in headers)


def _limited(response: httpx.Response) -> str:
    """Why a 429 waits, for `on_retry`: "rate limited", with the error code when there is one."""
    try:
        code = (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"rate limited ({code})" if isinstance(code, str) else "rate limited"


def _never_fits(response: httpx.Response) -> bool:
    """A batch larger than the whole active-task quota: waiting would never help."""
    try:
        error = response.json().get("error") or {}
        details = error.get("details") or {}
    except (ValueError, AttributeError):
        return False
    limit = details.get("limit")
    requested = details.get("requested")
    return (
        error.get("code") == "E013"
        and isinstance(limit, int)
        and isinstance(requested, int)
        and requested > limit
    )
