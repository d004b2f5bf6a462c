"""Where the browser tests put their screenshots: $VIEW_SCREENSHOTS, else a new temporary folder
(not under pytest's basetemp, which keeps only the last three runs of anyone on this machine). The end
of the run says where they are, or why the browser tests were skipped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from view_harness import missing_browser

_FOLDER = pytest.StashKey[Path]()
BROWSER_MISSING = missing_browser()


@pytest.fixture(scope="session")
def shots(request: pytest.FixtureRequest) -> Path:
    named = os.environ.get("VIEW_SCREENSHOTS")
    folder = Path(named) if named else Path(tempfile.mkdtemp(prefix="memory-router-view-"))
    folder.mkdir(parents=True, exist_ok=True)
    request.config.stash[_FOLDER] = folder
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if BROWSER_MISSING is not None:
        terminalreporter.write_line(f"memory view browser tests skipped: {BROWSER_MISSING}")
    if folder is not None:
        shots = sorted(path.name for path in folder.glob("*.png"))
        terminalreporter.write_line(f"memory view screenshots in {folder}: {', '.join(shots) or 'none'}")
