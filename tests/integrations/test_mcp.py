"""The real ``mcp`` client and SDK against an MCP server protected by oauthguard, over
loopback HTTP, with TestIssuer as the authorization server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from guards import build_guard
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthToken
from mcp_support import (
    INITIALIZE,
    MCP_HEADERS,
    Browser,
    Servers,
    Storage,
    call,
    code_provider,
    connect,
    mcp_servers,
    with_tools,
)
from starlette.responses import PlainTextResponse
from support import assert_refused, free_port, serve

from oauthguard import ConfigurationError, Introspection, require
from oauthguard._wire.challenge import parse_challenges
from oauthguard.mcp import MCPTokenVerifier, protect
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio

ISSUER = TestIssuer("https://issuer.test")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with mcp_servers() as running:
        yield running


async def test_authorization_code_discovery_token_and_step_up(servers: Servers) -> None:
    browser, log = Browser(), []
    async with connect(servers.guarded, code_provider(servers.guarded, browser), log) as client:
        me = await call(client, "whoami")
        issuer_path = servers.issuer.issuer
        assert log[:6] == [
            "POST /mcp 401",
            "GET /.well-known/oauth-protected-resource/mcp 200",
            "GET /.well-known/oauth-authorization-server 200",
            "POST /register 201",
            "POST /token 200",
            "POST /mcp 200",
        ], log
        [first] = browser.authorizations
        assert first["scope"] == "mcp:tools" and first["resource"] == servers.guarded
        # get_access_token() inside the tool returns the token oauthguard validated.
        assert me["subject"] == "user-1" and me["scopes"] == ["mcp:tools"]
        assert me["client_id"] == first["client_id"] and me["resource"] == servers.guarded
        assert me["claims"]["iss"] == issuer_path and me["claims"]["aud"] == servers.guarded
        assert me["expires_at"] == me["claims"]["exp"]
        # A tool that needs more: 403 insufficient_scope, the client re-authorizes, succeeds.
        log.clear()
        assert await call(client, "admin") == "admin done"
        assert log[:3] == ["POST /mcp 403", "POST /token 200", "POST /mcp 200"], log
        second = browser.authorizations[1]
        assert second["scope"].split() == ["mcp:tools", "mcp:admin"]
        assert (await call(client, "whoami"))["scopes"] == ["mcp:admin", "mcp:tools"]


async def test_client_credentials(servers: Servers) -> None:
    client_id, secret = servers.issuer.register_client(grant_types=["client_credentials"])
    assert secret is not None
    provider = ClientCredentialsOAuthProvider(
        servers.guarded, Storage(), client_id, secret, issuer=servers.issuer.issuer
    )
    async with connect(servers.guarded, provider) as client:
        me = await call(client, "whoami")
    assert me["subject"] == client_id and me["client_id"] == client_id
    assert me["scopes"] == ["mcp:tools"]


def mint(servers: Servers, resource: str, scope: str = "mcp:tools mcp:admin") -> str:
    client_id, secret = servers.issuer.register_client(grant_types=["client_credentials"])
    with httpx.Client() as http:
        response = http.post(
            servers.issuer.issuer + "/token",
            auth=(client_id, secret or ""),
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_token_for_another_audience_is_refused(servers: Servers) -> None:
    elsewhere = mint(servers, "http://127.0.0.1:1/mcp")
    async with httpx.AsyncClient() as http:
        headers = {**MCP_HEADERS, "authorization": f"Bearer {elsewhere}"}
        response = await http.post(servers.guarded, json=INITIALIZE, headers=headers)
        assert assert_refused(response, 401, "invalid_token")["scope"] == "mcp:tools"
        # The SDK's own auth, with our adapter behind it, refuses it too.
        response = await http.post(servers.sdk, json=INITIALIZE, headers=headers)
        assert response.status_code == 401
    # The real client with that token stored gets refused, re-authorizes for this resource.
    storage = Storage(OAuthToken(access_token=elsewhere, expires_in=300))
    browser = Browser()
    async with connect(servers.guarded, code_provider(servers.guarded, browser, storage)) as c:
        assert (await call(c, "whoami"))["resource"] == servers.guarded
    assert storage.tokens is not None and storage.tokens.access_token != elsewhere


async def test_challenges_real_clients_depend_on(servers: Servers) -> None:
    async with httpx.AsyncClient() as http:
        refusals = [
            await http.request(
                method,
                servers.guarded,
                headers=MCP_HEADERS,
                json=INITIALIZE if method == "POST" else None,
            )
            for method in ("POST", "POST", "GET", "DELETE")
        ]
        for response in refusals:
            assert_refused(response, 401, None)
            value = response.headers["www-authenticate"]
            assert value.startswith("Bearer ")
            assert value == refusals[0].headers["www-authenticate"]  # byte-identical
        challenges = parse_challenges(refusals[0].headers["www-authenticate"])
        assert [scheme for scheme, _ in challenges] == ["Bearer", "DPoP"]
        params = challenges[0][1]
        assert params["scope"] == challenges[1][1]["scope"] == "mcp:tools"
        document = (await http.get(params["resource_metadata"])).json()
        assert document["resource"] == servers.guarded
        for issuer in document["authorization_servers"]:
            metadata = await http.get(issuer + "/.well-known/oauth-authorization-server")
            assert metadata.json()["issuer"] == issuer
        # Other well-known paths are the app's, never challenged.
        other = await http.get(servers.guarded.replace("/mcp", "/.well-known/other"))
        assert other.status_code == 404


async def tool_call(
    http: httpx.AsyncClient, url: str, token: str, body: Any, session: str | None = None
) -> httpx.Response:
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    if session is not None:
        headers["mcp-session-id"] = session
    return await http.post(url, json=body, headers=headers)


async def reached_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that answers every request it gets with "reached"."""
    await PlainTextResponse("reached")(scope, receive, send)


