"""``RedisIntrospectionCache`` against a real redis-server, and uvicorn ``--workers 4``
sharing it: one new opaque token sent to every worker is introspected once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import redis.asyncio
from fleet_worker_app import CLIENT_ID, CLIENT_SECRET, RESOURCE
from redis_support import running_redis, start_redis, start_uvicorn, stop, wait_for_port
from support import Recording, free_port, serve

from oauthguard import ConfigurationError
from oauthguard._introspection.shared import MAX_ENTRY_BYTES
from oauthguard.redis import RedisIntrospectionCache
from oauthguard.testing import TestIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    yield from running_redis()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_entries_are_stored_with_their_ttl_under_the_prefix(redis_url: str) -> None:
    cache = RedisIntrospectionCache.from_url(redis_url, prefix="test-ttl:")
    try:
        assert await cache.get("k1") is None
        await cache.put("k1", b'{"v":1}', 5)
        assert await cache.get("k1") == b'{"v":1}'
        assert 0 < await cache.client.pttl("test-ttl:k1") <= 5000
        other = RedisIntrospectionCache(redis.asyncio.from_url(redis_url), prefix="other:")
        assert await other.get("k1") is None  # the prefix separates deployments
        await other.aclose()
    finally:
        await cache.aclose()


async def test_no_more_than_an_entry_is_read_and_odd_keys_are_misses(redis_url: str) -> None:
    cache = RedisIntrospectionCache.from_url(redis_url, prefix="test-odd:")
    try:
        await cache.client.set("test-odd:large", b"x" * (10 * MAX_ENTRY_BYTES))
        await cache.client.rpush("test-odd:list", b"x")
        await cache.put("too-large", b"x" * (MAX_ENTRY_BYTES + 1), 5)
        assert await cache.get("large") is None
        assert await cache.get("list") is None  # WRONGTYPE: Redis answered, no outage
        assert await cache.client.exists("test-odd:too-large") == 0
        assert cache.failures == cache.outages == 0
    finally:
        await cache.aclose()


async def test_with_a_secret_only_entries_it_signed_for_their_key_are_read(
    redis_url: str,
) -> None:
    secret = "a secret of every worker and host"
    cache = RedisIntrospectionCache.from_url(redis_url, prefix="test-mac:", secret=secret)
    other = RedisIntrospectionCache.from_url(redis_url, prefix="test-mac:", secret="x" * 16)
    try:
        await cache.put("k1", b'{"v":1}', 60)
        assert await cache.get("k1") == b'{"v":1}'
        stored = await cache.client.get("test-mac:k1")
        assert stored is not None and stored.endswith(b'{"v":1}') and len(stored) == 32 + 7
        await cache.client.set("test-mac:forged", b'{"v":1}')  # written without the secret
        await cache.client.set("test-mac:copied", stored)  # a good entry, under another key
        await cache.client.set("test-mac:short", b"x")
        for key in ("forged", "copied", "short"):
            assert await cache.get(key) is None
        assert cache.rejected == 3
        assert await other.get("k1") is None  # another secret
    finally:
        await cache.aclose()
        await other.aclose()


async def test_a_client_that_decodes_responses_reads_signed_entries(redis_url: str) -> None:
    # decode_responses=True made the client decode the HMAC's bytes as UTF-8: every read
    # raised (the cache's protocol is None on failure), and no signed entry was ever used.
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    cache = RedisIntrospectionCache(client, prefix="test-decoded:", secret="s" * 32)
    try:
        await cache.put("k1", b'{"v":1}', 60)
        assert await cache.get("k1") == b'{"v":1}'
        await client.set("test-decoded:odd", "\u00e9t\u00e9")  # UTF-8 text, no HMAC
        assert await cache.get("odd") is None and cache.rejected == 1
        assert cache.failures == 0
    finally:
        await cache.aclose()


def test_the_secret_has_16_bytes_at_least() -> None:
    with pytest.raises(ConfigurationError, match="16 bytes"):
        RedisIntrospectionCache(redis.asyncio.Redis(), secret="short")


def test_a_cache_without_a_secret_says_who_could_write_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        RedisIntrospectionCache(redis.asyncio.Redis(), secret="s" * 16)
        assert not caplog.records
        RedisIntrospectionCache(redis.asyncio.Redis())
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "without secret=" in record.getMessage()


async def test_an_outage_is_logged_once_counted_and_left_alone_for_a_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    process, url = start_redis(port)
    clock = Clock()
    cache = RedisIntrospectionCache.from_url(url, timeout=0.5, clock=clock)
    try:
        await cache.put("k", b"entry", 60)
        stop(process)
        with caplog.at_level(logging.INFO, logger="oauthguard"):
            assert await cache.get("k") is None
            assert await cache.get("k") is None  # paused: Redis is not asked
            assert (cache.failures, cache.outages) == (1, 1)
            clock.now += 1  # past the first pause: one call tries again, and fails
            await cache.put("k", b"entry", 60)
            assert (cache.failures, cache.outages) == (2, 1)
            process, url = start_redis(port)
            clock.now += 5
            await cache.put("k", b"back", 60)
            assert await cache.get("k") == b"back"
        assert caplog.text.count("the shared introspection cache (Redis) failed") == 1
        assert "the shared introspection cache (Redis) answers again" in caplog.text
    finally:
        stop(process)
        await cache.aclose()


async def test_a_slow_redis_is_a_miss_after_the_timeout() -> None:
    process, url = start_redis()
    clock = Clock()
    cache = RedisIntrospectionCache.from_url(url, timeout=0.3, clock=clock)
    admin = redis.asyncio.from_url(url)
    try:
        await cache.put("k", b"entry", 60)
        await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # Redis stops answering
        assert await cache.get("k") is None
        assert (cache.failures, cache.outages) == (1, 1)
        await admin.execute_command("CLIENT", "UNPAUSE")
        clock.now += 1  # past the pause the breaker took
        assert await cache.get("k") == b"entry"
    finally:
        await admin.aclose()
        await cache.aclose()
        stop(process)


# -- uvicorn --workers 4 ------------------------------------------------------------------
def fleet_issuer() -> tuple[TestIssuer, int]:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("ES256",))
    issuer.register_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return issuer, port


async def send_to_every_worker(
    base: str, token: str, workers: int, seconds: float = 60
) -> dict[int, list[int]]:
    """Send ``token`` on new connections, in bursts, until ``workers`` processes have
    answered; the statuses each worker's pid answered."""
    answered: dict[int, list[int]] = {}
    limits = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def call() -> None:
            response = await client.get("/mcp", headers={"authorization": f"Bearer {token}"})
            pid = int(response.headers["x-worker-pid"])
            answered.setdefault(pid, []).append(response.status_code)

        while len(answered) < workers:
            assert time.monotonic() < deadline, f"only workers {sorted(answered)} answered"
            async with anyio.create_task_group() as tasks:
                for _ in range(4 * workers):
                    tasks.start_soon(call)
    return answered


