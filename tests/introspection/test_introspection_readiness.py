"""The readiness check with introspection: not ready while the endpoint is paused."""

from __future__ import annotations

import pytest
from introspection_server import Clock, IntrospectionServer, bearer, guarded

pytestmark = pytest.mark.anyio


async def test_not_ready_while_the_introspection_endpoint_is_paused(
    server: IntrospectionServer,
) -> None:
    clock = Clock()
    async with guarded(server, clock=clock) as (client, guard):
        assert await guard.server.ready()
        server.mode = "500"
        for n in range(3):  # 5xx for three different tokens: the breaker opens
            assert (await client.get("/mcp", headers=bearer(f"token-{n}"))).status_code == 503
        assert not await guard.server.ready()
        clock.advance(0.5)  # the pause is over: the next new token may probe the endpoint
        assert await guard.server.ready()
