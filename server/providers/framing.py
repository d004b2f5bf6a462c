"""Incremental stream framing: server-sent events and newline-delimited JSON.

Both parsers take bytes exactly as they arrive (split anywhere, even inside a UTF-8 character or
between CR and LF) and return the complete frames seen so far.
"""

from __future__ import annotations

import codecs
from typing import Protocol


class _LineSplitter:
    """Splits decoded text into lines ending in LF, CRLF or CR."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""

    def feed(self, chunk: bytes) -> list[str]:
        text = self._buffer + self._decoder.decode(chunk)
        held = ""
        if text.endswith("\r"):  # maybe the first half of a CRLF: decide when the next chunk comes
            text, held = text[:-1], "\r"
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, rest = text.split("\n")
        self._buffer = rest + held
        return lines

    def flush(self) -> list[str]:
        rest = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        return [line for line in rest.rstrip("\r").split("\r") if line] if rest else []


class Framing(Protocol):
    def feed(self, chunk: bytes) -> list[str]: ...

    def close(self) -> list[str]:
        """Frames left when the body ends without a final terminator."""
        ...


class SSEParser:
    """Yields each event's data. Every provider we speak repeats the event name inside the data."""

    def __init__(self) -> None:
        self._lines = _LineSplitter()
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        return self._take(self._lines.feed(chunk))

    def close(self) -> list[str]:
        return self._take([*self._lines.flush(), ""])

    def _take(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                self._data = []
                continue
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value.removeprefix(" "))
        return events


class NDJSONParser:
    def __init__(self) -> None:
        self._lines = _LineSplitter()

    def feed(self, chunk: bytes) -> list[str]:
        return [line for line in self._lines.feed(chunk) if line.strip()]

    def close(self) -> list[str]:
        return [line for line in self._lines.flush() if line.strip()]
