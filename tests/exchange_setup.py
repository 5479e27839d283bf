"""Shared by the token-exchange tests: a TestIssuer that lets an MCP server's client
exchange its callers' tokens for a downstream API, and the tokens it starts from."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from oauthguard import AccessToken, ResourceServer
from oauthguard.exchange import TokenExchange
from oauthguard.testing import TestIssuer

MCP = "https://mcp.test/mcp"
DOWNSTREAM = "https://orders.test/api"
ELSEWHERE = "https://payroll.test/api"
CLIENT_ID, CLIENT_SECRET = "mcp-server", "mcp-server-secret"


class Clock:
    """An injected clock: ``now`` seconds since the epoch, moved by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    issuer: TestIssuer
    clock: Clock
    http: httpx.AsyncClient
    server: ResourceServer

    def exchange(self, **settings: Any) -> TokenExchange:
        """A TokenExchange of the MCP server's client at this issuer (in-process HTTP)."""
        options: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "http_client": self.http,
            "clock": self.clock,
        }
        options.update(settings)
        return TokenExchange(options.pop("issuer", self.issuer.issuer), **options)

    async def caller(self, **claims: Any) -> AccessToken:
        """The AccessToken the MCP server's guard validated for a user's token."""
        token = self.issuer.token(
            subject="alice", audience=MCP, scope="mcp:tools orders:read", claims=claims or None
        )
        return await self.server.verify(token)

    def exchange_requests(self) -> list[dict[str, list[str]]]:
        """The forms of the token requests the issuer received."""
        from urllib.parse import parse_qs

        return [
            parse_qs(request.content.decode())
            for request in self.issuer.requests
            if request.url.path.endswith("/token")
        ]


@contextlib.asynccontextmanager
async def exchange_setup(
    configure: Callable[[TestIssuer], None] | None = None,
) -> AsyncIterator[Setup]:
    """A TestIssuer whose client ``mcp-server`` may exchange for DOWNSTREAM with
    ``orders:read`` / ``orders:write``, and the MCP server's ResourceServer."""
    clock = Clock()
    issuer = TestIssuer("https://issuer.test", clock=clock)
    issuer.register_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    issuer.allow_exchange(CLIENT_ID, targets=[DOWNSTREAM], scopes="orders:read orders:write")
    if configure is not None:
        configure(issuer)
    async with issuer.http_client() as http:
        server = ResourceServer(
            resource=MCP, authorization_servers=issuer.issuer, http_client=http, clock=clock
        )
        yield Setup(issuer, clock, http, server)
