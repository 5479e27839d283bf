"""A Redis replay store that keeps failing is not asked on every proof: after three
failures in a row, proofs are refused at once while one request at a time tries again."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from oauthguard._wire.errors import TemporarilyUnavailable
from oauthguard.redis import RedisReplayStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyRedis:
    """Stands in for the Redis client: ``SET`` fails while ``down``, and is counted."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0
        self.keys: set[str] = set()

    async def set(self, key: str, value: bytes, **options: Any) -> bool | None:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("Connection refused")
        if key in self.keys:
            return None
        self.keys.add(key)
        return True


async def refused(store: RedisReplayStore, key: str) -> int:
    with pytest.raises(TemporarilyUnavailable, match="replay protection is unavailable") as error:
        await store.first_use(key, 60)
    return error.value.retry_after


async def test_one_failure_refuses_only_its_own_proof() -> None:
    redis, clock = FlakyRedis(), Clock()
    store = RedisReplayStore(redis, clock=clock)  # type: ignore[arg-type]
    assert await refused(store, "a") == 1
    redis.down = False
    assert await store.first_use("b", 60)
    assert redis.calls == 2


async def test_three_failures_in_a_row_refuse_at_once_until_a_probe_succeeds() -> None:
    redis, clock = FlakyRedis(), Clock()
    store = RedisReplayStore(redis, clock=clock)  # type: ignore[arg-type]
    for key in ("a", "b", "c"):
        await refused(store, key)
    assert redis.calls == 3
    assert await refused(store, "d") == 1  # not asked: 0.5 s left
    assert redis.calls == 3
    clock.now += 0.5
    await refused(store, "e")  # the probe fails: 1 s more
    assert redis.calls == 4
    clock.now += 1
    redis.down = False
    assert await store.first_use("f", 60)  # the probe succeeds
    assert not await store.first_use("f", 60)
    assert redis.calls == 6
