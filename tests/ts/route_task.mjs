// Runs route_completion as an MCP task with the official TypeScript packages
// (@modelcontextprotocol/client + @modelcontextprotocol/ext-tasks) against memory-router over
// streamable HTTP, and prints what happened for tests/routing/test_route_tasks_ts.py to check.
// usage: node route_task.mjs URL legacy|modern TOKEN 'JSON-ARGUMENTS'
//   legacy: the 2025-11-25 handshake and its tasks; modern: 2026-07-28 and the Tasks extension.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient, resultFromTaskOutcome } from "@modelcontextprotocol/ext-tasks/client";

const [url, era, token, argumentsJson] = process.argv.slice(2);
const clientInfo = { name: "memory-router-ts-tasks-test", version: "1.0.0" };
const auth = { authorization: `Bearer ${token}` };
const client = new Client(
  clientInfo,
  era === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : { versionNegotiation: { mode: "legacy" } },
);
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth } }));
console.log("version", client.getNegotiatedProtocolVersion());

// The 2026 task shapes go around the SDK Client (ext-tasks asks for a raw dispatcher): one JSON-RPC
// POST per request, with the 2026 routing headers.
let nextId = 1;
async function rawDispatch(request, options = {}) {
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": request.method,
    ...auth,
    ...(options.context?.headers ?? {}),
  };
  if (request.method === "tools/call") headers["mcp-name"] = request.params.name;
  const response = await fetch(url, {
    method: "POST",
    headers,
    signal: options.signal,
    body: JSON.stringify({ jsonrpc: "2.0", id: `raw-${nextId++}`, ...request }),
  });
  let text = await response.text();
  if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    const messages = text.split("\n").filter((line) => line.startsWith("data:")).map((line) => JSON.parse(line.slice(5)));
    text = JSON.stringify(messages.find((message) => "result" in message || "error" in message));
  }
  const message = JSON.parse(text);
  if (request.method === "tasks/get" && message.result) console.log("status", message.result.status);
  return "error" in message ? { kind: "error", error: message.error } : { kind: "result", result: message.result };
}

const session = createTaskSessionFromClient(client, {
  endpointId: "memory-router",
  ...(era === "modern"
    ? { rawDispatch, v2RequestFraming: { protocolVersion: "2026-07-28", clientInfo, clientCapabilities: {} } }
    : {}),
});
try {
  const execution = await session.callTool("route_completion", JSON.parse(argumentsJson), {
    task: { preference: "require" },
  });
  const { outcome } = await execution.settle();
  console.log("outcome", outcome.status);
  if (outcome.status === "completed") console.log("RESULT", JSON.stringify(resultFromTaskOutcome(outcome)));
} finally {
  await session.close();
  await client.close();
}
