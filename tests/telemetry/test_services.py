"""Introspection calls and cache lookups, DPoP replay-store checks and breaker state
changes, against a real introspection endpoint on loopback and a real (or absent) Redis."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from dpop_setup import Setup
from introspection_server import Clock, IntrospectionServer, active, bearer, guarded
from support import free_port, require_service

from oauthguard.redis import RedisReplayStore

if TYPE_CHECKING:
    from telemetry_setup import Recorded

pytestmark = pytest.mark.anyio
CALLS = "oauthguard.introspection.calls"
LOOKUPS = "oauthguard.introspection.cache.lookups"
CHANGES = "oauthguard.breaker.state_changes"
REPLAY = "oauthguard.dpop.replay_store.operations"
ACTIVE = "opaque-active-4f0c1d2e9b8a7f6e"
UNKNOWN = "opaque-unknown-0a1b2c3d4e5f6a7b"


async def test_introspection_calls_and_cache_lookups_are_counted_by_result(
    server: IntrospectionServer, recorded: Recorded
) -> None:
    active(server, ACTIVE, time.time())
    async with guarded(server, clock=Clock(), token_format="opaque") as (client, _):
        assert (await client.get("/mcp", headers=bearer(ACTIVE))).status_code == 200
        for _ in range(2):  # inactive: asked once, then answered from the negative cache
            assert (await client.get("/mcp", headers=bearer(UNKNOWN))).status_code == 401

    assert recorded.count(CALLS, oauthguard_result="active") == 1
    assert recorded.count(CALLS, oauthguard_result="inactive") == 1
    assert recorded.count(LOOKUPS, oauthguard_result="miss") == 2
    assert recorded.count(LOOKUPS, oauthguard_result="hit") == 1
    first, _ = recorded.spans("oauthguard introspection")
    assert first.attributes["http.request.method"] == "POST"
    assert first.attributes["url.full"] == server.endpoint
    assert first.attributes["http.response.status_code"] == 200
    for value in recorded.attribute_values():
        assert ACTIVE not in value and UNKNOWN not in value and "user-7" not in value


async def test_an_introspection_outage_opens_the_breaker_and_a_probe_closes_it(
    server: IntrospectionServer, recorded: Recorded
) -> None:
    now = time.time()
    for n in range(4):
        active(server, f"opaque-good-{n}", now)
    server.mode = "500"
    clock = Clock()
    async with guarded(server, clock=clock, token_format="opaque") as (client, _):
        for n in range(3):  # three different tokens failing: the service fails
            assert (await client.get("/mcp", headers=bearer(f"opaque-good-{n}"))).status_code == 503
        server.mode = "normal"
        clock.advance(0.5)
        assert (await client.get("/mcp", headers=bearer("opaque-good-3"))).status_code == 200

    assert recorded.count(CALLS, oauthguard_result="failed") == 3
    assert recorded.new(CHANGES) == {
        frozenset({"oauthguard.breaker": "introspection", "oauthguard.breaker.state": s}.items()): 1
        for s in ("open", "half-open", "closed")
    }
    spans = recorded.spans("oauthguard introspection")
    assert [span.attributes.get("error.type") for span in spans] == ["500", "500", "500", None]


async def test_replay_store_checks_are_counted_recorded_and_replayed(
    recorded: Recorded,
) -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token)
    assert (await setup.call(token, proof)).status_code == 200
    assert (await setup.call(token, proof)).status_code == 401  # the same proof again

    assert recorded.count(REPLAY, oauthguard_result="recorded") == 1
    assert recorded.count(REPLAY, oauthguard_result="replayed") == 1
    assert recorded.count("oauthguard.requests", oauthguard_scheme="DPoP") == 2


async def test_an_unreachable_redis_counts_failures_opens_its_breaker_and_traces_each_command(
    recorded: Recorded,
) -> None:
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    setup = Setup(replay_store=store)
    try:
        for _ in range(3):  # three different proofs: Redis fails, not one request
            token = setup.token()
            assert (await setup.call(token, setup.proof(token))).status_code == 503
    finally:
        await store.aclose()

    assert recorded.count(REPLAY, oauthguard_result="failed") == 3
    assert recorded.count(
        CHANGES, oauthguard_breaker="dpop_replay_store", oauthguard_breaker_state="open"
    )
    spans = recorded.spans("oauthguard dpop replay")
    assert len(spans) == 3
    assert spans[0].attributes["db.system.name"] == "redis"
    assert spans[0].attributes["db.operation.name"] == "SET"
    assert spans[0].status.status_code.name == "ERROR"
    assert spans[0].attributes["error.type"] == "ConnectionError"


@pytest.mark.redis
async def test_each_redis_command_is_a_client_span_of_the_request(recorded: Recorded) -> None:
    require_service("redis-server")
    port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        store = RedisReplayStore.from_url(f"redis://127.0.0.1:{port}/0")
        setup = Setup(replay_store=store)
        token = setup.token()
        assert (await setup.call(token, setup.proof(token))).status_code == 200
        await store.aclose()
    finally:
        redis_server.terminate()
        redis_server.wait(10)

    [span] = recorded.spans("oauthguard dpop replay")
    assert span.kind.name == "CLIENT" and span.status.status_code.name == "UNSET"
    assert span.attributes["db.system.name"] == "redis"
    assert recorded.count(REPLAY, oauthguard_result="recorded") == 1


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on {port}")
