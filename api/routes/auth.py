"""OAuth2 token endpoint (client credentials, refresh) and revocation, in RFC 6749's error form."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote_plus

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.auth.oauth import (
    ClientAuth,
    OAuthError,
    client_credentials_grant,
    refresh_grant,
    revoke_token,
)
from aia_engine.auth.throttle import check_token_rate
from aia_engine.errors import PayloadTooLarge
from api import schemas
from api.body import read_body
from api.contract import Form, Model, Reply, operation
from api.deps import Resources, in_thread, resources
from api.middleware import client_ip
from api.replies import reply

T = TypeVar("T")

OAUTH_ERRORS: dict[int, Reply | Model] = {
    status: Reply(schemas.OAuthErrorBody, description)
    for status, description in {
        400: "invalid_request, invalid_grant, invalid_scope, unsupported_grant_type",
        401: "invalid_client",
        405: "Only POST",
        429: "Too many token requests",
        503: "Rate limiter unavailable (fails closed)",
    }.items()
}
CLIENT_AUTH: list[dict[str, list[str]]] = [
    {},
    {"basicAuth": []},
]  # client credentials in the form, or HTTP Basic
OTHER_METHODS = ("GET", "PUT", "DELETE", "PATCH")  # answered 405 in RFC 6749's form
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_LIMIT = 16_384


def oauth_error(request: Request, exc: OAuthError, *, basic: bool) -> Response:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="aia"' if basic else 'Bearer realm="aia"'
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"error": exc.error, "error_description": exc.description}
    return reply(request, body, status=exc.status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "send the parameters as application/x-www-form-urlencoded"
        )
    try:
        raw = (await read_body(request, FORM_LIMIT)).decode("ascii")
    except (UnicodeDecodeError, PayloadTooLarge) as exc:
        raise OAuthError("invalid_request", "the form body is not valid") from exc
    parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False)
    duplicated = [k for k, v in parsed.items() if len(v) > 1]
    if duplicated:
        raise OAuthError("invalid_request", f"parameter {duplicated[0]!r} is repeated")
    if any("\x00" in k + "".join(v) for k, v in parsed.items()):
        raise OAuthError("invalid_request", "a form field holds a NUL character (%00)")
    return {k: v[0] for k, v in parsed.items()}


def _client_auth(request: Request, form: dict[str, str]) -> ClientAuth:
    header = request.headers.get("authorization")
    in_form = "client_id" in form or "client_secret" in form
    if header:
        if in_form:
            raise OAuthError(
                "invalid_request",
                "authenticate the client one way: HTTP Basic or form fields, not both",
            )
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError(
                "invalid_client", "client authentication must use HTTP Basic", status=401
            )
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from exc
        user, password = unquote_plus(user), unquote_plus(password)
        if not sep or "\x00" in user + password:
            raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
        return ClientAuth(user, password, via_basic=True)
    if not form.get("client_id") or not form.get("client_secret"):
        raise OAuthError("invalid_client", "client_id and client_secret are required", status=401)
    return ClientAuth(form["client_id"], form["client_secret"], via_basic=False)


async def _guarded(request: Request, action: Any) -> Response:
    basic = request.headers.get("authorization", "").lower().startswith("basic ")
    try:
        if request.method != "POST":
            raise OAuthError("invalid_request", "use POST", status=405)
        form = await _form(request)
        auth = _client_auth(request, form)
        res = resources(request)
        await in_thread(
            check_token_rate,
            res.redis,
            ip=client_ip(request),
            client_id=auth.client_id,
            per_ip=res.settings.token_rate_per_ip,
            per_client=res.settings.token_rate_per_client,
        )
        result: dict[str, Any] = await action(res, form, auth)
    except OAuthError as exc:
        response = oauth_error(request, exc, basic=basic)
        if exc.status == 405:
            response.headers["Allow"] = "POST"
        return response
    return reply(request, result, headers=NO_STORE)


async def checking_secret(res: Resources, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run `fn`, which checks a client secret with Argon2, in a thread, at most
    `AIA_SECRET_CHECKS_PER_PROCESS` at once in this process (`res.secret_checks`). Waiting
    happens on the event loop (no thread is held), so a burst of logins queues instead of
    taking every core from the requests around it."""
    call = functools.partial(fn, *args, **kw)
    return await anyio.to_thread.run_sync(call, limiter=res.secret_checks)


@operation(
    "Token",
    tag="auth",
    operation_id="token",
    method="POST",
    refuses=OTHER_METHODS,
    body=Form(schemas.TokenForm),
    security=CLIENT_AUTH,
    responses={200: Reply(schemas.TokenResponse, "Tokens"), **OAUTH_ERRORS},
)
async def token(request: Request) -> Response:
    async def grant(res: Any, form: dict[str, str], auth: ClientAuth) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            return await checking_secret(
                res,
                client_credentials_grant,
                res.sessions,
                auth,
                form.get("scope"),
                settings=res.settings,
            )
        if grant_type == "refresh_token":
            return await checking_secret(
                res,
                refresh_grant,
                res.sessions,
                auth,
                form.get("refresh_token"),
                form.get("scope"),
                settings=res.settings,
                revoked=res.revoked,
            )
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type {grant_type!r} is not supported; use client_credentials or refresh_token",
        )

    return await _guarded(request, grant)


@operation(
    "Revoke",
    tag="auth",
    operation_id="revoke",
    method="POST",
    refuses=OTHER_METHODS,
    body=Form(schemas.RevokeForm),
    security=CLIENT_AUTH,
    responses={200: Reply(schemas.Revoked, "Revoked (or unknown)"), **OAUTH_ERRORS},
)
async def revoke(request: Request) -> Response:
    async def do(res: Any, form: dict[str, str], auth: ClientAuth) -> dict[str, Any]:
        await checking_secret(
            res, revoke_token, res.sessions, auth, form.get("token"), revoked=res.revoked
        )
        return {}

    return await _guarded(request, do)


routes = [
    Route("/auth/token", token, methods=["POST", *OTHER_METHODS]),
    Route("/auth/revoke", revoke, methods=["POST", *OTHER_METHODS]),
]
