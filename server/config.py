"""Settings, read once from the environment and an optional TOML file (MEMORY_ROUTER_CONFIG).

Nothing here runs at import time: call `load_settings()`.
"""

from __future__ import annotations

import getpass
import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.errors import ConfigError


def default_store_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or user_data_dir(appauthor=False)
    if os.environ.get("XDG_DATA_HOME"):
        base = str(Path(base) / "memory-router")
    else:
        base = user_data_dir("memory-router", appauthor=False)
    return f"surrealkv://{Path(base) / 'store'}"


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "default"


# The HTTP transports' defaults, for `serve` and the server alike.
HTTP_DEFAULT_HOST = "127.0.0.1"
HTTP_DEFAULT_PORT = 8765
HTTP_DEFAULT_TOOL_CALLS_PER_MINUTE = 600


class Alias(BaseModel):
    """A name for a model, or for a chain of models tried in order on retryable failures."""

    model: str
    fallbacks: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value (an API key) never appears in a validation error's text.
    model_config = SettingsConfigDict(
        env_prefix="MEMORY_ROUTER_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    # store
    store: str = Field(default_factory=default_store_url)
    store_username: str | None = None
    store_password: SecretStr | None = None
    store_namespace: str = "memory_router"
    store_database: str = "main"

    # who and which session
    user: str = Field(default_factory=default_user)
    session: str | None = None
    session_ttl_seconds: float = 24 * 3600

    # memory limits and preamble budget
    max_key_chars: int = 256
    max_value_bytes: int = 16 * 1024
    max_memories: int = 100_000
    preamble_max_chars: int = 4000
    preamble_max_items: int = 50
    list_limit: int = 1000
    """How many memories `memory://user` and `memory://session` show (newest first)."""

    # routing
    default_model: str | None = None
    max_internal_rounds: int = 8
    request_timeout_seconds: float = 120.0
    max_retries: int = 2

    # providers (standard variable names)
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com", validation_alias="ANTHROPIC_BASE_URL"
    )
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL")
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com", validation_alias="GEMINI_BASE_URL"
    )
    ollama_host: str = Field(default="http://127.0.0.1:11434", validation_alias="OLLAMA_HOST")
    ollama_api_key: SecretStr | None = Field(default=None, validation_alias="OLLAMA_API_KEY")

    # MCP tasks: route_completion run in the background and polled (see the README)
    tasks: bool = True
    """Kill switch: off advertises no task support and answers every call synchronously."""
    task_ttl_seconds: float = Field(default=3600.0, gt=0, le=24 * 3600)
    """How long a task and its result are kept; a task still running then is stopped and failed."""
    max_running_tasks: int = Field(default=4, ge=1)
    """Running tasks per user."""
    task_poll_ms: int = Field(default=1500, ge=1)
    """The poll interval suggested to clients; a task's status message changes at most this often."""

    # HTTP transports
    tokens_file: Path | None = None
    allowed_hosts: str = ""
    allowed_origins: str = ""
    max_body_bytes: int = 4 * 1024 * 1024
    # tool calls per minute per user, on every transport; unset: see tool_calls_per_minute; 0: off
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    # optional JWT bearer tokens (issuer, audience and one source of signing keys)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_secret: SecretStr | None = None
    jwt_algorithms: str = "RS256,ES256"
    jwt_user_claim: str = "sub"

    # from the TOML file
    config: Path | None = None
    aliases: dict[str, Alias] = Field(default_factory=dict)

    @field_validator("anthropic_api_key", "openai_api_key", "gemini_api_key", "ollama_api_key")
    @classmethod
    def _clean_key(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Surrounding whitespace (a CRLF env file) is dropped; a control character inside is refused,
        since an HTTP library would quote the whole header, key included, in its error."""
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if any(unicodedata.category(char) == "Cc" for char in value):
            variable = " or ".join(sorted(_env_names(info.field_name or "")))
            raise ValueError(
                f"{variable} contains a control character inside the key (value not shown); "
                "set it to the key alone"
            )
        return SecretStr(value)

    def tool_calls_per_minute(self, *, over_http: bool) -> int:
        """The per-user tool-call limit in force (0: none): the configured one, else
        HTTP_DEFAULT_TOOL_CALLS_PER_MINUTE over HTTP and none over stdio."""
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute
        return HTTP_DEFAULT_TOOL_CALLS_PER_MINUTE if over_http else 0


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"MEMORY_ROUTER_CONFIG names {path}, which does not exist.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The config file {path} is not valid TOML: {e}") from None
    # A top-level table of limits is accepted under [limits]; everything else is a setting.
    limits = data.pop("limits", {})
    aliases = data.pop("aliases", {})
    flat = {**data, **limits}
    flat["aliases"] = {
        name: ({"model": value} if isinstance(value, str) else value) for name, value in aliases.items()
    }
    return flat


def _env_names(setting: str) -> set[str]:
    """Every variable that sets `setting`: MEMORY_ROUTER_NAME, or its standard names (OPENAI_BASE_URL, ...)."""
    names = {f"MEMORY_ROUTER_{setting.upper()}"}
    field = Settings.model_fields.get(setting)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, str):
        names = {alias}
    elif isinstance(alias, AliasChoices):
        names = {choice for choice in alias.choices if isinstance(choice, str)}
    return names


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and the TOML file it names); explicit overrides win."""
    try:
        env_only = Settings()
        file_values = _read_toml(env_only.config) if env_only.config else {}
        # Environment beats the file: pass file values only for settings no variable sets.
        merged = {k: v for k, v in file_values.items() if not _env_names(k) & os.environ.keys()}
        return Settings(**{**merged, **overrides})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"Invalid configuration: {problems}") from None
