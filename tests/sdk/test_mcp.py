"""The official `mcp` package on both ends: a real MCP server behind a Gatehouse MCP proxy
deployed from the control plane, and the SDK's client calling through the gateway."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import mcp
import pytest

from conftest import free_port, wait_until


def start_server(tmp_path, variant):
    port = free_port()
    calls = tmp_path / f"{variant}-calls.txt"
    calls.write_text("")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mcp_server.py")), str(port), str(calls),
                             variant], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    wait_until(f"the {variant} MCP server", lambda: httpx.post(url, json={}).status_code < 500)
    return proc, url, calls


@pytest.fixture
def server(tmp_path):
    proc, url, calls = start_server(tmp_path, "tools")
    yield url, calls
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def weather(tmp_path):
    proc, url, calls = start_server(tmp_path, "weather")
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
    # With one server, sessions are the server's: an id it does not know is its 404.
    r = httpx.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"accept": "application/json, text/event-stream", "mcp-session-id": "no-such-session"})
    assert r.status_code == 404, r.text

    async def still_serves():
        async with mcp.Client(endpoint) as c:
            return [t.name for t in (await c.list_tools()).tools]

    assert run(still_serves()) == ["add"]


class Issuer:
    """A token issuer: an Ed25519 key, its JWKS served over HTTP, and tokens signed with it."""

    def __init__(self):
        import base64
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
                                     "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(jwks)))
                self.end_headers()
                self.wfile.write(jwks)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.issuer = "https://id.sdk.test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scope, aud="mcp", exp_in=300, key=None):
        import time

        import jwt
        claims = {"iss": self.issuer, "aud": aud, "sub": "someone", "scope": scope, "exp": int(time.time()) + exp_in}
        return jwt.encode(claims, key or self.key, algorithm="EdDSA", headers={"kid": "k1"})


def test_tokens_decide_which_tools_a_caller_sees_and_calls(stack, server, unique):
    import httpx2
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from mcp.client.streamable_http import streamable_http_client

    url, calls = server
    issuer = Issuer()
    stack.create("mcp-proxies", {
        "id": unique, "displayName": unique, "context": f"/{unique}", "upstream": {"url": url},
        "policies": [
            {"name": "jwt-auth", "params": {"issuer": issuer.issuer, "audiences": ["mcp"], "jwksUrl": issuer.jwks_url}},
            {"name": "mcp-authz", "params": {"rules": [{"tools": ["delete_*"], "requiredScopes": ["admin"]}]}},
        ]})
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    endpoint = f"{stack.gateway}/{unique}/mcp"

    # Without a token: 401 naming the protected-resource metadata, which names the issuer.
    r = httpx.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    metadata_url = challenge.split('resource_metadata="')[1].rstrip('"')
    metadata = httpx.get(metadata_url).json()
    assert metadata["resource"] == endpoint
    assert metadata["authorization_servers"] == [issuer.issuer]

    for bad in [issuer.token("admin", exp_in=-120), issuer.token("admin", aud="other"),
                issuer.token("admin", key=Ed25519PrivateKey.generate())]:
        r = httpx.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                       headers={"authorization": f"Bearer {bad}"})
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]

    async def as_caller(scope):
        client = httpx2.AsyncClient(headers={"authorization": f"Bearer {issuer.token(scope)}"})
        async with mcp.Client(streamable_http_client(endpoint, http_client=client)) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            try:
                await c.call_tool("delete_everything", {"confirm": True})
                refused = None
            except mcp.MCPError as e:
                refused = str(e)
            return tools, refused

    tools, refused = run(as_caller("read"))
    assert tools == ["add", "search_docs"], "left out of this caller's list"
    assert "delete_everything" in refused and "admin" in refused
    assert "delete_everything" not in calls.read_text()
    tools, refused = run(as_caller("read admin"))
    assert tools == ["add", "delete_everything", "search_docs"]
    assert refused is None
    assert calls.read_text().split() == ["delete_everything"]


def test_a_session_begun_on_one_gateway_continues_on_another(stack, server, unique):
    url, calls = server
    stack.create("mcp-proxies", {"id": unique, "displayName": unique, "context": f"/{unique}",
                                 "upstream": {"url": url}, "tools": ["add"]})
    other = stack.second_gateway()
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp", gateway="edge-2", base=other)
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}

    def rpc(base, body, session=None):
        h = dict(headers, **({"mcp-session-id": session} if session else {}))
        r = httpx.post(f"{base}/{unique}/mcp", json=body, headers=h)
        assert r.status_code in (200, 202), r.text
        data = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        return r, (json.loads(data[-1]) if data else (r.json() if r.content else None))

    r, init = rpc(stack.gateway, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    session = r.headers["mcp-session-id"]
    assert init["result"]["serverInfo"]["name"] == "tools"
    rpc(stack.gateway, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    # The next calls of the same session go through the other gateway, with no affinity.
    _, listed = rpc(other, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert [t["name"] for t in listed["result"]["tools"]] == ["add"]
    _, called = rpc(other, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                            "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}, session)
    assert called["result"]["structuredContent"] == {"result": 3}
    _, refused = rpc(other, {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                             "params": {"name": "delete_everything", "arguments": {"confirm": True}}}, session)
    assert "delete_everything" in refused["error"]["message"]
    assert calls.read_text().split() == ["add"]
    r = httpx.delete(f"{other}/{unique}/mcp", headers=dict(headers, **{"mcp-session-id": session}))
    assert r.status_code in (200, 204)


def test_one_endpoint_over_two_servers_lists_prefixed_and_routes_calls(stack, server, weather, unique):
    tools_url, tools_calls = server
    weather_url, weather_calls = weather
    stack.create("mcp-proxies", {"id": unique, "displayName": unique, "context": f"/{unique}",
                                 "upstreams": [{"name": "math", "url": tools_url}, {"name": "weather", "url": weather_url}],
                                 "tools": ["math_add", "math_search_*", "weather_*"],
                                 "resources": ["math+docs://public/*", "weather+*"]})
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    endpoint = f"{stack.gateway}/{unique}/mcp"

    async def session():
        async with mcp.Client(endpoint) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            added = await c.call_tool("math_add", {"a": 2, "b": 3})
            forecast = await c.call_tool("weather_forecast", {"city": "Oslo"})
            with pytest.raises(mcp.MCPError) as refused:
                await c.call_tool("math_delete_everything", {"confirm": True})
            with pytest.raises(mcp.MCPError) as unprefixed:
                await c.call_tool("add", {"a": 1, "b": 1})
            resources = sorted(str(r.uri) for r in (await c.list_resources()).resources)
            today = await c.read_resource("weather+weather://today")
            prompts = sorted(p.name for p in (await c.list_prompts()).prompts)
            packing = await c.get_prompt("weather_packing", {"city": "Oslo"})
            return tools, added, forecast, refused.value, unprefixed.value, resources, today, prompts, packing

    tools, added, forecast, refused, unprefixed, resources, today, prompts, packing = run(session())
    assert tools == ["math_add", "math_search_docs", "weather_forecast"]
    assert added.structured_content == {"result": 5}
    assert forecast.content[0].text == "sunny in Oslo"
    assert "math_delete_everything" in str(refused)
    assert "'add'" in str(unprefixed)
    assert resources == ["math+docs://public/readme", "weather+weather://today"]
    assert today.contents[0].text == "rain at noon"
    assert str(today.contents[0].uri) == "weather+weather://today"
    assert prompts == ["math_greet", "math_internal_prompt", "weather_packing"]
    assert "Oslo" in packing.messages[0].content.text
    assert tools_calls.read_text().split() == ["add"], "the hidden tool never reached its server"
    assert weather_calls.read_text().split() == ["forecast"]


def test_a_session_over_two_servers_continues_on_another_gateway(stack, server, weather, unique):
    tools_url, tools_calls = server
    weather_url, _ = weather
    stack.create("mcp-proxies", {"id": unique, "displayName": unique, "context": f"/{unique}",
                                 "upstreams": [{"name": "math", "url": tools_url}, {"name": "weather", "url": weather_url}]})
    other = stack.second_gateway()
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp")
    stack.deploy("mcp-proxies", unique, f"/{unique}/mcp", gateway="edge-2", base=other)
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}

    def rpc(base, body, session=None, expect=(200, 202)):
        h = dict(headers, **({"mcp-session-id": session} if session else {}))
        r = httpx.post(f"{base}/{unique}/mcp", json=body, headers=h)
        assert r.status_code in expect, r.text
        data = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        return r, (json.loads(data[-1]) if data else (r.json() if r.content else None))

    r, init = rpc(stack.gateway, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    session = r.headers["mcp-session-id"]
    assert init["result"]["serverInfo"]["name"] == unique
    assert "tools" in init["result"]["capabilities"]
    rpc(stack.gateway, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    # The same session through the other gateway: no affinity, no shared store.
    _, listed = rpc(other, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    names = sorted(t["name"] for t in listed["result"]["tools"])
    assert names == ["math_add", "math_delete_everything", "math_search_docs", "weather_forecast"]
    _, called = rpc(other, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                            "params": {"name": "math_add", "arguments": {"a": 1, "b": 2}}}, session)
    assert called["result"]["structuredContent"] == {"result": 3}
    assert tools_calls.read_text().split() == ["add"]

    # Ids the gateways did not make: a clear 404 naming the problem, and serving goes on.
    for bad in ["not-a-session", session[:-4] + "AAAA"]:
        r, err = rpc(other, {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}, bad, expect=(404,))
        assert "unknown session" in err["error"]["message"]
    r, err = rpc(other, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, expect=(400,))
    assert "Mcp-Session-Id" in err["error"]["message"]

    # Ending the session through one gateway ends it for both.
    r = httpx.delete(f"{other}/{unique}/mcp", headers=dict(headers, **{"mcp-session-id": session}))
    assert r.status_code in (200, 204)
    r, err = rpc(stack.gateway, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, session, expect=(404,))
    assert "begin a new session" in err["error"]["message"]
    _, listed = rpc(stack.gateway, {"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    assert listed["result"]["protocolVersion"]
