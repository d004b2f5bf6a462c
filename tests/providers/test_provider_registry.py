import httpx
import pytest
from provider_fakes import KEY, settings

from server.errors import ConfigError
from server.providers import PROVIDER_NAMES, is_configured, make_provider, provider_info
from server.providers.framing import NDJSONParser, SSEParser
from server.providers.types import CompletionRequest, ImagePart, Message, Usage


def test_every_provider_has_a_default_model_and_a_variable_to_set() -> None:
    assert PROVIDER_NAMES == ("anthropic", "openai", "gemini", "ollama")
    assert provider_info("anthropic").default_model == "claude-sonnet-4-5"
    assert provider_info("openai").key_env == "OPENAI_API_KEY"
    assert provider_info("ollama").key_env is None


def test_unconfigured_provider_names_the_variable_to_set() -> None:
    bare = settings(ANTHROPIC_API_KEY=None, OPENAI_API_KEY=None, GEMINI_API_KEY=None)
    assert [name for name in PROVIDER_NAMES if is_configured(name, bare)] == ["ollama"]  # OLLAMA_HOST is set
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        make_provider("anthropic", bare, httpx.AsyncClient())


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="anthropic, openai, gemini, ollama"):
        make_provider("mistral", settings(), httpx.AsyncClient())


def test_adapters_honour_base_urls_and_hide_keys_in_repr() -> None:
    made = make_provider("gemini", settings(GEMINI_BASE_URL="http://127.0.0.1:9/"), httpx.AsyncClient())
    assert made.name == "gemini"
    assert made.default_model == "gemini-2.5-flash"
    assert "127.0.0.1:9" in repr(made)
    assert KEY not in repr(made)
    assert KEY not in repr(settings())


def test_plain_json_messages_validate() -> None:
    assert Message.model_validate({"role": "user", "content": "hi"}).text() == "hi"
    tool = Message.model_validate({"role": "tool", "tool_call_id": "x", "content": "22C"})
    assert tool.tool_call_id == "x"
    with pytest.raises(ValueError, match="tool_call_id"):
        Message.model_validate({"role": "tool", "content": "22C"})
    with pytest.raises(ValueError, match="media_type"):
        ImagePart.model_validate({"type": "image", "data": "iVBO"})


def test_requests_have_a_json_schema_for_mcp_tools() -> None:
    schema = CompletionRequest.model_json_schema()
    assert "messages" in schema["properties"]


def test_usage_adds_up() -> None:
    assert Usage(input_tokens=1, output_tokens=2) + Usage(input_tokens=3, output_tokens=4) == Usage(
        input_tokens=4, output_tokens=6
    )


def test_sse_parser_handles_crlf_split_between_cr_and_lf_and_split_utf8() -> None:
    raw = 'data: {"t":"é"}\r\n\r\ndata: a\r\ndata: b\r\n\r\n: comment\n\ndata: last'.encode()
    for size in (1, 2, 3):
        parser = SSEParser()
        frames = [frame for i in range(0, len(raw), size) for frame in parser.feed(raw[i : i + size])]
        assert frames + parser.close() == ['{"t":"é"}', "a\nb", "last"]


def test_ndjson_parser_keeps_the_last_unterminated_line() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a":1}\n\n{"b"') == ['{"a":1}']
    assert parser.feed(b":2}") == []
    assert parser.close() == ['{"b":2}']
