"""Introspection answers shared between processes (``Introspection(shared_cache=)``), through
the in-memory store: two guards stand for two workers, against a real endpoint on loopback.
What the store gives back is untrusted: anything but an entry the guard wrote is a miss."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from introspection_server import (
    CLIENT_ID,
    RESOURCE,
    Clock,
    IntrospectionServer,
    active,
    bearer,
    guarded,
)
from support import assert_refused

from oauthguard import ConfigurationError, Introspection, MemoryIntrospectionCache
from oauthguard._introspection.shared import (
    MAX_ENTRY_BYTES,
    decode_entry,
    encode_entry,
    namespace,
    shared_key,
)

pytestmark = pytest.mark.anyio


class Recorded(MemoryIntrospectionCache):
    """The in-memory store, keeping what was written (to look for the token in it)."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock=clock or time.monotonic)
        self.written: dict[str, tuple[bytes, float]] = {}

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.written[key] = (value, ttl)
        await super().put(key, value, ttl)


@contextlib.asynccontextmanager
async def workers(
    server: IntrospectionServer, cache: Any, count: int = 2, **settings: Any
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` guards (one per worker) sharing ``cache``."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            client, _ = await stack.enter_async_context(
                guarded(server, shared_cache=cache, **settings)
            )
            clients.append(client)
        yield clients


def key_of(server: IntrospectionServer, token: str, client_id: str = CLIENT_ID) -> str:
    return shared_key(namespace(server.endpoint, client_id), token)


async def test_workers_sharing_a_cache_introspect_a_token_once(
    server: IntrospectionServer,
) -> None:
    active(server, "opaque-shared", time.time())
    cache = Recorded()
    async with workers(server, cache, 3, endpoint=server.endpoint) as clients:
        for client in clients:
            response = await client.get("/mcp", headers=bearer("opaque-shared"))
            assert response.status_code == 200, response.text
            assert response.json()["sub"] == "user-7"
    assert server.calls == 1
    [(key, (value, ttl))] = cache.written.items()
    assert key == key_of(server, "opaque-shared")
    assert b"opaque-shared" not in value and "opaque-shared" not in key  # never the token
    assert 0 < ttl <= 60  # Introspection(cache_ttl=) by default


async def test_inactive_answers_are_shared_for_the_negative_ttl(
    server: IntrospectionServer,
) -> None:
    cache = Recorded()
    async with workers(server, cache, endpoint=server.endpoint) as (first, second):
        for client in (first, second):
            assert_refused(
                await client.get("/mcp", headers=bearer("unknown")), 401, "invalid_token"
            )
    assert server.calls == 1
    [(_, ttl)] = cache.written.values()
    assert 0 < ttl <= 5


async def test_a_shared_answer_lasts_no_longer_than_the_first_introspection_allowed(
    server: IntrospectionServer,
) -> None:
    clock = Clock()
    active(server, "opaque-1", clock.now)
    cache = MemoryIntrospectionCache(clock=clock)
    async with workers(server, cache, clock=clock, cache_ttl=60) as (first, second):
        assert (await first.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        clock.advance(50)
        assert (await second.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        assert server.calls == 1
        clock.advance(11)  # 61 s after the first call: past cache_ttl for both workers
        del server.responses["opaque-1"]  # revoked meanwhile
        assert_refused(await second.get("/mcp", headers=bearer("opaque-1")), 401, "invalid_token")
    assert server.calls == 2


@pytest.mark.parametrize(
    "binding",
    [{"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}, {"token_type": "DPoP"}],
)
async def test_a_shared_answer_keeps_its_dpop_binding(
    server: IntrospectionServer, binding: dict[str, Any]
) -> None:
    active(server, "opaque-bound", time.time(), **binding)
    async with workers(server, MemoryIntrospectionCache(), endpoint=server.endpoint) as clients:
        for client in clients:  # RFC 9449 §7.2: never as Bearer, in whichever worker
            refused = await client.get("/mcp", headers=bearer("opaque-bound"))
            assert "DPoP" in assert_refused(refused, 401, "invalid_token")["error_description"]
    assert server.calls == 1


async def test_two_clients_of_one_endpoint_do_not_share_answers(
    server: IntrospectionServer,
) -> None:
    active(server, "opaque-1", time.time())
    cache = Recorded()
    where = server.endpoint
    async with guarded(server, endpoint=where, shared_cache=cache) as (client, _):
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    server.client_id = "another resource server"
    try:
        async with guarded(
            server, endpoint=where, shared_cache=cache, client_id=server.client_id
        ) as (client, _):
            assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    finally:
        server.client_id = CLIENT_ID
    assert server.calls == 2
    assert set(cache.written) == {
        key_of(server, "opaque-1", CLIENT_ID),
        key_of(server, "opaque-1", "another resource server"),
    }


async def test_concurrent_requests_for_a_new_token_make_one_call(
    server: IntrospectionServer,
) -> None:
    active(server, "opaque-1", time.time())
    server.delay = 0.2
    statuses: list[int] = []
    async with guarded(server, shared_cache=MemoryIntrospectionCache()) as (client, _):

        async def call() -> None:
            statuses.append((await client.get("/mcp", headers=bearer("opaque-1"))).status_code)

        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(call)
    assert statuses == [200] * 5
    assert server.calls == 1


def entry(server: IntrospectionServer, **members: Any) -> dict[str, Any]:
    answer = {"active": True, "iss": server.base, "aud": RESOURCE, "sub": "forged", **members}
    return {"v": 1, "until": time.time() + 60, "members": answer}


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


MALFORMED = {
    "not json": lambda s: b"\x00\xff not json",
    "not ascii": lambda s: raw(entry(s)).replace(b"forged", "f\u00f6rged".encode()),
    "a list": lambda s: raw([entry(s)]),
    "another version": lambda s: raw({**entry(s), "v": 2}),
    "version true": lambda s: raw({**entry(s), "v": True}),
    "an extra member": lambda s: raw({**entry(s), "accept": True}),
    "no until": lambda s: raw({k: v for k, v in entry(s).items() if k != "until"}),
    "an expired until": lambda s: raw({**entry(s), "until": time.time() - 1}),
    "until NaN": lambda s: b'{"v":1,"until":NaN,"members":{"active":true}}',
    "until a string": lambda s: raw({**entry(s), "until": "9999999999"}),
    "members a string": lambda s: raw({**entry(s), "members": "active"}),
    "active a string": lambda s: raw({**entry(s), "members": {"active": "true"}}),
    "a repeated member": lambda s: b'{"v":1,"v":1,"until":9999999999,"members":{"active":true}}',
    "deep nesting": lambda s: b'{"v":1,"until":9999999999,"members":' + b"[" * 50_000,
    "too large": lambda s: raw(entry(s, padding="x" * MAX_ENTRY_BYTES)),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
async def test_a_malformed_entry_is_a_miss_never_an_answer(
    server: IntrospectionServer, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = MemoryIntrospectionCache()
    await cache.put(key_of(server, "opaque-1"), MALFORMED[shape](server), 60)
    async with guarded(server, endpoint=server.endpoint, shared_cache=cache) as (client, _):
        with caplog.at_level(logging.WARNING, logger="oauthguard"):
            refused = await client.get("/mcp", headers=bearer("opaque-1"))
    # The server was asked, and it does not know the token: the forged entry did nothing.
    assert_refused(refused, 401, "invalid_token")
    assert server.calls == 1
    assert "ignored an unreadable or expired shared introspection entry" in caplog.text


async def test_a_well_formed_entry_is_checked_like_a_fresh_answer(
    server: IntrospectionServer,
) -> None:
    cache = MemoryIntrospectionCache()
    key = key_of(server, "opaque-1")
    await cache.put(key, raw(entry(server, aud="https://elsewhere.test")), 60)
    async with guarded(server, endpoint=server.endpoint, shared_cache=cache) as (client, _):
        refused = await client.get("/mcp", headers=bearer("opaque-1"))
        params = assert_refused(refused, 401, "invalid_token")
        assert "aud" in params["error_description"]
        await cache.put(key, raw(entry(server, exp=int(time.time()) - 3600)), 60)
        assert_refused(await client.get("/mcp", headers=bearer("opaque-2")), 401, "invalid_token")
    assert server.calls == 1  # opaque-2 was asked; opaque-1's entry was read and refused


class Failing:
    """A store whose every call raises, or hangs."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        return await self._fail()

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._fail()

    async def _fail(self) -> Any:
        self.calls += 1
        if self.hang:
            await anyio.sleep(30)
        raise ConnectionError("the store is down")


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "hangs"])
async def test_a_failing_store_leaves_the_endpoint_to_answer(
    server: IntrospectionServer, hang: bool, caplog: pytest.LogCaptureFixture
) -> None:
    active(server, "opaque-1", time.time())
    store = Failing(hang)
    async with guarded(server, shared_cache=store, timeout=0.1) as (client, guard):
        with caplog.at_level(logging.WARNING, logger="oauthguard"):
            accepted = await client.get("/mcp", headers=bearer("opaque-1"))
            refused = await client.get("/mcp", headers=bearer("unknown"))
    assert accepted.status_code == 200, accepted.text
    assert_refused(refused, 401, "invalid_token")
    assert server.calls == 2 and store.calls == 4
    verifier = guard.server.verifier
    assert getattr(verifier, "introspection", verifier).shared_failures == 4
    failure = "TimeoutError" if hang else "ConnectionError"
    # Logged once for the outage, not once per call.
    assert caplog.text.count(f"the shared introspection cache failed to read: {failure}") == 1
    assert caplog.text.count("the shared introspection cache failed") == 1


def test_the_shared_cache_must_be_a_cache() -> None:
    with pytest.raises(ConfigurationError, match="shared_cache"):
        Introspection(client_id="rs", client_secret="s", shared_cache="redis://localhost")


def test_entries_round_trip_and_refuse_what_json_cannot_hold() -> None:
    members = {"active": True, "sub": "user-1", "exp": 2_000_000_000}
    data = encode_entry(members, 1_999_999_999.5)
    assert data is not None and decode_entry(data, 1_000.0) == (members, 1_999_999_999.5)
    assert encode_entry({"active": True, "x": float("nan")}, 1.0) is None
    assert encode_entry({"active": True, "x": "y" * MAX_ENTRY_BYTES}, 1.0) is None
    assert decode_entry(data.decode(), 1_000.0) is None  # a str is not what a store returns


class Recovering(MemoryIntrospectionCache):
    """The in-memory store, down until ``up`` is set."""

    up = False

    async def get(self, key: str) -> bytes | None:
        if not self.up:
            raise ConnectionError("down")
        return await super().get(key)


async def test_a_store_that_answers_again_is_used_again(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    active(server, "opaque-1", time.time())
    active(server, "opaque-2", time.time())
    store = Recovering()
    async with workers(server, store, endpoint=server.endpoint) as (first, second):
        with caplog.at_level(logging.INFO, logger="oauthguard"):
            assert (await first.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
            store.up = True
            assert (await first.get("/mcp", headers=bearer("opaque-2"))).status_code == 200
            assert (await second.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    assert "the shared introspection cache answers again" in caplog.text
    assert server.calls == 2  # the second worker read opaque-1's answer, written while down