def call_body(name: Any, id_: int = 2) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id_,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}},
    }


async def test_tool_scopes_are_a_real_403_with_the_whole_scope_set(servers: Servers) -> None:
    token = mint(servers, servers.guarded, scope="mcp:tools")
    async with httpx.AsyncClient() as http:
        refusals = [
            await tool_call(http, servers.guarded, token, body)
            for body in (
                call_body("admin"),
                call_body("admin"),
                [call_body("whoami", 3), call_body("admin", 4)],  # a batch needs every tool's
            )
        ]
        for response in refusals:
            params = assert_refused(response, 403, "insufficient_scope")
            assert params["scope"] == "mcp:tools mcp:admin"
            assert response.headers["www-authenticate"] == refusals[0].headers["www-authenticate"]
        assert response.headers["www-authenticate"].startswith("Bearer ")
        # Tools without their own scopes, odd names and bodies pass on to the SDK.
        started = await tool_call(http, servers.guarded, token, INITIALIZE)
        assert started.status_code == 200
        session = started.headers["mcp-session-id"]
        for body in (call_body(["admin"]), call_body(None), {"method": "tools/list"}):
            response = await tool_call(http, servers.guarded, token, body, session)
            assert response.status_code != 403 and response.status_code < 500, response.text
        garbage = await http.post(
            servers.guarded,
            content=b"{not json",
            headers={**MCP_HEADERS, "authorization": f"Bearer {token}", "mcp-session-id": session},
        )
        assert garbage.status_code == 400
        # A token without the endpoint scope is refused whatever it calls.
        nothing = mint(servers, servers.guarded, scope="")
        params = assert_refused(
            await tool_call(http, servers.guarded, nothing, INITIALIZE), 403, "insufficient_scope"
        )
        assert params["scope"] == "mcp:tools"


async def test_a_tool_call_reads_to_the_tool_check_as_it_reads_to_the_sdk(servers: Servers) -> None:
    # Parsers differ on which of a duplicated member counts, so such a body may call any
    # tool: refused without every tool's scopes, run (as the SDK reads it) with them.
    token = mint(servers, servers.guarded, scope="mcp:tools")
    started_token = mint(servers, servers.guarded, scope="mcp:tools mcp:admin")
    disguised = (
        b'{"jsonrpc": "2.0", "id": 2, "method": "ping", "method": "tools/call", '
        b'"params": {"name": "whoami", "name": "admin", "arguments": {}}}'
    )
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            servers.guarded,
            content=disguised,
            headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
        )
        assert_refused(refused, 403, "insufficient_scope")
        started = await tool_call(http, servers.guarded, started_token, INITIALIZE)
        session = started.headers["mcp-session-id"]
        ran = await http.post(
            servers.guarded,
            content=disguised,
            headers={
                **MCP_HEADERS,
                "authorization": f"Bearer {started_token}",
                "mcp-session-id": session,
            },
        )
        assert ran.status_code == 200 and "admin" in ran.text


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"method": "tools/call", "params": {"name": "whoami"}}', False),
        (b'{"method": "tools/call", "params": {"name": "admin"}}', True),
        (b'{"method":"tools/call","params":{"name":"admin","arguments":{}}}', True),
        (b'{"method": "tools/call", "params": {"name": "\\u0061dmin"}}', True),  # escaped
        (b'{"method": "tools/call", "params": {"name": "superadmin"}}', False),
        (b'{"method": "tools/list"}', False),
        (b'{"note": "say \\"hi\\""}', True),  # any escape: parse to be sure
    ],
)
def test_a_body_is_parsed_whenever_it_may_name_a_tool_out_of_reach(
    body: bytes, named: bool
) -> None:
    from oauthguard._mcp.calls import may_name

    assert may_name(body, [b'"admin"']) is named


