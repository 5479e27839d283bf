"""An MCP tool that calls another API on the caller's behalf, with token exchange (RFC 8693).

Run:  python examples/mcp_downstream.py        (Ctrl-C to stop)

It starts, on 127.0.0.1: TestIssuer (the authorization server, with the token-exchange
grant), an orders API behind OAuthGuard (its own resource), and an MCP server behind
``protect()`` whose tool ``my_orders`` exchanges the caller's token for one meant for the
orders API and calls it. The MCP server never passes the caller's token on (the MCP
authorization spec forbids it): the orders API sees a token for itself, with the caller's
``sub`` and the MCP server as the actor (``act``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from _demo import free_port, serve
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard import OAuthGuard, ResourceServer, require
from oauthguard.exchange import TokenExchange
from oauthguard.mcp import exchanged_token, protect
from oauthguard.testing import TestIssuer

ISSUER_PORT, ORDERS_PORT, MCP_PORT = free_port(), free_port(), free_port()
ORDERS_API = f"http://127.0.0.1:{ORDERS_PORT}/orders"
MCP_ENDPOINT = f"http://127.0.0.1:{MCP_PORT}/mcp"

issuer = TestIssuer(f"http://127.0.0.1:{ISSUER_PORT}")
# --8<-- [start:exchange]
# The MCP server is a client of the authorization server, allowed to exchange its callers'
# tokens for the orders API with the scope orders:read, and nothing else.
client_id, client_secret = issuer.register_client(client_id="mcp-server")
issuer.allow_exchange(client_id, targets=[ORDERS_API], scopes="orders:read")
exchange = TokenExchange(issuer.issuer, client_id=client_id, client_secret=client_secret)
# --8<-- [end:exchange]


# -- the downstream API: its own resource, its own guard ------------------------------------
@require("orders:read")
async def orders(request: Request) -> Response:
    token = request.auth
    return JSONResponse(
        {
            "orders": [{"id": "o-1", "owner": token.subject}],
            "seen_by_the_api": {
                "aud": list(token.audience),
                "sub": token.subject,
                "actor": token.actor.subject if token.actor else None,
            },
        }
    )


orders_api = OAuthGuard(
    Starlette(routes=[Route("/orders", orders)]),
    ResourceServer(resource=ORDERS_API, authorization_servers=issuer.issuer),
)

# -- the MCP server --------------------------------------------------------------------------
# --8<-- [start:tool]
mcp = MCPServer("orders assistant")


@mcp.tool()
async def my_orders() -> dict[str, Any]:
    """The caller's orders, read from the orders API with an exchanged token."""
    token = await exchanged_token(exchange, resource=ORDERS_API, scope="orders:read")
    async with httpx.AsyncClient() as http:
        response = await http.get(ORDERS_API, headers=token.headers("GET", ORDERS_API))
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


# --8<-- [end:tool]


mcp_app = protect(
    mcp.streamable_http_app(),
    resource=MCP_ENDPOINT,
    authorization_servers=issuer.issuer,
    scopes="mcp:tools",
)


def instructions() -> str:
    token = issuer.token(subject="alice", audience=MCP_ENDPOINT, scope="mcp:tools")
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "my_orders"}}
    return f"""\
Authorization server (TestIssuer): {issuer.issuer}
Orders API (downstream):           {ORDERS_API}
MCP endpoint (protected):          {MCP_ENDPOINT}

Connect an MCP client with OAuth support to {MCP_ENDPOINT} and call my_orders, or use
this token of alice's for the MCP endpoint (valid 5 minutes):
  {token}
A tools/call body: {json.dumps(call)}
Ready.
"""


async def main() -> None:
    await serve(
        [(issuer.app, ISSUER_PORT), (orders_api, ORDERS_PORT), (mcp_app, MCP_PORT)],
        instructions,
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
