"""Model providers behind one neutral interface.

Only the adapter modules (`anthropic`, `openai`, `gemini`, `ollama`) know a wire format; everything
else speaks `server.providers.types`.
"""

from server.providers.base import Provider
from server.providers.directory import ProviderDirectory
from server.providers.mapping import INVALID_ARGUMENTS
from server.providers.registry import (
    NO_PROVIDER,
    PROVIDER_NAMES,
    PROVIDERS,
    ProviderInfo,
    ProviderName,
    is_configured,
    make_provider,
    provider_info,
)
from server.providers.transport import Clock, RetryPolicy, quiet_http_library_logs

__all__ = [
    "INVALID_ARGUMENTS",
    "NO_PROVIDER",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "Clock",
    "Provider",
    "ProviderDirectory",
    "ProviderInfo",
    "ProviderName",
    "RetryPolicy",
    "is_configured",
    "make_provider",
    "provider_info",
    "quiet_http_library_logs",
]
