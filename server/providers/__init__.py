"""Model providers behind one neutral interface.

Only the adapter modules (`anthropic`, `openai`, `gemini`, `ollama`) know a wire format; everything
else speaks `server.providers.types`.
"""

from server.providers.base import Provider
from server.providers.mapping import INVALID_ARGUMENTS
from server.providers.registry import (
    PROVIDER_NAMES,
    PROVIDERS,
    ProviderInfo,
    configured_providers,
    is_configured,
    make_provider,
    provider_info,
)
from server.providers.transport import Clock, RetryPolicy, quiet_http_library_logs

__all__ = [
    "INVALID_ARGUMENTS",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "Clock",
    "Provider",
    "ProviderInfo",
    "RetryPolicy",
    "configured_providers",
    "is_configured",
    "make_provider",
    "provider_info",
    "quiet_http_library_logs",
]
