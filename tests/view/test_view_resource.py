"""The memory view as an MCP Apps resource, through the SDK's client in memory: listed and read with
the extension's MIME type and metadata, linked from `recall`, and the preamble's budget beside it."""

from __future__ import annotations

from mcp import Client, types
from mcp.client.extension import advertise

from server.config import Settings
from server.mcp.server import build_server
from server.mcp.view import UI_EXTENSION, VIEW_MIME_TYPE, VIEW_URI, memories_html


def apps_host(settings: Settings) -> Client:
    """A client that says it renders MCP Apps, as Claude Desktop or VS Code do."""
    return Client(
        build_server(settings), extensions=[advertise(UI_EXTENSION, {"mimeTypes": [VIEW_MIME_TYPE]})]
    )


async def test_the_view_is_listed_as_an_mcp_app_resource_with_a_border_and_no_csp(settings: Settings) -> None:
    async with apps_host(settings) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
    view = listed[VIEW_URI]
    assert view.mime_type == "text/html;profile=mcp-app"
    assert view.meta == {"ui": {"prefersBorder": True}}  # no csp: the spec's restrictive default applies


async def test_reading_the_view_gives_the_whole_page_with_its_metadata(settings: Settings) -> None:
    async with apps_host(settings) as client:
        [content] = (await client.read_resource(VIEW_URI)).contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == VIEW_MIME_TYPE
    assert content.meta == {"ui": {"prefersBorder": True}}
    assert content.text == memories_html()
    assert content.text.startswith("<!DOCTYPE html>") and content.text.rstrip().endswith("</html>")


async def test_recall_names_the_view_for_hosts_that_render_apps_and_still_answers_in_text(
    settings: Settings,
) -> None:
    async with apps_host(settings) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("recall", {})
    meta = tools["recall"].meta
    assert meta is not None
    assert meta["ui"]["resourceUri"] == VIEW_URI
    assert meta["ui/resourceUri"] == VIEW_URI  # the deprecated flat form, which hosts still read
    assert "visibility" not in meta["ui"]  # the default: the model and the view may both call it
    assert tools["memory"].meta is None
    assert isinstance(result.content[0], types.TextContent)
    assert result.content[0].text.startswith("Nothing is remembered")


async def test_a_client_without_the_apps_extension_sees_the_same_tools_and_resources(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as plain, apps_host(settings) as apps:
        assert (await plain.list_tools()).tools == (await apps.list_tools()).tools
        assert (await plain.list_resources()).resources == (await apps.list_resources()).resources


async def test_the_preamble_carries_its_budget_so_the_view_can_show_its_use(settings: Settings) -> None:
    small = settings.model_copy(update={"preamble_max_chars": 1500, "preamble_max_items": 7})
    async with Client(build_server(small)) as client:
        [content] = (await client.read_resource("memory://preamble")).contents
    assert content.meta is not None
    assert content.meta["budget"] == {"max_chars": 1500, "max_items": 7}
    assert content.meta["memory_context"]["preamble_chars"] == 0
