"""MCP tools that need roles, clients and claims: ``tool_scopes`` entries that are
``require(...)``, through the real SDK app with uvicorn on loopback. A miss is 403
insufficient_scope with no scope unless scopes are missing too; a body not read with
certainty needs what every tool needs, roles, clients and claims included."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from guards import build_guard
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_support import Browser, code_provider, connect, with_tools
from mcp_support import call as call_tool
from role_tokens import RoleTokens
from support import assert_refused, free_port, serve

from oauthguard import ConfigurationError, require
from oauthguard.mcp import MCPAuth, MCPUser, protect
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio

HANDSHAKE, MODERN = "2025-06-18", "2026-07-28"
TOOLS = {
    "add_note": require("notes:write", roles="editor"),
    "audit": require(clients="ops-console", claims={"tenant": "acme"}),
    "list_notes": "notes:read",
}


class Server:
    """The notes server behind ``OAuthGuard`` and ``MCPAuth``, its tokens from
    ``RoleTokens``; ``ran`` records every tool that ran."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tokens = RoleTokens(url)
        self.ran: list[str] = []

    def app(self) -> Any:
        server, ran = MCPServer("notes"), self.ran

        @server.tool()
        def add_note() -> str:
            ran.append("add_note")
            return "added"

        @server.tool()
        def audit() -> str:
            ran.append("audit")
            return "audited"

        @server.tool()
        def list_notes() -> str:
            ran.append("list_notes")
            return "a note"

        inner = MCPAuth(
            server.streamable_http_app(stateless_http=True, json_response=True),
            tool_scopes=TOOLS,
        )
        return build_guard(
            inner,
            resource=self.url,
            authorization_servers="https://issuer.test",
            verifier=self.tokens,
            user_factory=functools.partial(MCPUser, resource=self.url),
            rules={"/mcp": require("notes:read")},
        )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    running = Server(f"http://127.0.0.1:{port}/mcp")
    with serve(running.app(), port=port):
        yield running


def call(*names: str) -> bytes:
    """A tools/call of each of ``names`` (a batch for several)."""
    calls = [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name}}
        for n, name in enumerate(names)
    ]
    return json.dumps(calls[0] if len(calls) == 1 else calls).encode()


async def post(
    server: Server, body: bytes, token: str, version: str = HANDSHAKE, tool: str | None = None
) -> httpx.Response:
    sent = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": version,
    }
    if tool is not None:
        sent |= {"mcp-method": "tools/call", "mcp-name": tool}
    server.ran.clear()
    async with httpx.AsyncClient() as http:
        return await http.post(server.url, content=body, headers=sent)


def refused(response: httpx.Response, server: Server) -> dict[str, str]:
    params = assert_refused(response, 403, "insufficient_scope")
    assert server.ran == [], "the tool ran"
    return params


EVERYTHING = {"roles": ["editor"], "client_id": "ops-console", "claims": {"tenant": "acme"}}


async def test_a_tool_that_needs_a_role(server: Server) -> None:
    token = server.tokens.issue("notes:read notes:write")
    params = refused(await post(server, call("add_note"), token), server)
    assert "scope" not in params  # nothing to step up to
    assert params["error_description"] == "the token lacks the role 'editor'"
    # The role and a scope missing: the challenge names every scope the call needs.
    token = server.tokens.issue("notes:read")
    params = refused(await post(server, call("add_note"), token), server)
    assert params["scope"] == "notes:read notes:write"
    assert params["error_description"] == (
        "this operation needs the scopes: notes:read notes:write; the token lacks the role 'editor'"
    )
    token = server.tokens.issue("notes:read notes:write", roles=["editor"])
    ran = await post(server, call("add_note"), token)
    assert ran.status_code == 200 and server.ran == ["add_note"], ran.text


async def test_a_tool_that_needs_a_client_and_a_claim(server: Server) -> None:
    for options, description in (
        (
            {},
            "the token's client 'app' is not one of 'ops-console'; the token has no claim 'tenant'",
        ),
        (
            {"client_id": "ops-console", "claims": {"tenant": ["acme"]}},
            None,
        ),
        (
            {"client_id": "ops-console", "claims": {"tenant": {"acme": 1}}},
            "the token's claim 'tenant' does not hold 'acme'",
        ),
    ):
        token = server.tokens.issue("notes:read", **options)
        response = await post(server, call("audit"), token)
        if description is None:
            assert response.status_code == 200 and server.ran == ["audit"], response.text
            continue
        params = refused(response, server)
        assert params["error_description"] == description and "scope" not in params


async def test_a_batch_needs_what_every_tool_called_needs(server: Server) -> None:
    body = call("list_notes", "add_note", "audit")
    token = server.tokens.issue("notes:read notes:write", roles=["editor"])
    params = refused(await post(server, body, token), server)
    assert params["error_description"].startswith("the token's client 'app' is not one of")
    token = server.tokens.issue("notes:read notes:write", **EVERYTHING)
    ran = await post(server, body, token)
    # Past the guard (the SDK answers a batch as its revision does).
    assert ran.status_code not in (401, 403) and ran.status_code < 500, ran.text


