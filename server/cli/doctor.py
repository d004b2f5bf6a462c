"""`doctor`: open the store and check every configured provider with a cheap authenticated request."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.cli.options import SubParsers
    from server.config import Settings


def add_parser(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check the store and every configured provider"
    )
    doctor.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for each provider (default 10)"
    )
    doctor.set_defaults(run=cmd_doctor)


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from server.errors import MemoryRouterError
    from server.memory.storage import Owner, Scope
    from server.memory.store import display_url
    from server.routing.catalog import describe_models
    from server.runtime import open_runtime

    healthy = True

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal healthy
        healthy = healthy and ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")

    try:
        async with open_runtime(settings) as runtime:
            count = await runtime.store.count(Owner(user=settings.user, session="doctor"), Scope.USER)
            shown = display_url(settings.store)
            report(True, "store", f"{shown} opens; {count} user memories for {settings.user!r}")
            catalog = await describe_models(runtime.router, probe_all=True, wait=args.wait)
    except MemoryRouterError as e:
        report(False, "store", f"{e} (check MEMORY_ROUTER_STORE)")
        return 1
    for entry in catalog["providers"]:
        name = entry["provider"]
        if not entry["configured"]:
            print(f"--   {name}: not configured (set {entry['key_env']} to use it)")
        elif entry["usable"]:
            report(True, name, f"answers at {entry['base_url_env']}; default {entry['default_model']}")
        else:
            hint = (
                f"check {entry['key_env']} and {entry['base_url_env']}"
                if entry["key_env"]
                else (f"start Ollama or set {entry['base_url_env']}")
            )
            report(False, name, f"{entry['problem']} ({hint})")
    default = catalog["default_model"]
    print(f"default model: {default or 'none (set MEMORY_ROUTER_DEFAULT_MODEL or a provider key)'}")
    return 0 if healthy else 1
