"""Keys at load, and keys in every text that leaves: errors in escaped forms, cut bodies, HTTP logs."""

import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import anyio
import anyio.abc
import httpx
import pytest
from provider_fakes import KEY, Upstream, json_reply, provider
from pydantic import SecretStr, ValidationError

from server.config import Settings, load_settings
from server.errors import ConfigError, ProviderError
from server.providers import PROVIDER_NAMES, RetryPolicy, quiet_http_library_logs
from server.providers.openai import OpenAIProvider
from server.providers.types import CompletionRequest

# A key of the base64 alphabet: its URL-encoded and JSON-escaped forms differ from the key itself.
B64_KEY = "AIza+SECRET/0123456789abcdef=="


def request() -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


async def test_a_key_read_from_a_crlf_env_file_is_sent_without_its_line_ending() -> None:
    upstream = Upstream(json_reply(200, {"choices": []}))
    await provider("openai", upstream, OPENAI_API_KEY=f"  {KEY}\r\n").complete(request())
    assert upstream.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_key_with_a_control_character_inside_is_refused_naming_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", f"{KEY[:10]}\x1b{KEY[10:]}")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY contains a control character") as caught:
        load_settings()
    assert KEY[:10] not in str(caught.value)
    with pytest.raises(ValidationError) as direct:
        Settings(GEMINI_API_KEY=f"{KEY}\rX")
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in str(direct.value)
    assert KEY not in str(direct.value)


def http_library_errors(key: str) -> list[str]:
    """How an HTTP stack and gateways quote a key back: h11's repr of the header, URL-encoded
    in an echoed URL, JSON-escaped inside a JSON string, and a repr inside JSON."""
    header = f"Bearer {key}".encode()
    return [
        f"Illegal header value {header!r}",
        f"GET https://gw.test/v1/models?key={quote(key, safe='')} failed",
        f"upstream said {json.dumps({'auth': key})}",
        f"upstream said {json.dumps(repr(key))}",
    ]


def openai_with_key(
    client: httpx.AsyncClient, key: str, base_url: str = "https://openai.test/v1"
) -> OpenAIProvider:
    """Built directly, as a key that bypassed the load-time checks would reach the adapter."""
    return OpenAIProvider(
        client=client,
        base_url=base_url,
        api_key=SecretStr(key),
        default_model="m",
        policy=RetryPolicy(max_retries=0),
    )


@pytest.mark.parametrize(
    ("key", "text"),
    [(key, text) for key in (B64_KEY, f"{KEY}\r") for text in http_library_errors(key)],
)
async def test_keys_quoted_in_escaped_forms_are_redacted_from_errors(key: str, text: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(text)

    adapter = openai_with_key(httpx.AsyncClient(transport=httpx.MockTransport(refuse)), key)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(request())
    shown = str(caught.value)
    assert "[redacted]" in shown
    assert key.strip()[:8] not in shown


@pytest.mark.parametrize("before", [490, 480, 300])
async def test_a_long_non_json_error_body_is_redacted_before_it_is_cut(before: int) -> None:
    body = "x" * before + KEY + "y" * 600
    upstream = Upstream(httpx.Response(502, text=body))
    with pytest.raises(ProviderError) as caught:
        await provider("openai", upstream, max_retries=0).complete(request())
    shown = caught.value.message
    assert KEY[:8] not in shown
    assert shown.startswith("x" * before)
    assert "[redacted]" in shown


@pytest.mark.parametrize("name", PROVIDER_NAMES)
async def test_a_key_split_by_the_cut_leaves_no_prefix_of_eight_or_more_characters(name: str) -> None:
    for keep in range(8, len(KEY)):
        body = "x" * (500 - keep) + KEY + "tail"
        upstream = Upstream(httpx.Response(400, text=body))
        with pytest.raises(ProviderError) as caught:
            await provider(name, upstream, OLLAMA_API_KEY=KEY).complete(request())
        assert KEY[:8] not in caught.value.message, keep


@pytest.fixture
def http_library_levels() -> Iterator[None]:
    names = ("httpx", "httpcore", "h11", "h2", "hpack")
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def test_http_library_debug_logs_never_show_a_key(
    caplog: pytest.LogCaptureFixture, http_library_levels: None
) -> None:
    caplog.set_level(logging.DEBUG)
    quiet_http_library_logs()  # what the CLI does once logging is set up
    key = f"{KEY}\r"  # a key h11 refuses to send, quoting the whole header in its exception
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with httpx.AsyncClient() as client:
            adapter = openai_with_key(client, key, f"http://127.0.0.1:{port}/v1")
            with anyio.fail_after(10), pytest.raises(ProviderError):
                await adapter.list_models()
    assert KEY not in caplog.text
    assert KEY[:8] not in caplog.text
