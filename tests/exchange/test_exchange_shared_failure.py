"""Concurrent identical exchanges share one request (single-flight): when it fails, every
caller gets the failure, and none gets the others' part of it.

The failing endpoint is an ``httpx.MockTransport``: a unit test of our own HTTP client.
"""

from __future__ import annotations

import traceback

import anyio
import httpx
import pytest
from exchange_setup import CLIENT_ID, CLIENT_SECRET, DOWNSTREAM, Clock

from oauthguard import TemporarilyUnavailable
from oauthguard.exchange import TokenExchange

pytestmark = pytest.mark.anyio


async def test_callers_sharing_a_failed_exchange_each_get_a_traceback_of_their_own() -> None:
    release = anyio.Event()

    async def failing(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(503)

    exchange = TokenExchange(
        token_endpoint="https://as.test/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(failing)),
        clock=Clock(),
    )
    depths: list[int] = []

    async def call() -> None:
        try:
            await exchange.token_for("shared-subject", resource=DOWNSTREAM)
        except TemporarilyUnavailable as failure:
            depths.append(len(traceback.extract_tb(failure.__traceback__)))

    async with anyio.create_task_group() as tasks:
        for _ in range(100):
            tasks.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert exchange.calls == 1 and len(depths) == 100
    # The one failure is raised in every caller: re-raised as it was, its traceback took on
    # each earlier caller's frames (the hundredth held some 200 more than the first).
    assert max(depths) - min(depths) < 10
