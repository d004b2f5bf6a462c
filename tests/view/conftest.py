"""Where the browser tests put their screenshots: $VIEW_SCREENSHOTS, else a new temporary folder
(not under pytest's basetemp, which keeps only the last three runs of anyone on this machine); the path
is printed at the end of the run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_FOLDER = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def shots(request: pytest.FixtureRequest) -> Path:
    named = os.environ.get("VIEW_SCREENSHOTS")
    folder = Path(named) if named else Path(tempfile.mkdtemp(prefix="memory-router-view-"))
    folder.mkdir(parents=True, exist_ok=True)
    request.config.stash[_FOLDER] = folder
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shots = sorted(path.name for path in folder.glob("*.png"))
        terminalreporter.write_line(f"memory view screenshots in {folder}: {', '.join(shots) or 'none'}")
