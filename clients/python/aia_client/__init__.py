"""The AIA Engine Python SDK.

    from aia_client import AIAClient           # async
    from aia_client import AIASyncClient       # the same surface, blocking
    from aia_client import AIAStreamingClient  # server-sent event streams

docs/python-sdk.md in the engine's repository is the guide.
"""

from aia_client import models
from aia_client._async.client import AIAClient
from aia_client._async.streaming import AIAStreamingClient
from aia_client._sync.client import AIASyncClient
from aia_client._sync.streaming import AIASyncStreamingClient
from aia_client.errors import (
    AIAAPIError,
    AIAAuthenticationError,
    AIACancelledError,
    AIAConfigurationError,
    AIAConflictError,
    AIAConnectionError,
    AIAError,
    AIANotFoundError,
    AIAPermissionError,
    AIARateLimitError,
    AIAServerError,
    AIATimeoutError,
    AIAValidationError,
)
from aia_client.updates import GraphUpdate, TaskUpdate
from aia_client.version import __version__

__all__ = [
    "AIAAPIError",
    "AIAAuthenticationError",
    "AIACancelledError",
    "AIAClient",
    "AIAConfigurationError",
    "AIAConflictError",
    "AIAConnectionError",
    "AIAError",
    "AIANotFoundError",
    "AIAPermissionError",
    "AIARateLimitError",
    "AIAServerError",
    "AIAStreamingClient",
    "AIASyncClient",
    "AIASyncStreamingClient",
    "AIATimeoutError",
    "AIAValidationError",
    "GraphUpdate",
    "TaskUpdate",
    "__version__",
    "models",
]
