"""What every resource shares: the transport, and turning answers into models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel

from aia_client._async._transport import AsyncTransport

M = TypeVar("M", bound=BaseModel)


class AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def _call(
        self,
        model: type[M],
        method: str,
        path: str,
        **kwargs: Any,
    ) -> M:
        response = await self._transport.request(method, path, **kwargs)
        return model.model_validate_json(response.content)

    async def _pages(
        self,
        model: type[M],
        key: str,
        path: str,
        params: dict[str, Any],
    ) -> AsyncIterator[Any]:
        """Every item of a cursor-paged listing (`{key: [...], "next_cursor": ...}`)."""
        params = {name: value for name, value in params.items() if value is not None}
        while True:
            page = await self._call(model, "GET", path, params=params)
            for item in getattr(page, key):
                yield item
            cursor = getattr(page, "next_cursor", None)
            if not cursor:
                return
            params = {**params, "cursor": cursor}


def drop_none(**fields: Any) -> dict[str, Any]:
    """The fields that were given (None means "not given": the server's default applies)."""
    return {name: value for name, value in fields.items() if value is not None}
