"""The memory view in headless Chromium, against a real `memory-router serve --transport http`:
embedded in a test MCP Apps host (it finds the view through `recall`'s `_meta.ui.resourceUri`, reads
it with resources/read and answers the bridge over postMessage), and at the server's own `/app` (the
page speaks streamable HTTP to `/mcp` itself). Screenshots: see conftest.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_helpers import read_json, read_text
from view_harness import (
    CHROMIUM,
    HOST_HTML,
    HOST_URL,
    Dialogs,
    forward,
    http_server,
    mcp_client,
    missing_browser,
    record,
)

REASON = missing_browser()
if REASON is not None:
    pytest.skip(f"browser tests skipped: {REASON}", allow_module_level=True)

from playwright.async_api import Browser, FrameLocator, Page, async_playwright, expect  # noqa: E402

from server.mcp.view import VIEW_MIME_TYPE, VIEW_URI, page_policy  # noqa: E402

MARKUP = "<img src=x onerror=alert(1)>"
HOST_STYLES = {"--color-background-primary": "#10141c", "--color-text-primary": "#e8eefc"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with http_server(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        await browser.close()


async def seed(alice: Client, bob: Client) -> None:
    await record(alice, "units", "I prefer metric units")
    await record(alice, "dog", "My dog is called Biscuit")
    await record(alice, "markup", MARKUP)
    await record(alice, "draft", "working notes of this session", scope="session")
    await record(bob, "bank", "bob's bank is Northwind")


async def keys_shown(view: FrameLocator | Page) -> list[str]:
    return await view.locator("#rows td.key").all_text_contents()


async def user_keys(client: Client) -> list[str]:
    return [m["key"] for m in await read_json(client, "memory://user")]


async def check_list_filter_text_and_preamble(
    view: FrameLocator | Page, expected: list[str], preamble: str
) -> None:
    """What both modes must show: the memories newest first, a working filter (ordered by `recall`),
    markup as text, the preamble exactly as a model gets it and its share of the budget."""
    await expect(view.locator("#rows tr")).to_have_count(len(expected))
    assert await keys_shown(view) == expected
    await expect(view.locator("#rows tr[data-key=markup] .content")).to_have_text(MARKUP)
    assert await view.locator("img").count() == 0
    assert "Northwind" not in (await view.locator("body").text_content() or "")
    assert await view.locator("#preamble").text_content() == preamble
    await expect(view.locator("#stats")).to_contain_text(f"preamble {len(preamble):,} characters")
    await expect(view.locator("#budget")).to_contain_text(f"{len(preamble):,} of 4,000 characters")

    await view.locator("#query").fill("biscuit")
    await expect(view.locator("#order")).to_have_text("most relevant first")  # recall answered
    await expect(view.locator("#rows tr")).to_have_count(1)
    assert await keys_shown(view) == ["dog"]
    await view.locator("#query").fill("")
    await expect(view.locator("#rows tr")).to_have_count(len(expected))


async def forget_units(view: FrameLocator | Page, client: Client) -> None:
    """Forget through the confirmation dialog (cancel first: nothing changes), then check the store."""
    await view.locator("#rows tr[data-key=units] button.danger").click()
    await expect(view.locator("#confirm")).to_be_visible()
    await view.locator("#confirm").press("Escape")
    await expect(view.locator("#confirm")).to_be_hidden()
    assert "units" in await user_keys(client)

    await view.locator("#rows tr[data-key=units] button.danger").click()
    await view.locator("#confirm-ok").click()
    await expect(view.locator("#status")).to_have_text('Forgot user memory "units".')
    await expect(view.locator("#rows tr[data-key=units]")).to_have_count(0)
    assert "units" not in await user_keys(client)


async def test_the_view_inside_an_mcp_apps_host_lists_filters_edits_and_forgets_memories(
    server: tuple[str, dict[str, str]], browser: Browser, shots: Path
) -> None:
    base, tokens = server
    alice_host = mcp_client(base, tokens["alice"], renders_apps=True)
    async with alice_host as alice, mcp_client(base, tokens["bob"]) as bob:
        await seed(alice, bob)
        page = await browser.new_page(viewport={"width": 1000, "height": 900})
        dialogs = Dialogs()
        page.on("dialog", dialogs)
        await page.route(HOST_URL, lambda route: route.fulfill(path=HOST_HTML, content_type="text/html"))

        async def host_forward(method: str, params: dict[str, Any]) -> dict[str, Any]:
            return await forward(alice, method, params)

        await page.expose_function("mcpForward", host_forward)
        await page.goto(HOST_URL)
        context = {
            "theme": "dark",
            "styles": {"variables": HOST_STYLES},
            "locale": "en-GB",
            "displayMode": "inline",
        }
        # As when the host's model calls recall: the host finds and reads the view through the server.
        await page.evaluate(
            "([args, context]) => openToolView('recall', args, context)", [{"query": "metric"}, context]
        )
        opened = await page.evaluate("window.openedView")
        assert opened == {"uri": VIEW_URI, "mimeType": VIEW_MIME_TYPE, "ui": {"prefersBorder": True}}
        view = page.frame_locator("#view")
        # The recall result the host pushed: what a model is given now.
        await expect(view.locator("#manifest-summary")).to_contain_text("facts given")

        # The query the tool was called with filters the list.
        await expect(view.locator("#query")).to_have_value("metric")
        await expect(view.locator("#rows tr")).to_have_count(1)
        await view.locator("#query").fill("")

        # The handshake came first, and nothing reached the server before it ended.
        await expect(view.locator("#rows tr")).to_have_count(4)
        log: list[dict[str, Any]] = await page.evaluate("window.bridgeLog")
        assert log[0]["method"] == "ui/initialize"
        assert log[0]["params"]["protocolVersion"] == "2026-01-26"
        assert log[0]["params"]["appInfo"]["name"] == "memory-router-view"
        assert log[1]["method"] == "ui/notifications/initialized"
        proxied = [m for m in log if m["method"] in ("tools/call", "resources/read", "tools/list")]
        assert proxied and all(m["initialized"] for m in proxied)
        reads = {m["params"]["uri"] for m in proxied if m["method"] == "resources/read"}
        assert reads == {"memory://user", "memory://session", "memory://preamble"}

        # The host's theme and style variables apply.
        frame = page.main_frame.child_frames[0]
        assert await frame.evaluate("document.documentElement.dataset.theme") == "dark"
        assert await frame.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(16, 20, 28)"
        await page.screenshot(path=shots / "host-embedded-dark.png", full_page=True)

        preamble = await read_text(alice, "memory://preamble")
        await check_list_filter_text_and_preamble(view, ["draft", "markup", "dog", "units"], preamble)
        await forget_units(view, alice)

        # Edit with the keyboard: Ctrl+Enter records the new content under the same key.
        await view.locator("#rows tr[data-key=dog] button:not(.danger)").click()
        await view.locator("#rows tr[data-key=dog] textarea").fill("My dog is called Biscuit, a beagle")
        await view.locator("#rows tr[data-key=dog] textarea").press("Control+Enter")
        await expect(view.locator("#rows tr[data-key=dog] .content")).to_have_text(
            "My dog is called Biscuit, a beagle"
        )
        dog = json.loads(await read_text(alice, "memory://user/dog"))
        assert dog["content"] == "My dog is called Biscuit, a beagle"
        tool_calls = [
            m["params"] for m in await page.evaluate("window.bridgeLog") if m["method"] == "tools/call"
        ]
        assert {
            "name": "memory",
            "arguments": {"op": "forget", "scope": "user", "key": "units"},
        } in tool_calls
        # The view searched through recall (the tool that opened it), via the host.
        assert {"name": "recall", "arguments": {"query": "biscuit"}} in tool_calls

        # Markup never ran: no dialog came from the view, although one would be seen.
        assert dialogs.seen == []
        await frame.evaluate("alert('probe')")
        assert dialogs.seen == ["alert: probe"]


async def test_the_app_page_asks_for_a_token_and_shows_only_that_users_memories(
    server: tuple[str, dict[str, str]], browser: Browser, shots: Path
) -> None:
    base, tokens = server
    async with mcp_client(base, tokens["alice"]) as alice, mcp_client(base, tokens["bob"]) as bob:
        await seed(alice, bob)

    context = await browser.new_context(viewport={"width": 1000, "height": 800}, color_scheme="light")
    page = await context.new_page()
    dialogs = Dialogs()
    page.on("dialog", dialogs)
    response = await page.goto(f"{base}/app")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == f"{page_policy()}; frame-ancestors 'none'"

    await expect(page.locator("#login")).to_be_visible()
    await page.locator("#token").fill("mr_not-a-token")
    await page.locator("#token").press("Enter")
    await expect(page.locator("#status")).to_have_text("The server refused this token.")
    await page.locator("#token").fill(tokens["alice"])
    await page.locator("#token").press("Enter")

    # A fresh MCP session: alice's user memories, none of the seeding session's.
    async with mcp_client(base, tokens["alice"]) as fresh:
        preamble = await read_text(fresh, "memory://preamble")
        await check_list_filter_text_and_preamble(page, ["markup", "dog", "units"], preamble)
        await page.locator("#refresh").focus()
        await page.keyboard.press("/")
        await expect(page.locator("#query")).to_be_focused()
        await page.screenshot(path=shots / "app-light.png", full_page=True)
        await forget_units(page, fresh)
    assert await page.evaluate("sessionStorage.getItem('memory-router.token')") == tokens["alice"]
    assert await page.evaluate("localStorage.length") == 0
    assert await context.cookies() == []
    assert dialogs.seen == []
    await context.close()

    # Bob, in his own tab, sees his memory and none of alice's.
    context = await browser.new_context(viewport={"width": 1000, "height": 600}, color_scheme="dark")
    page = await context.new_page()
    await page.goto(f"{base}/app")
    await page.locator("#token").fill(tokens["bob"])
    await page.locator("#token").press("Enter")
    await expect(page.locator("#rows tr")).to_have_count(1)
    assert await keys_shown(page) == ["bank"]
    assert "Biscuit" not in (await page.locator("body").text_content() or "")
    await page.screenshot(path=shots / "app-dark-bob.png", full_page=True)
    await context.close()
