"""The SDK's version, sent in every request's User-Agent."""

from __future__ import annotations

import httpx

__version__ = "0.1.0"
USER_AGENT = f"aia-api-client/{__version__} python-httpx/{httpx.__version__}"
