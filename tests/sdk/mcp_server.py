"""A real MCP server for the tests, written with the official `mcp` package: streamable HTTP
with SSE answers. Each tool call is appended to the file named by argv[2], so a test can see
what reached the server. The third argument picks the server: `tools` (the default) or
`weather`, a second server with other tools, resources and prompts.

    python mcp_server.py <port> <calls-file> [tools|weather]
"""

import sys

from mcp.server.mcpserver import MCPServer

port, calls = int(sys.argv[1]), sys.argv[2]
variant = sys.argv[3] if len(sys.argv) > 3 else "tools"
server = MCPServer(variant)


def record(name):
    with open(calls, "a") as f:
        f.write(name + "\n")


if variant == "weather":
    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather."""
        record("forecast")
        return f"sunny in {city}"

    @server.resource("weather://today")
    def today() -> str:
        return "rain at noon"

    @server.prompt()
    def packing(city: str) -> str:
        return f"What to pack for {city}?"

    server.run("streamable-http", host="127.0.0.1", port=port)
    sys.exit(0)


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    record("add")
    return a + b


@server.tool()
def search_docs(query: str) -> str:
    """Searches the documentation."""
    record("search_docs")
    return f"found {query}"


@server.tool()
def delete_everything(confirm: bool) -> str:
    """A tool the proxy hides."""
    record("delete_everything")
    return "deleted"


@server.prompt()
def greet(name: str) -> str:
    return f"Hello {name}"


@server.prompt()
def internal_prompt() -> str:
    return "internal"


@server.resource("docs://public/readme")
def readme() -> str:
    return "read me"


@server.resource("docs://private/keys")
def keys() -> str:
    return "secret keys"


server.run("streamable-http", host="127.0.0.1", port=port)
