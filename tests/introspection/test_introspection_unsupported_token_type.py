"""An introspection endpoint that does not introspect a kind of token: inactive, not an outage.

oidc-provider answers 400 ``unsupported_token_type`` for JWTs (RFC 7662 §2.2 would have
``{"active": false}``); any client can send a JWT-shaped token, so it must not make a 503.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from introspection_server import IntrospectionServer, bearer, guarded, running_server
from support import assert_refused

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> Iterator[IntrospectionServer]:
    with running_server() as server:
        server.mode = "unsupported_token_type"
        yield server


async def test_unsupported_token_type_is_an_inactive_token_and_cached_as_one(
    server: IntrospectionServer,
) -> None:
    async with guarded(server, negative_cache_ttl=60) as (client, _):
        first = await client.get("/mcp", headers=bearer("a.jwt-shaped.token"))
        again = await client.get("/mcp", headers=bearer("a.jwt-shaped.token"))
    for response in (first, again):
        params = assert_refused(response, 401, "invalid_token")
        assert params["error_description"] == "the token is not active"
    assert server.calls == 1  # the negative cache holds it: no flood of the endpoint


async def test_another_400_is_still_an_outage(server: IntrospectionServer) -> None:
    server.mode = "400"
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
