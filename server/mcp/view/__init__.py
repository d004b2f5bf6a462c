"""The memory view: one self-contained HTML page, for MCP Apps hosts and for browsers at `/app`.

Hosts that render MCP Apps (the `io.modelcontextprotocol/ui` extension) find it through the
`_meta.ui.resourceUri` of the `recall` tool and read it as a resource; hosts without the extension
ignore that metadata and keep the tool's text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from mcp import types

VIEW_URI = "ui://memory-router/memories"
VIEW_MIME_TYPE = "text/html;profile=mcp-app"  # the MCP Apps extension's `RESOURCE_MIME_TYPE`
UI_EXTENSION = "io.modelcontextprotocol/ui"

# No `csp` key: the view loads nothing from elsewhere, so hosts apply the spec's restrictive default.
VIEW_RESOURCE_META: dict[str, Any] = {"ui": {"prefersBorder": True}}
# The current form and the deprecated flat key, which hosts still read (the extension's SDK writes both).
VIEW_TOOL_META: dict[str, Any] = {"ui": {"resourceUri": VIEW_URI}, "ui/resourceUri": VIEW_URI}

VIEW_RESOURCE = types.Resource(
    uri=VIEW_URI,
    name="memory-view",
    title="Your memories",
    description=(
        "An interactive view of your memories and the preamble, for hosts that render MCP Apps "
        "(the view of the recall tool). Over HTTP the same page is at /app."
    ),
    mime_type=VIEW_MIME_TYPE,
    _meta=VIEW_RESOURCE_META,
)


@cache
def memories_html() -> str:
    """The page, as shipped in the package."""
    return files(__package__).joinpath("memories.html").read_text(encoding="utf-8")


def page_policy() -> str:
    """The Content-Security-Policy the page declares in its `<meta>` (the one source of it)."""
    found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', memories_html())
    if found is None:
        raise RuntimeError("The memory view declares no Content-Security-Policy.")
    return found.group(1)
