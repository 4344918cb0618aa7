"""One session of the official Python MCP SDK against `memorygraph serve --http`.

Run by tests/python_sdk.rs with the venv's python of one SDK release:

    python sdk_http_client.py URL [--token TOKEN] [--mode legacy|auto|2026-07-28]

It connects through the SDK's Streamable HTTP client (with `Authorization: Bearer TOKEN`
when a token is given), lists the tools, stores a memory, finds it with search_memories
and asks get_memory for an id that does not exist. It prints one JSON object on stdout:
what was negotiated, what each call gave, and every request the SDK put on the wire (its
JSON-RPC method, the protocol version it named, the HTTP status it got), so the Rust test
can check which protocol era was really spoken. When the session fails it prints
{"error": ..., "requests": [...]} and exits 1.

SDK 1.x has one way to connect (the initialize handshake); 2.x chooses with `mode`:
"legacy" is the handshake, "auto" probes `server/discover` first, "2026-07-28" speaks that
revision without a probe. `--mode` is ignored by 1.x.
"""

import argparse
import asyncio
import json
import sys
from importlib.metadata import version

SDK = version("mcp")
MAJOR = int(SDK.split(".")[0])
MISSING_ID = "00000000-0000-4000-8000-000000000000"
TITLE = "Reached by the Python MCP SDK"


def wire(requests):
    """httpx event hooks that record each request's method, protocol version and status."""

    async def on_request(request):
        entry = {"http": request.method, "method": None, "protocol_version": None}
        entry["header"] = request.headers.get("mcp-protocol-version")
        entry["session"] = request.headers.get("mcp-session-id")
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = {}
            if isinstance(body, dict):
                params = body.get("params") or {}
                entry["method"] = body.get("method")
                entry["protocol_version"] = params.get("protocolVersion") or (
                    params.get("_meta") or {}
                ).get("io.modelcontextprotocol/protocolVersion")
        requests.append(entry)
        request.extensions["entry"] = entry

    async def on_response(response):
        entry = response.request.extensions.get("entry")
        if entry is not None:
            entry["status"] = response.status_code

    return {"request": [on_request], "response": [on_response]}


def dump(result):
    """A result model as the JSON the server sent (camelCase names)."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def calls(list_tools, call_tool):
    """The same four steps for both SDK lines, through their own list/call functions."""
    tools = dump(await list_tools())["tools"]
    stored = dump(
        await call_tool(
            "store_memory",
            {
                "type": "fix",
                "title": TITLE,
                "content": "Stored over Streamable HTTP by the official Python MCP SDK.",
            },
        )
    )
    found = dump(await call_tool("search_memories", {"query": "Python SDK"}))
    missing = dump(await call_tool("get_memory", {"memory_id": MISSING_ID}))
    return {
        "tool_count": len(tools),
        "tools": sorted(t["name"] for t in tools),
        "stored": stored,
        "found": found,
        "missing": missing,
    }


async def with_sdk_1(url, headers, requests):
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    http = httpx.AsyncClient(headers=headers, timeout=60, event_hooks=wire(requests))
    async with http, streamable_http_client(url, http_client=http) as (read, write, _):
        async with ClientSession(read, write) as session:
            initialized = await session.initialize()
            summary = await calls(session.list_tools, session.call_tool)
            summary["protocol_version"] = initialized.protocolVersion
            summary["server"] = initialized.serverInfo.name
            return summary


async def with_sdk_2(url, headers, requests, mode):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers, timeout=60, event_hooks=wire(requests))
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, cache=None) as client:
            summary = await calls(client.list_tools, client.call_tool)
            summary["protocol_version"] = client.protocol_version
            info = client.session.server_info
            summary["server"] = info.name if info else None
            return summary


def root_cause(error):
    """The innermost exceptions of an exception group, as text."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(root_cause(e) for e in error.exceptions)
    return f"{type(error).__name__}: {error}"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--token")
    parser.add_argument("--mode", default="auto")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    requests = []
    try:
        if MAJOR < 2:
            summary = await asyncio.wait_for(with_sdk_1(args.url, headers, requests), 120)
        else:
            summary = await asyncio.wait_for(
                with_sdk_2(args.url, headers, requests, args.mode), 120
            )
    except BaseException as error:  # the SDK raises groups, timeouts and its own errors
        print(json.dumps({"sdk": SDK, "error": root_cause(error), "requests": requests}))
        return 1
    summary["sdk"] = SDK
    summary["requests"] = requests
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
