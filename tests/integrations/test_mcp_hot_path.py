"""``protect()`` has the guard build the SDK's view of a token (an ``MCPUser``) once per
verified token and keep it with the token: a repeated token gets the same user, and a token
verified anew never gets a user built for another one."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from oauthguard import AccessToken, InsufficientScope, OAuthGuard, require
from oauthguard.mcp import MCPUser, protect
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio

RESOURCE = "https://api.test/mcp"


class Seen:
    """An MCP-like endpoint that records what each request saw."""

    def __init__(self) -> None:
        self.users: list[MCPUser] = []
        self.auths: list[AccessToken] = []
        self.raw: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        self.users.append(request.user)
        self.auths.append(request.auth)
        sdk = get_access_token()
        self.raw.append(sdk.token if sdk is not None else None)
        await PlainTextResponse("ok")(scope, receive, send)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def guarded(issuer: TestIssuer, seen: Seen, clock: Clock | None = None) -> OAuthGuard:
    return protect(
        seen,
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        http_client=issuer.http_client(),
        clock=clock,
    )


async def post(app: OAuthGuard, token: str) -> int:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="https://api.test"
    ) as http:
        response = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"authorization": f"Bearer {token}"},
        )
    return response.status_code


async def test_a_repeated_token_gets_the_same_user_and_each_token_its_own() -> None:
    issuer, seen = TestIssuer("https://issuer.test"), Seen()
    app = guarded(issuer, seen)
    first = issuer.token(audience=RESOURCE, scope="mcp:tools", subject="alice")
    second = issuer.token(audience=RESOURCE, scope="mcp:tools", subject="bob")
    assert [await post(app, t) for t in (first, first, second)] == [200, 200, 200]
    assert seen.users[0] is seen.users[1]
    assert seen.users[2] is not seen.users[0]
    assert seen.raw == [first, first, second]
    assert [user.identity for user in seen.users] == ["alice", "alice", "bob"]
    for user, auth in zip(seen.users, seen.auths, strict=True):
        assert user.token is auth and user.access_token.subject == auth.subject


async def test_a_token_verified_anew_gets_a_new_user_bound_to_it() -> None:
    issuer, seen = TestIssuer("https://issuer.test"), Seen()
    app = guarded(issuer, seen)
    token = issuer.token(audience=RESOURCE, scope="mcp:tools")
    assert await post(app, token) == 200
    app.server.tokens.clear()  # what a key leaving the issuer's JWKS does
    assert await post(app, token) == 200
    assert seen.auths[0] is not seen.auths[1]
    assert seen.users[1] is not seen.users[0] and seen.users[1].token is seen.auths[1]
    assert seen.raw == [token, token]


async def test_the_user_lives_as_long_as_its_verified_token() -> None:
    issuer, seen = TestIssuer("https://issuer.test"), Seen()
    clock = Clock(issuer.clock())
    app = guarded(issuer, seen, clock)
    token = issuer.token(audience=RESOURCE, scope="mcp:tools", expires_in=60)
    assert await post(app, token) == 200
    clock.now += 70  # past exp, within the guard's 30 s leeway: the guard still accepts it
    assert await post(app, token) == 200
    assert seen.auths[0] is seen.auths[1] and seen.users[0] is seen.users[1]
    assert seen.raw == [token, token]
    clock.now += 30  # past the leeway too
    assert await post(app, token) == 401
    assert len(seen.users) == 2


async def refusing_endpoint(request: Request) -> PlainTextResponse:
    require("admin").enforce(request.scope)
    return PlainTextResponse("ok")


async def refusing_asgi(scope: Any, receive: Any, send: Any) -> None:
    raise InsufficientScope("this operation needs the scopes: admin", scope="admin")


def starlette_app(started: bool) -> Starlette:
    app = Starlette(routes=[Route("/mcp", refusing_endpoint, methods=["POST"])])
    if started:  # its middleware, exception handlers included, built once and for all
        app.middleware_stack = app.build_middleware_stack()
    return app


@pytest.mark.parametrize(
    "app",
    [starlette_app(started=False), starlette_app(started=True), refusing_asgi],
    ids=["starlette-app", "started-starlette-app", "plain-asgi-app"],
)
async def test_a_refusal_raised_inside_the_mcp_app_gets_the_guards_answer(app: Any) -> None:
    """A Starlette app (the SDK's kind) takes the guard's refusal handler through MCPAuth
    (started, in the middleware it built), so the guard does not watch its responses start;
    a plain ASGI app is watched."""
    issuer = TestIssuer("https://issuer.test")
    guard = protect(
        app,
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        http_client=issuer.http_client(),
    )
    assert guard._app_answers_refusals is isinstance(app, Starlette)
    token = issuer.token(audience=RESOURCE, scope="mcp:tools")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guard), base_url="https://api.test"
    ) as http:
        response = await http.post("/mcp", json={}, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert re.search(r'scope="([^"]* )?admin"', challenge)  # the rule's scopes before it


async def test_a_tool_for_certain_actors_is_judged_for_each_token_not_each_scope_set() -> None:
    """What tools a token's scopes, roles and client reach is kept per set of them; a tool
    for certain actors depends on the token's act claim too, so a token acting for its own
    subject first must not open the tool to an agent's token with the same scopes."""
    issuer, reached = TestIssuer("https://issuer.test"), []

    async def tool_server(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["auth"].actor)
        await PlainTextResponse("ran")(scope, receive, send)

    guard = protect(
        tool_server,
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        scopes="mcp:tools",
        tool_scopes={"wire_money": require(actors=["trusted-agent"])},
        http_client=issuer.http_client(),
    )
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wire_money"}}
    own = issuer.token(audience=RESOURCE, scope="mcp:tools")
    agents = {
        name: issuer.token(audience=RESOURCE, scope="mcp:tools", claims={"act": {"sub": name}})
        for name in ("evil-agent", "trusted-agent")
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(guard), base_url="https://api.test"
    ) as http:

        async def status(token: str) -> int:
            headers = {"authorization": f"Bearer {token}"}
            return (await http.post("/mcp", json=body, headers=headers)).status_code

        assert await status(own) == 200
        assert await status(agents["evil-agent"]) == 403
        assert await status(agents["trusted-agent"]) == 200
        assert await status(agents["evil-agent"]) == 403
    assert [actor and actor.subject for actor in reached] == [None, "trusted-agent"]


def test_tokens_naming_no_client_and_no_subject_are_each_their_own_principal() -> None:
    """The SDK binds a session to (client_id, iss, sub): two such tokens of one issuer must
    not be one principal, or either could use a session the other opened."""
    from mcp.server.auth.provider import principal_components

    from oauthguard.mcp import sdk_access_token

    def anonymous(raw: str) -> Any:
        token = AccessToken(None, None, frozenset(), (RESOURCE,), "https://issuer.test", None)
        return principal_components(sdk_access_token(token, raw, RESOURCE))

    assert anonymous("token-a") != anonymous("token-b")
    assert anonymous("token-a") == anonymous("token-a")
    named = AccessToken("alice", None, frozenset(), (RESOURCE,), "https://issuer.test", None)
    assert sdk_access_token(named, "token-a", RESOURCE).client_id == ""  # alice is the owner