async def test_an_escaped_tool_name_is_still_refused() -> None:
    issuer = TestIssuer("https://issuer.test")
    resource = "https://api.test/mcp"
    guarded = protect(
        reached_app,
        resource=resource,
        authorization_servers=issuer.issuer,
        tool_scopes={"admin": "mcp:admin"},
        http_client=issuer.http_client(),
    )
    token = issuer.token(audience=resource, scope="mcp:tools")
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guarded), base_url="https://api.test"
    ) as http:
        for name in ("admin", "\\u0061dmin", "adm\\u0069n"):
            body = (
                '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
                f'"params": {{"name": "{name}", "arguments": {{}}}}}}'
            )
            refused = await http.post("/mcp", content=body, headers=headers)
            assert_refused(refused, 403, "insufficient_scope")
        # Naming it elsewhere in the body is no call of it.
        other = call_body("whoami") | {
            "params": {"name": "whoami", "arguments": {"about": "admin"}}
        }
        reached = await http.post("/mcp", json=other, headers=headers)
        assert reached.status_code == 200 and reached.text == "reached"


async def test_hostile_bodies_may_call_any_tool_never_a_500() -> None:
    # What the tool check cannot read with certainty may call every tool: a 403 naming every
    # scope, never a 500 and never a pass; a body it reads (a bare string) calls none.
    guarded = protect(
        reached_app,
        resource="https://api.test/mcp",
        authorization_servers=ISSUER.issuer,
        tool_scopes={"admin": "mcp:admin"},
        http_client=ISSUER.http_client(),
    )
    token = ISSUER.token(audience="https://api.test/mcp", scope="mcp:tools")
    # Each names the tool out of reach (or has an escape), so each is parsed.
    hostile = [
        b'["admin", ' + b"[" * 100_000,
        b'{"admin":' * 5000,
        b'\xff\xfe"admin"',
        b'["admin", ' + b"1" * 100_000 + b"]",
        b'{"method": "tools/call", "params": {"name": "\\ud800"}}',
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guarded), base_url="https://api.test"
    ) as http:
        for body in hostile:
            response = await http.post(
                "/mcp", content=body, headers={"authorization": f"Bearer {token}"}
            )
            params = assert_refused(response, 403, "insufficient_scope")
            assert params["scope"] == "mcp:admin", body[:20]
        response = await http.post(
            "/mcp", content=b'"admin"', headers={"authorization": f"Bearer {token}"}
        )
        assert (response.status_code, response.text) == (200, "reached")


async def test_a_guard_built_by_hand_without_user_factory_still_hands_tools_the_token() -> None:
    from mcp.server.auth.middleware.auth_context import get_access_token

    from oauthguard.mcp import MCPAuth

    async def app(scope: Any, receive: Any, send: Any) -> None:
        sdk = get_access_token()
        await PlainTextResponse(sdk.token if sdk else "none")(scope, receive, send)

    guarded = build_guard(
        MCPAuth(app),
        resource="https://api.test/mcp",
        authorization_servers=ISSUER.issuer,
        http_client=ISSUER.http_client(),
    )
    token = ISSUER.token(audience="https://api.test/mcp")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guarded), base_url="https://api.test"
    ) as http:
        response = await http.post(
            "/mcp", json=call_body("x"), headers={"authorization": f"bearer   {token}"}
        )
    assert response.text == token


