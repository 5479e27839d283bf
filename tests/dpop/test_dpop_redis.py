"""Replay protection shared through a real redis-server: the store, two uvicorn worker
processes, and failing closed when Redis is down."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio
from dpop_setup import RESOURCE, Setup
from proofs import ClientKey
from redis_support import running_redis, start_redis, start_uvicorn, stop, wait_for_port
from support import assert_refused, free_port, serve

from oauthguard.redis import RedisReplayStore
from oauthguard.testing import TestIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    yield from running_redis()


async def test_the_redis_store_records_a_key_once_for_its_ttl(redis_url: str) -> None:
    store = RedisReplayStore.from_url(redis_url, prefix="test-ttl:")
    try:
        assert await store.first_use("k1", 5)
        assert not await store.first_use("k1", 5)
        ttl = await store.client.pttl("test-ttl:k1")
        assert 0 < ttl <= 5000
        other = RedisReplayStore(redis.asyncio.from_url(redis_url), prefix="elsewhere:")
        assert await other.first_use("k1", 5)  # the prefix separates deployments
        await other.aclose()
    finally:
        await store.aclose()


async def test_an_unreachable_redis_fails_closed_with_503() -> None:
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    setup = Setup(replay_store=store)
    token = setup.token()
    response = await setup.call(token, setup.proof(token))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert "www-authenticate" not in response.headers
    await store.aclose()


async def test_redis_going_down_turns_passes_into_503() -> None:
    process, url = start_redis()
    store = RedisReplayStore.from_url(url, timeout=1)
    try:
        setup = Setup(replay_store=store)
        token = setup.token()
        assert (await setup.call(token, setup.proof(token))).status_code == 200
        stop(process)
        response = await setup.call(token, setup.proof(token))
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
    finally:
        stop(process)
        await store.aclose()


def start_worker(port: int, issuer: str, redis_url: str) -> subprocess.Popen[bytes]:
    env = {"DPOP_TEST_ISSUER": issuer, "DPOP_TEST_REDIS": redis_url}
    return start_uvicorn("dpop_worker_app:create_app", port, env)


def test_two_uvicorn_workers_sharing_redis_refuse_a_replay(redis_url: str) -> None:
    issuer_port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}", algorithms=("ES256",))
    ports = [free_port(), free_port()]
    with serve(issuer.app, port=issuer_port):
        workers = [start_worker(port, issuer.issuer, redis_url) for port in ports]
        try:
            for port, worker in zip(ports, workers, strict=True):
                wait_for_port(port, worker)
            key = ClientKey()
            token = issuer.token(audience=RESOURCE, alg="ES256", jkt=key.thumbprint)
            # Both workers sit behind the same (trusted, loopback) proxy for api.test.
            forwarded = {
                "authorization": f"DPoP {token}",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "api.test",
            }
            proof = key.proof("GET", "https://api.test/mcp", now=time.time(), token=token)
            first = httpx.get(
                f"http://127.0.0.1:{ports[0]}/mcp", headers={**forwarded, "dpop": proof}, timeout=10
            )
            assert first.status_code == 200, first.text
            replayed = httpx.get(
                f"http://127.0.0.1:{ports[1]}/mcp", headers={**forwarded, "dpop": proof}, timeout=10
            )
            params = assert_refused(replayed, 401, "invalid_dpop_proof", scheme="DPoP")
            assert "already used" in params["error_description"]
            fresh = key.proof("GET", "https://api.test/mcp", now=time.time(), token=token)
            second = httpx.get(
                f"http://127.0.0.1:{ports[1]}/mcp", headers={**forwarded, "dpop": fresh}, timeout=10
            )
            assert second.status_code == 200, second.text
            assert first.json()["pid"] != second.json()["pid"]  # two processes
            assert first.json()["scheme"] == second.json()["scheme"] == "DPoP"
        finally:
            for worker in workers:
                stop(worker)
