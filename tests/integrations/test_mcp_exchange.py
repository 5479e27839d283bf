"""An MCP tool calling a downstream API on the caller's behalf: the real ``mcp`` client calls
a tool of a ``protect()``ed server, which exchanges the caller's token (RFC 8693, at
TestIssuer) for one meant for a second API behind ``OAuthGuard``, all over loopback HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from oidc_provider import jose_part
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import free_port, serve

from oauthguard import OAuthGuard, ResourceServer
from oauthguard.exchange import TokenExchange
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio


@dataclass
class Deployment:
    issuer: TestIssuer
    mcp: str
    downstream: str
    exchange: TokenExchange
    #: The Authorization headers the downstream API received.
    received: list[str] = field(default_factory=list)


def downstream_api(deployment: Deployment) -> OAuthGuard:
    """The second API: its own resource, its own guard; answers who called it."""

    async def orders(request: Request) -> Response:
        deployment.received.append(request.headers["authorization"])
        token = request.auth
        return JSONResponse(
            {
                "sub": token.subject,
                "aud": list(token.audience),
                "actor": token.actor.subject if token.actor else None,
                "orders": ["o-1", "o-2"],
            }
        )

    server = ResourceServer(
        resource=deployment.downstream, authorization_servers=deployment.issuer.issuer
    )
    return OAuthGuard(Starlette(routes=[Route("/api", orders)]), server)


def mcp_app(deployment: Deployment) -> Any:
    from mcp.server.mcpserver import MCPServer

    from oauthguard.mcp import exchanged_token, protect

    server = MCPServer("orders")

    @server.tool()
    async def list_orders() -> dict[str, Any]:
        token = await exchanged_token(
            deployment.exchange, resource=deployment.downstream, scope="orders:read"
        )
        async with httpx.AsyncClient() as http:
            url = deployment.downstream
            response = await http.get(url, headers=token.headers("GET", url))
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    @server.tool()
    async def payroll() -> str:
        token = await exchanged_token(deployment.exchange, resource="https://payroll.test/api")
        async with httpx.AsyncClient() as http:  # never reached: the exchange is refused
            await http.get(deployment.downstream, headers=token.headers("GET", "x"))
        return "paid"

    return protect(
        server.streamable_http_app(),
        resource=deployment.mcp,
        authorization_servers=deployment.issuer.issuer,
        scopes="mcp:tools",
    )


@contextlib.contextmanager
def deployed() -> Iterator[Deployment]:
    issuer_port, mcp_port, downstream_port = free_port(), free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    client_id, secret = issuer.register_client(client_id="mcp-server")
    assert secret is not None
    deployment = Deployment(
        issuer,
        f"http://127.0.0.1:{mcp_port}/mcp",
        f"http://127.0.0.1:{downstream_port}/api",
        TokenExchange(issuer.issuer, client_id=client_id, client_secret=secret),
    )
    issuer.allow_exchange(client_id, targets=[deployment.downstream], scopes="orders:read")
    with (
        serve(issuer.app, port=issuer_port),
        serve(downstream_api(deployment), port=downstream_port),
        serve(mcp_app(deployment), port=mcp_port),
    ):
        yield deployment


@contextlib.asynccontextmanager
async def mcp_client(url: str, token: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with deployed() as made:
        yield made


async def test_the_tool_calls_the_downstream_api_with_an_exchanged_token(
    deployment: Deployment,
) -> None:
    incoming = deployment.issuer.token(subject="alice", audience=deployment.mcp, scope="mcp:tools")
    async with mcp_client(deployment.mcp, incoming) as client:
        result = await client.call_tool("list_orders", {})
        again = await client.call_tool("list_orders", {})
    assert not result.is_error, result
    assert result.structured_content == {
        "sub": "alice",  # the caller's subject
        "aud": [deployment.downstream],  # the downstream API's own audience
        "actor": "mcp-server",  # RFC 8693 §4.1: who acts for her
        "orders": ["o-1", "o-2"],
    }
    assert not again.is_error
    [first, second] = deployment.received
    assert first == second  # the exchanged token came from the cache the second time
    sent = first.removeprefix("Bearer ")
    assert sent != incoming and incoming not in first  # never the MCP server's own token
    assert jose_part(sent, 1)["aud"] == deployment.downstream
    assert deployment.exchange.calls == 1


async def test_a_target_the_policy_refuses_is_a_tool_error_and_the_api_is_never_called(
    deployment: Deployment,
) -> None:
    incoming = deployment.issuer.token(subject="alice", audience=deployment.mcp, scope="mcp:tools")
    async with mcp_client(deployment.mcp, incoming) as client:
        result = await client.call_tool("payroll", {})
    assert result.is_error
    [content] = result.content
    assert getattr(content, "text", "") == (
        "Error executing tool payroll: the authorization server refused to exchange the token "
        "for https://payroll.test/api: invalid_target (this client may not exchange for that "
        "target)"
    )
    assert deployment.received == []


async def test_an_unreachable_authorization_server_is_a_tool_error_saying_try_again(
    deployment: Deployment,
) -> None:
    incoming = deployment.issuer.token(subject="alice", audience=deployment.mcp, scope="mcp:tools")
    deployment.exchange = TokenExchange(
        token_endpoint=f"http://127.0.0.1:{free_port()}/token",  # nobody listens there
        client_id="mcp-server",
        client_secret="secret",
    )
    async with mcp_client(deployment.mcp, incoming) as client:
        result = await client.call_tool("list_orders", {})
    assert result.is_error
    [content] = result.content
    assert getattr(content, "text", "") == (
        "Error executing tool list_orders: the token could not be exchanged: the token endpoint "
        "is unreachable; try again later"
    )
    assert deployment.received == []