async def test_mcp_auth_without_a_guard_in_front_fails_closed() -> None:
    from oauthguard.mcp import MCPAuth

    reached = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    auth = MCPAuth(app, tool_scopes={"admin": "mcp:admin"})
    transport = httpx.ASGITransport(auth)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as http:
        with pytest.raises(ConfigurationError, match=r"MCPAuth.*needs the OAuthGuard middleware"):
            await http.post("/mcp", json=call_body("admin"))
    # Behind the SDK's own auth instead: its user is no reason to skip the guard.
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken as SDKAccessToken

    sdk_user = AuthenticatedUser(SDKAccessToken(token="t", client_id="c", scopes=[]))
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [], "user": sdk_user}
    with pytest.raises(ConfigurationError, match=r"MCPAuth.*needs the OAuthGuard middleware"):
        await auth(scope, None, None)
    assert reached == []


async def test_sessions_belong_to_the_token_subject_that_opened_them(servers: Servers) -> None:
    # scope["user"] is the SDK's AuthenticatedUser, so the SDK binds sessions to principals.
    alice, bob = (
        servers.issuer.token(audience=servers.guarded, scope="mcp:tools", subject=s)
        for s in ("alice", "bob")
    )
    listing = {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}
    async with httpx.AsyncClient() as http:
        opened = await tool_call(http, servers.guarded, alice, INITIALIZE)
        session = opened.headers["mcp-session-id"]
        stolen = await tool_call(http, servers.guarded, bob, listing, session)
        assert stolen.status_code == 404
        own = await tool_call(http, servers.guarded, alice, listing, session)
        assert own.status_code == 200 and "whoami" in own.text


async def test_sse_stream_and_session_end_pass_with_a_token(servers: Servers) -> None:
    token = servers.issuer.token(audience=servers.guarded, scope="mcp:tools")
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as http:
        opened = await tool_call(http, servers.guarded, token, INITIALIZE)
        session = {
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        async with http.stream(
            "GET", servers.guarded, headers={**auth, **session, "accept": "text/event-stream"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        ended = await http.delete(servers.guarded, headers={**auth, **session})
        assert ended.status_code == 200
        gone = await tool_call(
            http,
            servers.guarded,
            token,
            {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
            session["mcp-session-id"],
        )
        assert gone.status_code == 404


async def test_sdk_auth_with_the_token_verifier_adapter(servers: Servers) -> None:
    client_id, secret = servers.issuer.register_client(grant_types=["client_credentials"])
    assert secret is not None
    provider = ClientCredentialsOAuthProvider(
        servers.sdk, Storage(), client_id, secret, scope="mcp:tools", issuer=servers.issuer.issuer
    )
    async with connect(servers.sdk, provider) as client:
        me = await call(client, "whoami")
    assert me["subject"] == client_id and me["resource"] == servers.sdk
    assert me["scopes"] == ["mcp:tools"] and me["claims"]["aud"] == servers.sdk


async def test_token_verifier_adapter_refuses_every_bad_token() -> None:
    issuer = TestIssuer("https://issuer.test")
    resource = "https://api.test/mcp"
    verifier = MCPTokenVerifier(
        resource=resource, authorization_servers=issuer.issuer, http_client=issuer.http_client()
    )
    good = issuer.token(audience=resource, scope="b a", claims={"client_id": "app"})
    token = await verifier.verify_token(good)
    assert token is not None and token.token == good
    assert token.scopes == ["a", "b"] and token.client_id == "app"
    assert token.subject == "user-1" and token.resource == resource
    assert token.claims is not None and token.expires_at == token.claims["exp"]
    for bad in (
        issuer.token(audience="https://other.test/mcp"),
        issuer.token(audience=resource, expires_in=-120),
        issuer.token(audience=resource, claims={"cnf": {"jkt": "x" * 43}}),  # RFC 9449 §7.2
        issuer.token(audience=resource, claims={"iss": "https://evil.test"}),
        "not-a-token",
        "",
    ):
        assert await verifier.verify_token(bad) is None
    unreachable = MCPTokenVerifier(
        resource=resource,
        authorization_servers="https://down.test",
        http_client=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda request: httpx.Response(503))
        ),
    )
    down = TestIssuer("https://down.test").token(audience=resource)
    assert await unreachable.verify_token(down) is None
    await verifier.aclose()
    await unreachable.aclose()


async def test_oversized_bodies_are_refused_not_skipped() -> None:
    from oauthguard.mcp import MCPAuth

    issuer = TestIssuer("https://issuer.test")
    resource = "https://api.test/mcp"
    guarded = protect(
        reached_app,
        resource=resource,
        authorization_servers=issuer.issuer,
        tool_scopes={"admin": "admin", "audit": "audit"},
        http_client=issuer.http_client(),
    )
    assert isinstance(guarded.app, MCPAuth)
    guarded.app.max_body_bytes = 1024
    # A token without the audit scope: its calls are read to see which tools they call.
    token = issuer.token(audience=resource, scope="admin")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guarded), base_url="https://api.test"
    ) as http:
        big = await http.post(
            "/mcp", content=b" " * 2048, headers={"authorization": f"Bearer {token}"}
        )
        assert big.status_code == 413
        small = await http.post(
            "/mcp", json=call_body("admin"), headers={"authorization": f"Bearer {token}"}
        )
        assert small.status_code == 200 and small.text == "reached"
        # A token with every tool's scopes cannot be refused a call: its body is not read.
        every = issuer.token(audience=resource, scope="admin audit")
        unread = await http.post(
            "/mcp", content=b" " * 2048, headers={"authorization": f"Bearer {every}"}
        )
        assert unread.status_code == 200 and unread.text == "reached"


