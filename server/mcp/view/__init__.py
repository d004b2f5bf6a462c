"""The memory view: one self-contained HTML page, for MCP Apps hosts and for browsers at `/app`."""

from __future__ import annotations

from importlib.resources import files

VIEW_URI = "ui://memory-router/memories"
VIEW_MIME_TYPE = "text/html;profile=mcp-app"  # the MCP Apps extension's `RESOURCE_MIME_TYPE`


def memories_html() -> str:
    """The page, as shipped in the package."""
    return files(__package__).joinpath("memories.html").read_text(encoding="utf-8")
