"""Keeping API keys out of every text we pass on.

A key rarely reappears verbatim: an HTTP library quotes the header it refused (`b'Bearer sk-...\\r'`),
a gateway echoes the request URL-encoded or inside a JSON string. So each key is redacted in every
form those layers write it, and a text cut short is checked for the start of a key at its end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
ERROR_BODY_LIMIT = 500  # characters of a non-JSON error body worth showing
MIN_PREFIX = 8  # a key's first characters that are worth hiding at the end of a cut


def _repr_escaped(text: str) -> str:
    return repr(text)[1:-1]


def _bytes_repr_escaped(text: str) -> str:
    return repr(text.encode())[2:-1]


def _json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


def _json_escaped_slashes(text: str) -> str:
    return _json_escaped(text).replace("/", "\\/")  # as PHP and some gateways write JSON


def _url_encoded(text: str) -> str:
    return quote(text, safe="")


def _form_encoded(text: str) -> str:
    return quote_plus(text, safe="")


_ESCAPES: tuple[Callable[[str], str], ...] = (
    _repr_escaped,
    _bytes_repr_escaped,
    _json_escaped,
    _json_escaped_slashes,
    _url_encoded,
    _form_encoded,
)


def variants(secrets: Iterable[str]) -> list[str]:
    """Every form of each secret worth looking for, longest first so an escaped form goes whole."""
    found: set[str] = set()
    for secret in secrets:
        plain = {form for form in (secret, secret.strip()) if form}
        once = {escape(form) for form in plain for escape in _ESCAPES}
        twice = {escape(form) for form in once for escape in _ESCAPES}  # e.g. a repr inside JSON
        found |= plain | once | twice
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    return _replace(text, variants(secrets))


def _replace(text: str, forms: list[str]) -> str:
    for form in forms:
        text = text.replace(form, REDACTED)
    return text


def clip(text: str, secrets: Iterable[str], limit: int = ERROR_BODY_LIMIT) -> str:
    """`text` redacted, then cut to `limit` characters, with any start of a key left at the cut hidden."""
    forms = variants(secrets)
    cut = _replace(text, forms)[:limit]
    longest = 0
    for form in forms:
        for size in range(min(len(form) - 1, len(cut)), max(MIN_PREFIX, longest + 1) - 1, -1):
            if cut.endswith(form[:size]):
                longest = size
                break
    return cut[: len(cut) - longest] + REDACTED if longest else cut
