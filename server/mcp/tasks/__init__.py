"""`route_completion` as an MCP task, in both protocol eras (README: "Long completions as tasks").

wire.py        the task shapes of 2025-11-25 and of the 2026-07-28 Tasks extension; shared errors
runner.py      TaskRunner: background work, status messages, leases, cancellation, limits
route_task.py  route_completion's body as task work
extension.py   the 2026-07-28 extension (SDK `Extension`), and the `tasks/*` method bindings
methods.py     tasks/get, cancel, update, result, list
legacy.py      2025-11-25: capability, taskSupport and task creation (SDK middleware)

Task state lives in the store (`server.memory.tasks`), bound to the user.
"""
