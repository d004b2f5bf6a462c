"""`doctor` and `models`: check the store and every configured provider; list their models."""

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

    models = commands.add_parser(
        "models", parents=[common], help="list every configured provider's models, one per line"
    )
    models.add_argument("--json", action="store_true", help="print the router://models document")
    models.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for each provider's list (default 10)"
    )
    models.set_defaults(run=cmd_models)


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from server.errors import MemoryRouterError
    from server.memory.storage import Owner, Scope
    from server.memory.store import display_url
    from server.routing.catalog import describe_models
    from server.routing.catalog_text import doctor_lines, status_line
    from server.runtime import open_runtime

    try:
        async with open_runtime(settings) as runtime:
            count = await runtime.store.count(Owner(user=settings.user, session="doctor"), Scope.USER)
            store = f"{display_url(settings.store)} opens; {count} user memories for {settings.user!r}"
            print(status_line(True, "store", store))
            catalog = await describe_models(runtime.router, probe_all=True, wait=args.wait)
    except MemoryRouterError as e:
        print(status_line(False, "store", f"{e} (check MEMORY_ROUTER_STORE)"))
        return 1
    lines, healthy = doctor_lines(catalog)
    print("\n".join(lines))
    default = catalog["default_model"]
    print(f"default model: {default or 'none (set MEMORY_ROUTER_DEFAULT_MODEL or a provider key)'}")
    return 0 if healthy else 1


async def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """The `router://models` document for hosts that cannot read resources."""
    import json
    import sys

    import httpx

    from server.providers import NO_PROVIDER, ProviderDirectory
    from server.routing.catalog import describe_providers
    from server.routing.catalog_text import model_lines, model_notes
    from server.runtime import CONNECT_TIMEOUT_SECONDS

    # No store: listing models needs none, and a running server may hold it.
    timeout = httpx.Timeout(settings.request_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(timeout=timeout) as http:
        catalog = await describe_providers(ProviderDirectory(settings, http), fresh=True, wait=args.wait)
    if args.json:
        print(json.dumps(catalog, indent=2))
    else:
        for line in model_lines(catalog):
            print(line)
        for note in model_notes(catalog):
            print(note, file=sys.stderr)
    if not any(entry["configured"] for entry in catalog["providers"]):
        print(f"memory-router: {NO_PROVIDER}", file=sys.stderr)
        return 1
    return 0
