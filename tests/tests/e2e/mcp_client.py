"""A real MCP client (the `mcp` package from PyPI) driving `hoopctl mcp`.

Run by tests/tests/e2e/mcp.rs. Reads a plan (JSON) on stdin: a list of steps,
each {"op": "list_tools"} or {"op": "call", "name": TOOL, "args": {...}}.
Starts `$HOOPCTL mcp --agent $MCP_AGENT` through `sh`, with `tee` on both
directions so the test can check the exact bytes of the stdio stream
($MCP_IN: client -> server, $MCP_OUT: server -> client). Prints one JSON
document on stdout: the server's initialize answer and each step's result as
it came over the wire (camelCase, by alias).
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def dump(model):
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def main():
    plan = json.load(sys.stdin)
    params = StdioServerParameters(
        command="sh",
        args=[
            "-c",
            'tee "$MCP_IN" | "$HOOPCTL" mcp --agent "$MCP_AGENT" | tee "$MCP_OUT"',
        ],
        env=dict(os.environ),
    )
    report = {"steps": []}
    with open(os.environ["MCP_ERR"], "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(
                read,
                write,
                client_info=types.Implementation(name="e2e-agent-host", version="7.1.2"),
                read_timeout_seconds=120,
            ) as session:
                report["initialize"] = dump(await session.initialize())
                for step in plan:
                    if step["op"] == "list_tools":
                        report["steps"].append(dump(await session.list_tools()))
                    else:
                        try:
                            result = await session.call_tool(step["name"], step.get("args", {}))
                            report["steps"].append(dump(result))
                        except MCPError as e:
                            report["steps"].append({"protocolError": dump(e.error)})
    json.dump(report, sys.stdout)


asyncio.run(main())
