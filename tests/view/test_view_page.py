"""The memory view's HTML file itself: self-contained, small, strict policy, no HTML parsing of data."""

from __future__ import annotations

import re

from view_csp import VIEW, declared_source, digest, inline_blocks

from server.mcp.view import memories_html

HTML = VIEW.read_text(encoding="utf-8")
SCRIPT = "".join(inline_blocks(HTML, "script"))


def test_the_view_policy_allows_exactly_its_own_inline_style_and_script() -> None:
    for kind in ("style", "script"):
        (block,) = inline_blocks(HTML, kind)
        assert declared_source(HTML, kind) == digest(block), f"run `python -m tests.view.view_csp` ({kind})"
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', HTML)
    assert policy is not None
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in policy.group(1)


def test_the_view_never_turns_strings_into_markup_or_code() -> None:
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "srcdoc",
    ):
        assert sink not in SCRIPT, sink


def test_the_view_is_one_small_file_that_loads_nothing_from_elsewhere() -> None:
    assert len(HTML.encode()) < 64 * 1024
    assert re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", HTML) is None
    assert "@import" not in HTML and "url(" not in HTML
    assert re.search(r"https?://", HTML) is None


def test_the_package_ships_the_view_file() -> None:
    assert memories_html() == HTML
