from pathlib import Path

import pytest

from server.config import load_settings
from server.errors import ConfigError

TOML = """
default_model = "fast"
max_internal_rounds = 4
openai_base_url = "http://from-file/v1"
ollama_host = "http://from-file:11434"

[aliases]
fast = "openai/gpt-4.1-mini"
smart = { model = "anthropic/claude-sonnet-4-5", fallbacks = ["openai/gpt-4.1"] }

[limits]
max_value_bytes = 32768
"""


def test_config_file_gives_aliases_limits_and_settings_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "memory-router.toml"
    path.write_text(TOML)
    monkeypatch.setenv("MEMORY_ROUTER_CONFIG", str(path))
    monkeypatch.setenv("MEMORY_ROUTER_MAX_INTERNAL_ROUNDS", "5")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    settings = load_settings()
    assert settings.openai_base_url == "http://from-env/v1"
    assert settings.ollama_host == "http://from-file:11434"
    assert settings.default_model == "fast"
    assert settings.max_internal_rounds == 5
    assert settings.max_value_bytes == 32768
    assert settings.aliases["fast"].model == "openai/gpt-4.1-mini"
    assert settings.aliases["smart"].fallbacks == ["openai/gpt-4.1"]


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_ROUTER_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_settings()


def test_api_keys_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-SECRET-123")
    settings = load_settings()
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings)
    assert settings.anthropic_api_key is not None


def test_an_invalid_value_names_the_variable_that_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_ROUTER_MAX_KEY_CHARS", "long")
    with pytest.raises(ConfigError, match=r"^Invalid configuration: MEMORY_ROUTER_MAX_KEY_CHARS: .*integer"):
        load_settings()


def test_an_invalid_value_from_the_config_file_names_its_key_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "memory-router.toml"
    path.write_text('[limits]\nmax_key_chars = "long"\n\n[aliases]\nfast = { fallbacks = ["x/y"] }\n')
    monkeypatch.setenv("MEMORY_ROUTER_CONFIG", str(path))
    monkeypatch.delenv("MEMORY_ROUTER_MAX_KEY_CHARS", raising=False)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert f"max_key_chars in {path}: " in str(raised.value)
    assert f"aliases.fast.model in {path}: Field required" in str(raised.value)


@pytest.mark.parametrize("variable", ["MEMORY_ROUTER_TOKENS_FILE", "MEMORY_ROUTER_CONFIG"])
def test_an_empty_path_variable_is_refused_at_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert f"{variable} is set but empty" in str(refused.value)
