"""The two small building blocks under the hot path: the token cache and single-flight."""

from __future__ import annotations

import anyio
import pytest

from oauthguard._http.cache import ExpiringCache
from oauthguard._http.singleflight import SingleFlight


def test_cache_entries_expire_at_their_time() -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    cache.put("a", "A", expires_at=100, now=0)
    assert cache.get("a", 99.9) == "A"
    assert cache.get("a", 100) is None
    assert len(cache) == 0  # an expired entry is dropped when found


def test_cache_refuses_entries_already_expired_and_size_zero() -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    cache.put("a", "A", expires_at=5, now=5)
    assert len(cache) == 0
    disabled: ExpiringCache[str] = ExpiringCache(0)
    disabled.put("a", "A", expires_at=100, now=0)
    assert disabled.get("a", 1) is None


def test_cache_drops_the_oldest_insertion_when_full() -> None:
    cache: ExpiringCache[int] = ExpiringCache(3)
    for n in range(5):
        cache.put(str(n), n, expires_at=100, now=0)
    assert len(cache) == 3
    assert [cache.get(str(n), 1) for n in range(5)] == [None, None, 2, 3, 4]
    cache.put("3", 33, expires_at=100, now=0)  # replacing evicts nothing
    assert len(cache) == 3 and cache.get("2", 1) == 2


@pytest.mark.anyio
async def test_concurrent_calls_share_one_execution_and_its_error() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate, runs, results = anyio.Event(), [], []

    async def work() -> int:
        runs.append(1)
        await gate.wait()
        return 42

    async def failing() -> int:
        runs.append(1)
        await gate.wait()
        raise LookupError("shared failure")

    async def call(key: str, fn: object) -> None:
        try:
            results.append(await flight.run(key, fn))  # type: ignore[arg-type]
        except LookupError as exc:
            results.append(str(exc))

    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(call, "ok", work)
            tasks.start_soon(call, "bad", failing)
        await anyio.sleep(0)
        gate.set()
    assert len(runs) == 2
    assert sorted(results, key=str) == [42] * 10 + ["shared failure"] * 10


@pytest.mark.anyio
async def test_a_cancelled_leader_hands_over_to_a_waiting_caller() -> None:
    flight: SingleFlight[str] = SingleFlight()
    started, never, runs = anyio.Event(), anyio.Event(), []
    results: list[str] = []

    async def work() -> str:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            await never.wait()  # the first run hangs until it is cancelled
        return "done"

    leader = anyio.CancelScope()

    async def lead() -> None:
        with leader:
            await flight.run("k", work)

    async def follow() -> None:
        results.append(await flight.run("k", work))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lead)
        await started.wait()
        tasks.start_soon(follow)
        await anyio.sleep(0)
        leader.cancel()
    assert results == ["done"]
    assert len(runs) == 2