@pytest.mark.parametrize(
    "body",
    [
        call("list_notes").decode().encode("utf-16"),
        b"\xef\xbb\xbf" + call("list_notes"),
        call("list_notes").replace(b'"name": ', b'"name": "add_note", "name": '),
    ],
    ids=["UTF-16", "BOM", "duplicate member"],
)
async def test_a_body_not_read_with_certainty_needs_every_tools_roles_clients_and_claims(
    server: Server, body: bytes
) -> None:
    # Every tool's scopes, but not the role, client and claim two of them need.
    token = server.tokens.issue("notes:read notes:write")
    params = refused(await post(server, body, token), server)
    assert "scope" not in params
    description = params["error_description"]
    assert description.startswith("the request may call any tool")
    assert "the token lacks the role 'editor'" in description
    assert "the token's client 'app' is not one of 'ops-console'" in description
    assert "the token has no claim 'tenant'" in description
    # The scopes missing too: named, with the rule's.
    params = refused(
        await post(server, body, server.tokens.issue("notes:read", **EVERYTHING)), server
    )
    assert params["scope"] == "notes:read notes:write"
    everything = server.tokens.issue("notes:read notes:write", **EVERYTHING)
    answered = await post(server, body, everything)
    assert answered.status_code not in (401, 403) and answered.status_code < 500


async def test_an_unknown_protocol_revision_may_call_every_tool(server: Server) -> None:
    token = server.tokens.issue("notes:read notes:write", roles=["editor"])
    response = await post(server, call("list_notes"), token, version="2099-01-01")
    assert "the token's client 'app'" in refused(response, server)["error_description"]


async def test_the_tool_named_in_the_mcp_name_header_counts(server: Server) -> None:
    token = server.tokens.issue("notes:read notes:write")
    # The body calls list_notes; the header names add_note: its role is needed.
    response = await post(server, call("list_notes"), token, version=MODERN, tool="add_note")
    assert refused(response, server)["error_description"] == "the token lacks the role 'editor'"


async def test_a_token_meeting_a_tools_needs_is_not_refused_for_it(server: Server) -> None:
    # The same scopes, another role: what a token reaches is worked out per role and client
    # too, never from its scopes alone.
    scopes = "notes:read notes:write"
    assert (await post(server, call("add_note"), server.tokens.issue(scopes))).status_code == 403
    editor = server.tokens.issue(scopes, roles=["editor"])
    assert (await post(server, call("add_note"), editor)).status_code == 200
    assert (await post(server, call("add_note"), server.tokens.issue(scopes))).status_code == 403
    # Claims are read from each token.
    good = server.tokens.issue("notes:read", client_id="ops-console", claims={"tenant": "acme"})
    bad = server.tokens.issue("notes:read", client_id="ops-console", claims={"tenant": "beta"})
    assert (await post(server, call("audit"), good)).status_code == 200
    assert (await post(server, call("audit"), bad)).status_code == 403


@pytest.mark.parametrize(
    "entry",
    [
        require(max_age=60),
        require(acr_values="urn:mfa"),
        require(any_scopes="a b"),
        require(audience="https://other.test/"),
    ],
)
def test_a_tool_entry_takes_scopes_roles_clients_and_claims_only(entry: Any) -> None:
    with pytest.raises(ConfigurationError) as error:
        MCPAuth(lambda *_: None, tool_scopes={"admin": entry})
    assert "tool_scopes['admin']" in str(error.value)
    with pytest.raises(ConfigurationError) as error:
        MCPAuth(lambda *_: None, tool_scopes={"admin": "not a; scope\\"})
    assert "tool_scopes['admin']" in str(error.value)


async def test_protect_takes_a_tool_that_needs_a_client() -> None:
    # Through protect() and a JWT from TestIssuer: client_id is the token's client_id claim.
    issuer, port = TestIssuer("https://issuer.test"), free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = protect(
        MCPServer("x").streamable_http_app(stateless_http=True, json_response=True),
        resource=url,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        tool_scopes={"admin": require("mcp:admin", clients="console")},
        http_client=issuer.http_client(),
    )
    assert app.metadata.scopes_supported == ("mcp:tools", "mcp:admin")
    sent = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": HANDSHAKE,
    }
    with serve(app, port=port):
        async with httpx.AsyncClient() as http:
            for claims, expected in (
                ({}, "the token's client 'test-client' is not one of 'console'"),
                ({"client_id": None, "azp": "console"}, None),
            ):
                token = issuer.token(audience=url, scope="mcp:tools mcp:admin", claims=claims)
                response = await http.post(
                    url, content=call("admin"), headers=sent | {"authorization": f"Bearer {token}"}
                )
                if expected is None:
                    assert response.status_code not in (401, 403), response.text
                else:
                    params = assert_refused(response, 403, "insufficient_scope")
                    assert params["error_description"] == expected and "scope" not in params


async def test_the_sdk_client_does_not_loop_on_a_need_no_scope_meets() -> None:
    # The real client and authorization-code flow: the tool needs a client the SDK's
    # registered client is not. The 403 names no scope; the client gives up, never loops.
    issuer_port, port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}", allowed_scopes=["mcp:tools"])
    url = f"http://127.0.0.1:{port}/mcp"
    app = protect(
        with_tools(MCPServer("guarded")).streamable_http_app(),
        resource=url,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        tool_scopes={"admin": require(clients="ops-console")},
    )
    browser, log = Browser(), []
    with serve(issuer.app, port=issuer_port), serve(app, port=port):
        async with connect(url, code_provider(url, browser), log) as client:
            assert (await call_tool(client, "whoami"))["scopes"] == ["mcp:tools"]
            log.clear()
            with pytest.raises(MCPError) as failed:
                await call_tool(client, "admin")
    # The SDK (2.3) re-authorizes once on any insufficient_scope, with no scope to add,
    # then reports the error: one round trip more, never a loop.
    assert log == ["POST /mcp 403", "POST /token 200", "POST /mcp 403"], log
    assert browser.authorizations[-1]["scope"] == "mcp:tools"
    assert "error response" in str(failed.value)
