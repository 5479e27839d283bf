"""An MCP server protected by oauthguard, with a local authorization server, in one command.

Run:  python examples/mcp_server.py            (Ctrl-C to stop)
      python examples/mcp_server.py --port 8000 --issuer-port 9000

It starts TestIssuer (metadata, registration, /authorize that approves at once, /token) and an
MCP streamable-HTTP server with two tools on 127.0.0.1, then prints how to connect. Any MCP
client with OAuth support can log in: it gets a 401, discovers the issuer through the
resource's metadata, registers, is approved, and calls tools. ``list_notes`` needs the
endpoint's scope ``notes:read``; ``add_note`` also needs ``notes:write``, so the first call
to it answers 403 ``insufficient_scope`` and the client steps up.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from _demo import free_port, serve
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from oauthguard import Metadata
from oauthguard.mcp import protect
from oauthguard.testing import TestIssuer

INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1"},
        },
    }
)
NOTES: list[str] = ["oauthguard protects this server"]

server = MCPServer("notes")


@server.tool()
def list_notes() -> list[str]:
    """Every note (scope notes:read)."""
    return NOTES


@server.tool()
def add_note(text: str) -> str:
    """Add a note (scope notes:write), signed by whoever the token says called."""
    token = get_access_token()  # the token oauthguard validated
    author = token.subject if token is not None else "?"
    NOTES.append(f"{text} (by {author})")
    return f"added note {len(NOTES)}"


def instructions(issuer: TestIssuer, endpoint: str) -> str:
    read = issuer.token(audience=endpoint, scope="notes:read", subject="alice")
    return f"""\
Authorization server (TestIssuer): {issuer.issuer}
MCP endpoint (protected):          {endpoint}

Connect an MCP client with OAuth support to {endpoint}, for example:
  npx @modelcontextprotocol/inspector   (transport "Streamable HTTP", URL above)
It is refused (401), finds the issuer through
  {endpoint.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")}
registers, is approved at once as user-1, and can call list_notes. Calling add_note
gets 403 insufficient_scope with scope="notes:read notes:write"; the client steps up.

Or by hand, with a token for notes:read (valid 5 minutes):
  curl -i -X POST {endpoint} -H 'Authorization: Bearer {read}' \\
    -H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json' \\
    -d '{INITIALIZE}'
Ready.
"""


async def main(port: int, issuer_port: int) -> None:
    issuer = TestIssuer(
        f"http://127.0.0.1:{issuer_port}",
        allowed_scopes=["notes:read", "notes:write"],
        subject="user-1",
    )
    endpoint = f"http://127.0.0.1:{port}/mcp"
    app = protect(
        server.streamable_http_app(),
        resource=endpoint,
        authorization_servers=issuer.issuer,
        scopes="notes:read",
        tool_scopes={"add_note": "notes:write"},
        metadata=Metadata(
            resource_name="Notes (example)", scopes_supported=("notes:read", "notes:write")
        ),
    )
    await serve([(issuer.app, issuer_port), (app, port)], lambda: instructions(issuer, endpoint))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="MCP server port (default: free)")
    parser.add_argument("--issuer-port", type=int, default=0, help="issuer port (default: free)")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port or free_port(), args.issuer_port or free_port()))
    except KeyboardInterrupt:
        pass
