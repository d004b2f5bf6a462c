"""What a release and a tool install rely on: the script the host configuration names, the license."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, object] = tomllib.load(f)["project"]
    return table


def test_mcp_json_launches_the_script_that_pipx_and_uv_put_on_path() -> None:
    scripts = project()["scripts"]
    assert isinstance(scripts, dict)
    server = json.loads((ROOT / "mcp.json").read_text())["mcpServers"]["memory-router"]
    assert server["command"] in scripts
    assert scripts[server["command"]] == "server.cli.app:console"
    assert server["args"] == ["serve"]


def test_the_license_file_is_the_license_the_metadata_declares() -> None:
    metadata = project()
    assert metadata["license"] == "MIT"
    assert metadata["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    classifiers = metadata["classifiers"]
    assert isinstance(classifiers, list)
    # PEP 639: with a license expression, license classifiers are refused by the build backend.
    assert not [c for c in classifiers if c.startswith("License ::")]
