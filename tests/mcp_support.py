"""Shared by the MCP tests: servers on loopback, the SDK client's storage, a programmatic
browser for the authorization-code flow, and small helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp_types import TextContent
from support import free_port, serve

from oauthguard.mcp import MCPTokenVerifier, protect
from oauthguard.testing import TestIssuer

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def with_tools(server: MCPServer) -> MCPServer:
    """Two tools: ``whoami`` (endpoint scope) and ``admin`` (needs ``mcp:admin`` too)."""

    @server.tool()
    def whoami() -> dict[str, Any]:
        token = get_access_token()
        assert token is not None
        return {
            "subject": token.subject,
            "client_id": token.client_id,
            "scopes": token.scopes,
            "expires_at": token.expires_at,
            "resource": token.resource,
            "claims": token.claims,
        }

    @server.tool()
    def admin() -> str:
        return "admin done"

    return server


class Servers:
    """The issuer, a server protected by ``protect`` and one using the SDK's own auth."""

    def __init__(self, issuer: TestIssuer, guarded: str, sdk: str) -> None:
        self.issuer, self.guarded, self.sdk = issuer, guarded, sdk


@contextlib.contextmanager
def mcp_servers() -> Iterator[Servers]:
    """TestIssuer, an MCP server behind ``protect`` and one behind the SDK's auth with our
    ``MCPTokenVerifier``, each on its own loopback port."""
    issuer_port, guarded_port, sdk_port = free_port(), free_port(), free_port()
    issuer = TestIssuer(
        f"http://127.0.0.1:{issuer_port}", allowed_scopes=["mcp:tools", "mcp:admin"]
    )
    guarded = f"http://127.0.0.1:{guarded_port}/mcp"
    app = protect(
        with_tools(MCPServer("guarded")).streamable_http_app(),
        resource=guarded,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        tool_scopes={"admin": "mcp:admin"},
    )
    sdk = f"http://127.0.0.1:{sdk_port}/mcp"
    sdk_server = with_tools(
        MCPServer(
            "sdk",
            token_verifier=MCPTokenVerifier(resource=sdk, authorization_servers=issuer.issuer),
            auth=AuthSettings(
                issuer_url=issuer.issuer,
                resource_server_url=sdk,
                required_scopes=["mcp:tools"],
                validate_token_resource=True,
            ),
        )
    )
    with (
        serve(issuer.app, port=issuer_port),
        serve(app, port=guarded_port),
        serve(sdk_server.streamable_http_app(), port=sdk_port),
    ):
        yield Servers(issuer, guarded, sdk)


class Storage:
    """The SDK client's token storage, in memory."""

    def __init__(self, tokens: OAuthToken | None = None) -> None:
        self.tokens = tokens
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """The programmatic redirect handler: follows /authorize and hands back code and state."""

    def __init__(self) -> None:
        self.authorizations: list[dict[str, str]] = []
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        self.authorizations.append({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 302, response.text
        answer = parse_qs(urlsplit(response.headers["location"]).query)
        self.result = AuthorizationCodeResult(
            code=answer["code"][0], state=answer["state"][0], iss=answer["iss"][0]
        )

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


def code_provider(url: str, browser: Browser, storage: Storage | None = None) -> Any:
    """The SDK's authorization-code provider (with dynamic registration) for ``url``."""
    metadata = OAuthClientMetadata(
        redirect_uris=["http://127.0.0.1:9/callback"], client_name="oauthguard tests"
    )
    return OAuthClientProvider(
        url, metadata, storage or Storage(), browser.redirect, browser.callback
    )


@contextlib.asynccontextmanager
async def connect(url: str, auth: Any, log: list[str] | None = None) -> AsyncIterator[Client]:
    async def record(response: httpx2.Response) -> None:
        if log is not None:
            log.append(
                f"{response.request.method} {response.request.url.path} {response.status_code}"
            )

    async with (
        httpx2.AsyncClient(auth=auth, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str) -> Any:
    result = await client.call_tool(tool, {})
    assert not result.is_error, result
    if result.structured_content is not None:
        return result.structured_content.get("result", result.structured_content)
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


class Notes:
    """An MCP notes server behind ``protect``: ``list_notes`` needs the endpoint's
    ``notes:read``, ``add_note`` needs ``notes:write`` too; ``added`` records every run of
    ``add_note``, so a test sees whether a refused call ran."""

    def __init__(self, issuer: TestIssuer, url: str) -> None:
        self.issuer, self.url = issuer, url
        self.added: list[Any] = []
        self.reader = issuer.token(audience=url, scope="notes:read")
        self.writer = issuer.token(audience=url, scope="notes:read notes:write")

    def server(self) -> MCPServer:
        server = MCPServer("notes")

        @server.tool()
        def add_note(text: str = "", meta: Any = None) -> str:
            self.added.append(text)
            return "added"

        @server.tool()
        def list_notes(text: str = "", meta: Any = None) -> list[str]:
            return ["a note"]

        return server


@contextlib.contextmanager
def notes_server(**app_options: Any) -> Iterator[Notes]:
    """TestIssuer and the notes server (stateless; ``app_options`` go to the SDK's
    ``streamable_http_app``), each with uvicorn on its own loopback port."""
    issuer_port, port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    notes = Notes(issuer, f"http://127.0.0.1:{port}/mcp")
    app_options.setdefault("stateless_http", True)
    app = protect(
        notes.server().streamable_http_app(**app_options),
        resource=notes.url,
        authorization_servers=issuer.issuer,
        scopes="notes:read",
        tool_scopes={"add_note": "notes:write"},
    )
    with serve(issuer.app, port=issuer_port), serve(app, port=port):
        yield notes
