"""The view's Content-Security-Policy allows exactly its own inline style and script, by hash.

Run `python -m tests.view.view_csp` from the repository root after editing the view's style or
script: it rewrites the two hashes in the policy (the tests fail until then, and so does the page).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

VIEW = Path(__file__).resolve().parents[2] / "server" / "mcp" / "view" / "memories.html"

_BLOCK = {kind: re.compile(rf"<{kind}>(.*?)</{kind}>", re.DOTALL) for kind in ("style", "script")}
_SOURCE = {
    "style": re.compile(r"style-src '(sha256-[^']*)'"),
    "script": re.compile(r"script-src '(sha256-[^']*)'"),
}


def digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def inline_blocks(html: str, kind: str) -> list[str]:
    """The text of every inline `<style>` or `<script>` element, exactly as the browser hashes it."""
    return _BLOCK[kind].findall(html)


def declared_source(html: str, kind: str) -> str:
    """The hash source the policy allows for `kind` (style or script)."""
    found = _SOURCE[kind].search(html)
    if found is None:
        raise ValueError(f"The view's policy names no sha256 source for {kind}-src.")
    return found.group(1)


def with_current_hashes(html: str) -> str:
    for kind in ("style", "script"):
        (block,) = inline_blocks(html, kind)
        html = _SOURCE[kind].sub(f"{kind}-src '{digest(block)}'", html, count=1)
    return html


if __name__ == "__main__":
    VIEW.write_text(with_current_hashes(VIEW.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated the policy hashes of {VIEW}")
