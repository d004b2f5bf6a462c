"""The `memory-router` command line (also `python -m server`): one module per command group.

stdout is reserved for the protocol under `serve` (stdio); every log line goes to stderr.
"""

from server.cli.app import main

__all__ = ["main"]
