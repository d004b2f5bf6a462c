"""Small readers of MCP results shared by the test suites (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client, types


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def read_text(client: Client, uri: str) -> str:
    result = await client.read_resource(uri)
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return content.text


async def read_json(client: Client, uri: str) -> Any:
    return json.loads(await read_text(client, uri))
