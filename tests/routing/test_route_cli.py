"""`memory-router ask` and `memory-router doctor` as real subprocesses against the fake providers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
from fake_llm import KEY, Call, FakeLLM, Turn
from routing_helpers import provider_env


async def cli(fake: FakeLLM, store: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_ROUTER_")}
    environment.update(provider_env(fake.url))
    environment.update(MEMORY_ROUTER_STORE=f"surrealkv://{store}", MEMORY_ROUTER_USER="alice")
    environment.update(MEMORY_ROUTER_MAX_RETRIES="0", **env)
    with anyio.fail_after(60):
        return await anyio.run_process([sys.executable, "-m", "server", *args], env=environment, check=False)


async def test_ask_streams_the_answer_runs_the_memory_tool_and_prints_host_calls_it_cannot_run(
    fake: FakeLLM, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.script(
        Turn.calling(Call("memory", {"op": "record", "scope": "user", "key": "name", "value": "Alice"})),
        Turn.calling(Call("open_browser", {"url": "https://example.com"}), text="Nice to meet you, Alice."),
    )
    done = await cli(
        fake, store, "ask", "--model", "anthropic/model-a", "--system", "Be kind.", "I am Alice."
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "Nice to meet you, Alice.\n"
    stderr = done.stderr.decode()
    assert "[memory] record user 'name': recorded" in stderr
    assert 'the model asked for a host tool: open_browser({"url": "https://example.com"})' in stderr
    assert fake.requests[0].streamed
    assert fake.bodies()[0]["system"] == "Be kind."  # no memories yet: no preamble
    assert "Recorded user memory" in str(fake.bodies()[1]["messages"])

    fake.script(Turn(text="Hello again, Alice."))
    again = await cli(fake, store, "ask", "--model", "anthropic/model-a", "--system", "Be kind.", "Hi!")
    assert again.stdout.decode() == "Hello again, Alice.\n"
    system = fake.bodies()[2]["system"]
    assert system.startswith("Be kind.\n\n") and "[name] Alice" in system
    listed = await cli(fake, store, "memory", "list")
    assert "Alice" in listed.stdout.decode()


async def test_ask_with_a_malformed_model_says_what_is_configured(fake: FakeLLM, tmp_path: Path) -> None:
    done = await cli(fake, tmp_path / "store", "ask", "--model", "gpt-4", "hello")
    assert done.returncode == 1
    assert "Malformed model 'gpt-4'" in done.stderr.decode()
    assert "Configured providers: anthropic, openai, gemini, ollama." in done.stderr.decode()
    assert fake.requests == []


async def test_doctor_checks_the_store_and_every_provider_with_an_authenticated_request(
    fake: FakeLLM, tmp_path: Path
) -> None:
    done = await cli(fake, tmp_path / "store", "doctor", "--wait", "10")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "ok   store:" in out
    for provider in ("anthropic", "openai", "gemini", "ollama"):
        assert f"ok   {provider}:" in out
    assert {r.provider for r in fake.requests} == {"anthropic", "openai", "gemini", "ollama"}


async def test_doctor_has_a_models_section_and_models_prints_one_model_per_line(
    fake: FakeLLM, tmp_path: Path
) -> None:
    doctor = await cli(fake, tmp_path / "store", "doctor")
    assert "ok   anthropic: answers at ANTHROPIC_BASE_URL; 2 models;" in doctor.stdout.decode()
    assert "  gemini: model-a\n" in doctor.stdout.decode()

    fake.listing_errors["openai"] = (500, "listing is down")
    listed = await cli(fake, tmp_path / "store", "models", GEMINI_API_KEY="")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().splitlines() == [
        "anthropic/model-a",
        "anthropic/model-b",
        "openai/gpt-4.1-mini",
        "ollama/model-a:latest",
    ]
    stderr = listed.stderr.decode()
    assert "gemini: not configured (set GEMINI_API_KEY)" in stderr
    assert "openai: could not list the models; showing the default model (" in stderr
    assert "listing is down" in stderr

    as_json = await cli(fake, tmp_path / "store", "models", "--json")
    catalog = json.loads(as_json.stdout)
    assert [p["models"] for p in catalog["providers"]][2] == ["gemini/model-a"]
    assert catalog["default_model"] == "anthropic/claude-sonnet-4-5"


async def test_doctor_suggests_the_usual_path_when_a_base_url_answers_404(
    fake: FakeLLM, tmp_path: Path
) -> None:
    done = await cli(
        fake, tmp_path / "store", "doctor", OPENAI_BASE_URL=fake.url, ANTHROPIC_BASE_URL=f"{fake.url}/v1"
    )
    out = done.stdout.decode()
    assert done.returncode == 1
    assert (
        "(check OPENAI_BASE_URL: OpenAI-compatible servers usually serve their API under /v1 "
        f"(try {fake.url}/v1))"
    ) in out
    assert (
        f"(check ANTHROPIC_BASE_URL: it is usually the server's address alone, without a path (try {fake.url})"
        in out
    )
    assert "ok   gemini:" in out


async def test_doctor_names_a_rejected_key_and_the_variables_to_check_without_showing_it(
    fake: FakeLLM, tmp_path: Path
) -> None:
    wrong = "sk-wrong-SECRET-9876"
    done = await cli(fake, tmp_path / "store", "doctor", "--wait", "10", OPENAI_API_KEY=wrong)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1
    assert "FAIL openai: authentication error" in out
    assert "invalid api key (check OPENAI_API_KEY)" in out
    assert "ok   anthropic:" in out
    assert wrong not in out and KEY not in out
