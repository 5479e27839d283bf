"""MCP servers must check that a token was issued for them (MCP authorization, RFC 8707):
under ``protect()`` and ``MCPTokenVerifier`` an introspection response needs ``aud`` unless
``Introspection(require_aud=)`` says otherwise; plain ``OAuthGuard`` keeps RFC 7662's
optional ``aud``. Against a real RFC 7662 endpoint on loopback."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from guards import build_guard
from introspection_server import CLIENT_ID, CLIENT_SECRET, RESOURCE, IntrospectionServer, active
from starlette.responses import PlainTextResponse
from support import assert_refused, challenge

from oauthguard import ConfigurationError, Introspection, OAuthGuard
from oauthguard.mcp import MCPTokenVerifier, protect

pytestmark = pytest.mark.anyio


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("reached")(scope, receive, send)


def settings(**options: Any) -> Introspection:
    return Introspection(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)


@contextlib.asynccontextmanager
async def client_of(
    build: Any, server: IntrospectionServer, **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, OAuthGuard]]:
    """A client of ``build(app, ...)`` (``protect`` or ``OAuthGuard``) introspecting at
    ``server``; ``options`` go to ``build``."""
    options.setdefault("introspection", settings())
    async with httpx.AsyncClient() as http:
        guard = build(
            _app,
            resource=RESOURCE,
            authorization_servers=[server.base],
            http_client=http,
            **options,
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=guard), base_url="https://api.test"
        ) as client:
            yield client, guard


async def post(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/mcp",
        headers={"authorization": f"Bearer {token}"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"introspection": settings(token_format="opaque")},
        {"introspection": settings(jwt_response=True)},
        {"introspection": settings(require_aud=True)},
    ],
)
async def test_under_protect_a_response_without_aud_is_refused(
    server: IntrospectionServer, options: dict[str, Any]
) -> None:
    active(server, "no-aud", time.time(), aud=None)
    active(server, "ours", time.time())
    async with client_of(protect, server, scopes="read", **options) as (client, guard):
        assert guard.server.introspection is not None
        assert guard.server.introspection.require_aud is True
        refused = await post(client, "no-aud")
        params = assert_refused(refused, 401, "invalid_token")
        assert params["error_description"] == "the token has no valid aud claim"
        assert params["scope"] == "read"
        assert (
            params["resource_metadata"]
            == "https://api.test/.well-known/oauth-protected-resource/mcp"
        )
        assert "error" not in challenge(refused)["DPoP"]  # the token came as Bearer
        reached = await post(client, "ours")
        assert reached.status_code == 200 and reached.text == "reached"


async def test_under_protect_an_explicit_false_still_accepts_a_response_without_aud(
    server: IntrospectionServer,
) -> None:
    active(server, "no-aud", time.time(), aud=None)
    active(server, "theirs", time.time(), aud="https://other.test/mcp")
    explicit = settings(require_aud=False)
    async with client_of(protect, server, introspection=explicit) as (client, guard):
        assert guard.server.introspection is explicit
        reached = await post(client, "no-aud")
        assert reached.status_code == 200 and reached.text == "reached"
        # An aud that is there still has to name us (RFC 7662 §2.2, RFC 8707).
        params = assert_refused(await post(client, "theirs"), 401, "invalid_token")
        assert params["error_description"] == "the token is not meant for this resource (aud)"


async def test_plain_oauthguard_still_accepts_a_response_without_aud(
    server: IntrospectionServer,
) -> None:
    active(server, "no-aud", time.time(), aud=None)
    given = settings()
    async with client_of(protect, server, introspection=given):
        pass
    assert given.require_aud is None  # protect() did not change the caller's settings
    async with client_of(build_guard, server, introspection=given) as (client, guard):
        assert guard.server.introspection is given
        reached = await post(client, "no-aud")
        assert reached.status_code == 200 and reached.text == "reached"
    async with client_of(build_guard, server, introspection=settings(require_aud=True)) as (
        client,
        _,
    ):
        assert_refused(await post(client, "no-aud"), 401, "invalid_token")


@pytest.mark.parametrize(("require_aud", "accepted"), [(None, False), (True, False), (False, True)])
async def test_the_sdk_token_verifier_needs_aud_unless_told_otherwise(
    server: IntrospectionServer, require_aud: bool | None, accepted: bool
) -> None:
    active(server, "no-aud", time.time(), aud=None)
    active(server, "ours", time.time())
    async with httpx.AsyncClient() as http:
        verifier = MCPTokenVerifier(
            resource=RESOURCE,
            authorization_servers=[server.base],
            introspection=settings(require_aud=require_aud),
            http_client=http,
        )
        assert (await verifier.verify_token("no-aud") is not None) is accepted
        ours = await verifier.verify_token("ours")
        assert ours is not None and ours.resource == RESOURCE
    assert server.calls == 2


@pytest.mark.parametrize("value", ["yes", 1, 0, "false"])
def test_require_aud_is_true_false_or_none(value: object) -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"require_aud=...\) must be True, False or "
        r"None; got",
    ):
        settings(require_aud=value)


@pytest.mark.parametrize(
    ("aud", "description"),
    [
        (None, "the token has no valid aud claim"),  # "aud": null, as if absent
        (5, "the token has no valid aud claim"),
        ({"uri": RESOURCE}, "the token has no valid aud claim"),
        ([RESOURCE, 5], "the token has no valid aud claim"),
        ([], "the token is not meant for this resource (aud)"),
        ("", "the token is not meant for this resource (aud)"),
        (["https://other.test/mcp"], "the token is not meant for this resource (aud)"),
        (RESOURCE + "/", "the token is not meant for this resource (aud)"),
    ],
)
async def test_under_protect_every_aud_that_does_not_name_the_endpoint_is_refused(
    server: IntrospectionServer, aud: object, description: str
) -> None:
    active(server, "odd-aud", time.time())
    server.responses["odd-aud"]["aud"] = aud
    async with client_of(protect, server, scopes="read") as (client, _):
        response = await post(client, "odd-aud")
    params = assert_refused(response, 401, "invalid_token")
    assert params["error_description"] == description
