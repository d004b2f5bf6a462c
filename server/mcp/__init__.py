"""The MCP layer: everything that knows MCP or HTTP serving. Nothing outside this package imports `mcp`.

server.py         build_server(settings) and its lifespan
state.py          AppState, and who is calling (user, session)
memory_tool.py    the `memory` tool
route_tool.py     the `route_completion` tool (progress.py streams its text as progress)
resources.py      `memory://` and `router://` resources, completion of their keys
subscriptions.py  resource-change notifications scoped to their owner; legacy.py serves the
                  handshake-era `resources/subscribe` and `logging/setLevel`
http.py           streamable HTTP and SSE transports; auth.py bearer tokens; ratelimit.py
sdk.py            the only reach past the SDK's public API
"""