@pytest.mark.parametrize(
    "arguments",
    [
        {"scopes": ["a b"]},
        {"scopes": [""]},
        {"tool_scopes": {"t": [3]}},
        {"tool_scopes": {"t": 'a"b'}},
    ],
)
def test_bad_scope_configuration_is_refused_at_construction(arguments: Any) -> None:
    from oauthguard import ConfigurationError

    with pytest.raises(ConfigurationError):
        protect(
            lambda *_: None,
            resource="https://api.test/mcp",  # type: ignore[arg-type]
            authorization_servers="https://issuer.test",
            **arguments,
        )


async def test_a_body_in_chunks_is_read_whole_and_replayed_to_the_app() -> None:
    import json

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = await Request(scope, receive).json()
        await JSONResponse({"seen": body["params"]["name"]})(scope, receive, send)

    issuer = TestIssuer("https://issuer.test")
    resource = "https://api.test/mcp"
    guarded = protect(
        app,
        resource=resource,
        authorization_servers=issuer.issuer,
        tool_scopes={"admin": "admin"},
        http_client=issuer.http_client(),
    )

    async def post(token: str, name: str) -> tuple[int, bytes]:
        raw = json.dumps(call_body(name)).encode()
        chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await guarded(
            {
                "type": "http",
                "method": "POST",
                "path": "/mcp",
                "query_string": b"",
                "headers": [(b"authorization", f"Bearer {token}".encode())],
                "scheme": "https",
                "server": ("api.test", 443),
            },
            receive,
            send,
        )
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    plain = issuer.token(audience=resource, scope="read")
    assert (await post(plain, "whoami")) == (200, b'{"seen":"whoami"}')
    status, body = await post(plain, "admin")
    assert status == 403 and b"insufficient_scope" in body
    admin = issuer.token(audience=resource, scope="admin")
    assert (await post(admin, "admin")) == (200, b'{"seen":"admin"}')


async def test_dpop_bound_tokens_from_the_issuer_reach_tools(servers: Servers) -> None:
    from oauthguard.testing import DPoPKey

    key = DPoPKey()
    client_id, secret = servers.issuer.register_client(grant_types=["client_credentials"])
    token_url = servers.issuer.issuer + "/token"
    async with httpx.AsyncClient() as http:
        issued = await http.post(
            token_url,
            auth=(client_id, secret or ""),
            headers={"DPoP": key.proof("POST", token_url)},
            data={
                "grant_type": "client_credentials",
                "scope": "mcp:tools",
                "resource": servers.guarded,
            },
        )
        assert issued.json()["token_type"] == "DPoP"
        token = issued.json()["access_token"]

        async def post(body: Any, session: str | None = None) -> httpx.Response:
            headers = {
                **MCP_HEADERS,
                "authorization": f"DPoP {token}",
                "dpop": key.proof("POST", servers.guarded, token=token),
            }
            if session is not None:
                headers["mcp-session-id"] = session
            return await http.post(servers.guarded, json=body, headers=headers)

        opened = await post(INITIALIZE)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        called = await post(call_body("whoami"), session)
        assert called.status_code == 200 and key.thumbprint in called.text  # cnf.jkt claim
        # The tool's 403 goes in the challenge of the scheme used (RFC 9449 §7.1).
        params = assert_refused(
            await post(call_body("admin"), session), 403, "insufficient_scope", scheme="DPoP"
        )
        assert params["scope"] == "mcp:tools mcp:admin"
        # Sent as a Bearer token, a DPoP-bound token is refused (RFC 9449 §7.2).
        downgraded = await tool_call(http, servers.guarded, token, call_body("whoami"), session)
        assert_refused(downgraded, 401, "invalid_token")


