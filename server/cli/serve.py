"""`serve` and `token`: the only commands that load the MCP SDK (and, over HTTP, uvicorn)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from server.cli.options import port_number
from server.defaults import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT

if TYPE_CHECKING:
    from server.cli.options import SubParsers
    from server.config import Settings


def add_parsers(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="run the MCP server (stdio by default)", description=SERVE_DESCRIPTION
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "sse", "http"],
        default="stdio",
        help="stdio (a host starts the server), http (streamable HTTP at /mcp) or sse (legacy, at /sse)",
    )
    serve.add_argument(
        "--host",
        default=HTTP_DEFAULT_HOST,
        help=f"address to listen on, http and sse (default {HTTP_DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        type=port_number,
        default=HTTP_DEFAULT_PORT,
        help=f"port to listen on, http and sse (default {HTTP_DEFAULT_PORT})",
    )
    serve.set_defaults(run=cmd_serve)

    token = commands.add_parser(
        "token", parents=[common], help="manage HTTP bearer tokens (MEMORY_ROUTER_TOKENS_FILE)"
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", parents=[common], help="print a new token for USER once; only its hash is stored"
    )
    add.add_argument("user", help="the user the token authenticates as")
    actions.add_parser("list", parents=[common], help="list users that have tokens").set_defaults(user=None)
    revoke = actions.add_parser("revoke", parents=[common], help="remove every token of USER")
    revoke.add_argument("user", help="the user whose tokens to remove")
    token.set_defaults(run=cmd_token)


SERVE_DESCRIPTION = (
    "Run the MCP server. Under stdio, stdout carries only protocol messages; one line on stderr says "
    "when it is ready, with the session id that `memory list --session` takes."
)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.transport == "stdio":
        from server.mcp.server import announce_ready, build_server

        await build_server(settings, on_ready=announce_ready(settings, "stdio")).run_stdio_async()
        return 0
    from server.mcp.http import serve_http

    await serve_http(settings, transport=args.transport, host=args.host, port=args.port)
    return 0


async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from server.mcp.auth import token_command

    return token_command(args.action, args.user, settings)
