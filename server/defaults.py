"""Defaults the command line shows in its help, kept apart from `server.config` so that `--help`
does not load the settings machinery (pydantic-settings)."""

HTTP_DEFAULT_HOST = "127.0.0.1"
HTTP_DEFAULT_PORT = 8765
