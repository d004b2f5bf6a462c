"""`ask`: one completion with memory, streamed to stdout; what happened around it goes to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from server.cli.options import UsageError, read_stdin_text

if TYPE_CHECKING:
    from server.cli.options import SubParsers
    from server.config import Settings
    from server.routing.router import RouteResult


def add_parser(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    ask = commands.add_parser(
        "ask", parents=[common], help="one completion with memory, printed as it streams"
    )
    ask.add_argument("prompt", nargs="?", help="the prompt; `-` or none reads it from a pipe on stdin")
    ask.add_argument("--model", help="provider/model or an alias (default: MEMORY_ROUTER_DEFAULT_MODEL)")
    ask.add_argument("--system", help="system prompt (the memory preamble is appended to it)")
    ask.add_argument("--no-memory", action="store_true", help="no memory preamble and no memory tool")
    ask.add_argument(
        "--json", action="store_true", help="print the structured result as JSON instead of the text"
    )
    ask.add_argument(
        "--show-memory", action="store_true", help="print which memories went into the prompt, on stderr"
    )
    ask.set_defaults(run=cmd_ask)


def _prompt(args: argparse.Namespace) -> str:
    if args.prompt not in (None, "-"):
        prompt = str(args.prompt)
    elif args.prompt is None and (sys.stdin is None or sys.stdin.isatty()):
        raise UsageError('ask needs a prompt: memory-router ask "your question" (or pipe it on stdin).')
    else:
        prompt = read_stdin_text("The prompt")
    if not prompt.strip():
        raise UsageError("The prompt is empty: give it as an argument or pipe it on stdin.")
    return prompt


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from server.memory.storage import Owner
    from server.providers.types import Message
    from server.routing.router import RouteRequest
    from server.runtime import open_runtime

    prompt = _prompt(args)
    owner = Owner(user=settings.user, session=settings.session or "cli")
    request = RouteRequest(
        model=args.model,
        messages=[Message(role="user", content=prompt)],
        system=args.system,
        memory=not args.no_memory,
    )

    async def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    async with open_runtime(settings) as runtime:
        result = await runtime.router.route(request, owner, None if args.json else show)
    _report(args, result)
    return 0


def _report(args: argparse.Namespace, result: RouteResult) -> None:
    structured = result.model_dump(mode="json")
    if args.json:
        print(json.dumps(structured, ensure_ascii=False, indent=2))
    elif not result.text.endswith("\n"):
        print()
    print(f"[model] answered by {result.provider}/{result.model}", file=sys.stderr)
    if args.show_memory:
        context = structured["memory_context"]
        print(f"[memory context] {json.dumps(context, ensure_ascii=False)}", file=sys.stderr)
    for op in result.memory_ops:
        print(f"[memory] {op.op} {op.scope} {op.key!r}: {op.outcome}", file=sys.stderr)
    for call in result.tool_calls:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        print(f"[not run] the model asked for a host tool: {call.name}({arguments})", file=sys.stderr)