async def test_four_workers_introspect_a_new_token_once_and_survive_redis_dying(
    tmp_path: Path,
) -> None:
    issuer, issuer_port = fleet_issuer()
    recorded = Recording(issuer.app)
    redis_process, redis_url = start_redis()
    port = free_port()
    log = (tmp_path / "workers.log").open("wb")
    env = {"FLEET_ISSUER": issuer.issuer, "FLEET_MODE": "introspection", "FLEET_REDIS": redis_url}
    base = f"http://127.0.0.1:{port}"
    with serve(recorded, port=issuer_port):
        workers = start_uvicorn("fleet_worker_app:create_app", port, env, log, "--workers", "4")
        try:
            wait_for_port(port, workers)
            token = issuer.opaque_token(audience=RESOURCE, scope="read")
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                first = await client.get("/mcp", headers={"authorization": f"Bearer {token}"})
            assert first.status_code == 200, first.text
            answered = await send_to_every_worker(base, token, workers=4)
            assert len(answered) == 4  # four processes, each answered the token
            assert all(status == 200 for statuses in answered.values() for status in statuses)
            assert recorded.paths.count("/introspect") == 1

            stop(redis_process)  # mid-test: every worker loses the shared cache
            again = await send_to_every_worker(base, token, workers=4)
            assert all(status == 200 for statuses in again.values() for status in statuses)
            assert recorded.paths.count("/introspect") == 1  # each worker's own cache
            fresh = issuer.opaque_token(audience=RESOURCE, scope="read")
            accepted = await send_to_every_worker(base, fresh, workers=4)
            assert all(status == 200 for statuses in accepted.values() for status in statuses)
            assert 2 <= recorded.paths.count("/introspect") <= 5  # once per worker at most
            refused = await send_to_every_worker(base, "not-a-token-anyone-issued", workers=4)
            assert all(status == 401 for statuses in refused.values() for status in statuses)
        finally:
            stop(workers)
            stop(redis_process)
            log.close()
    logged = (tmp_path / "workers.log").read_text()
    assert "Traceback" not in logged
    # Once per outage in each worker that noticed it, not once per request.
    assert 1 <= logged.count("the shared introspection cache (Redis) failed") <= 4
