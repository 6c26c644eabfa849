"""The official `mcp` package on both ends: a real MCP server behind a Gatehouse MCP proxy
deployed from the control plane, and the SDK's client calling through the gateway."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import mcp
import pytest

from conftest import free_port, wait_until


@pytest.fixture
def server(tmp_path):
    port = free_port()
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mcp_server.py")), str(port), str(calls)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    wait_until("the MCP server", lambda: httpx.post(url, json={}).status_code < 500)
    yield url, calls
    proc.terminate()
    proc.wait(timeout=10)


def run(coro):
    return asyncio.run(coro)


def test_hidden_tools_resources_and_prompts_are_filtered_and_refused(stack, server, unique):
    url, calls = server
    stack.create("mcp-proxies", {"id": unique, "displayName": unique, "context": f"/{unique}",
                                 "upstream": {"url": url}, "tools": ["add", "search_*"],
                                 "resources": ["docs://public/*"], "prompts": ["greet"]})
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    endpoint = f"{stack.gateway}/{unique}/mcp"

    async def session():
        async with mcp.Client(endpoint) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            result = await c.call_tool("add", {"a": 2, "b": 3})
            with pytest.raises(mcp.MCPError) as refused:
                await c.call_tool("delete_everything", {"confirm": True})
            prompts = [p.name for p in (await c.list_prompts()).prompts]
            resources = [str(r.uri) for r in (await c.list_resources()).resources]
            readme = await c.read_resource("docs://public/readme")
            with pytest.raises(mcp.MCPError) as hidden:
                await c.read_resource("docs://private/keys")
            return tools, result, refused.value, prompts, resources, readme, hidden.value

    tools, result, refused, prompts, resources, readme, hidden = run(session())
    assert tools == ["add", "search_docs"]
    assert result.structured_content == {"result": 5}
    assert "delete_everything" in str(refused)
    assert prompts == ["greet"]
    assert resources == ["docs://public/readme"]
    assert readme.contents[0].text == "read me"
    assert "docs://private/keys" in str(hidden)
    assert calls.read_text().split() == ["add"], "the hidden tool never reached the server"
    refused_count = stack.metric_at(1, "gatehouse_mcp_requests_total", artifact=unique, method="tools/call",
                                    outcome="refused")
    assert refused_count == 1
    assert stack.metric("gatehouse_mcp_requests_total", artifact=unique, method="tools/call", tool="add",
                        outcome="forwarded") == 1


def test_malformed_json_rpc_is_a_clear_error_and_the_gateway_keeps_serving(stack, server, unique):
    url, _ = server
    stack.create("mcp-proxies", {"id": unique, "displayName": unique, "context": f"/{unique}",
                                 "upstream": {"url": url}, "tools": ["add"]})
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    endpoint = f"{stack.gateway}/{unique}/mcp"
    r = httpx.post(endpoint, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32700
    r = httpx.post(endpoint, json=[])
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600

    async def still_serves():
        async with mcp.Client(endpoint) as c:
            return [t.name for t in (await c.list_tools()).tools]

    assert run(still_serves()) == ["add"]