async def test_mcp_auth_inside_a_guard_built_by_hand_uses_its_rules() -> None:
    from oauthguard.mcp import MCPAuth

    issuer = TestIssuer("https://issuer.test")
    resource = "https://api.test/mcp"
    guarded = build_guard(
        MCPAuth(reached_app, tool_scopes={"admin": "mcp:admin", "audit": "audit"}),
        resource=resource,
        authorization_servers=issuer.issuer,
        rules={"/mcp": require("mcp:tools")},
        scope_implies={"mcp:admin": {"mcp:tools"}},
        http_client=issuer.http_client(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guarded), base_url="https://api.test"
    ) as http:

        async def post(scope: str, body: Any) -> httpx.Response:
            token = issuer.token(audience=resource, scope=scope)
            return await http.post("/mcp", json=body, headers={"authorization": f"Bearer {token}"})

        assert (await post("mcp:admin", call_body("admin"))).text == "reached"  # implied
        params = assert_refused(
            await post("mcp:tools", call_body("admin")), 403, "insufficient_scope"
        )
        assert params["scope"] == "mcp:tools mcp:admin"
        batch = [call_body("admin", 3), call_body("audit", 4), call_body("admin", 5)]
        params = assert_refused(await post("mcp:tools mcp:admin", batch), 403, "insufficient_scope")
        assert params["scope"] == "mcp:tools mcp:admin audit"
        assert (await post("mcp:admin audit", batch)).text == "reached"
        no_token = await http.post("/mcp", json=call_body("admin"))
        assert assert_refused(no_token, 401, None)["scope"] == "mcp:tools"


async def test_opaque_tokens_through_introspection_reach_tools() -> None:
    issuer_port, server_port = free_port(), free_port()
    issuer = TestIssuer(
        f"http://127.0.0.1:{issuer_port}", opaque=True, allowed_scopes=["mcp:tools", "mcp:admin"]
    )
    _, secret = issuer.register_client(client_id="notes-server")
    url = f"http://127.0.0.1:{server_port}/mcp"
    app = protect(
        with_tools(MCPServer("opaque")).streamable_http_app(),
        resource=url,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        tool_scopes={"admin": "mcp:admin"},
        introspection=Introspection(client_id="notes-server", client_secret=secret),
    )
    client_id, client_secret = issuer.register_client(grant_types=["client_credentials"])
    with serve(issuer.app, port=issuer_port), serve(app, port=server_port):
        provider = ClientCredentialsOAuthProvider(
            url, Storage(), client_id, client_secret or "", issuer=issuer.issuer
        )
        async with connect(url, provider) as client:
            me = await call(client, "whoami")
            assert me["claims"]["active"] is True and me["claims"]["aud"] == url
            assert me["subject"] == client_id and me["scopes"] == ["mcp:tools"]
            assert await call(client, "admin") == "admin done"  # stepped up to mcp:admin
        assert provider.context.current_tokens is not None
        assert "." not in provider.context.current_tokens.access_token  # opaque


async def test_token_verifier_adapter_introspects_opaque_tokens() -> None:
    issuer = TestIssuer("https://issuer.test")
    _, secret = issuer.register_client(client_id="rs")
    resource = "https://api.test/mcp"
    verifier = MCPTokenVerifier(
        resource=resource,
        authorization_servers=issuer.issuer,
        introspection=Introspection(client_id="rs", client_secret=secret),
        http_client=issuer.http_client(),
    )
    opaque = issuer.opaque_token(audience=resource, scope="mcp:tools", subject="ann")
    token = await verifier.verify_token(opaque)
    assert token is not None and token.subject == "ann" and token.scopes == ["mcp:tools"]
    # Introspection says DPoP: never accepted through the SDK's Bearer auth (RFC 9449 §6.2).
    bound = issuer.opaque_token(
        audience=resource, claims={"cnf": {"jkt": "x" * 43}, "token_type": "DPoP"}
    )
    assert await verifier.verify_token(bound) is None
    assert await verifier.verify_token("unknown-opaque-token") is None
    await verifier.aclose()
