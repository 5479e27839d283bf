"""Replay protection for DPoP proofs (RFC 9449 §11.1): the ``ReplayStore`` protocol and the
bounded in-memory default. ``oauthguard.redis.RedisReplayStore`` serves many workers."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from oauthguard._telemetry import Metrics
from oauthguard._wire.errors import ConfigurationError, TemporarilyUnavailable


@runtime_checkable
class ReplayStore(Protocol):
    """Remembers which proofs were used.

    ``first_use(key, ttl)`` records ``key`` for ``ttl`` seconds and returns True, or returns
    False when ``key`` was already recorded and has not expired. It raises
    ``TemporarilyUnavailable`` when it cannot tell (the request then gets 503, never a pass).
    Keys are fixed-length hex digests.
    """

    async def first_use(self, key: str, ttl: float) -> bool: ...


class MemoryReplayStore:
    """The default store: one process, bounded, holding 16-byte hashes of the keys.

    Keys are kept in two generations, each spanning the longest ``ttl`` seen: a key
    recorded in one generation is dropped two turns later, after its ``ttl`` has run out, so
    memory follows the rate of proofs (about 125 bytes each, for up to twice
    ``dpop_max_age + leeway``) at no per-request cost. When ``max_entries`` live entries are
    held anyway, new proofs are refused (503 with Retry-After) rather than forgetting a live
    one, which would let its proof be replayed. With several workers or hosts, use
    ``oauthguard.redis.RedisReplayStore``.
    """

    def __init__(
        self, max_entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._current: dict[bytes, float] = {}
        self._previous: dict[bytes, float] = {}
        self._span = 0.0  # the longest ttl seen: how long a generation lasts at least
        self._turn_at = -math.inf
        self._next_sweep = math.inf  # no entry expires before this

    async def first_use(self, key: str, ttl: float) -> bool:
        digest = _digest(key)
        now = self._clock()
        if now >= self._turn_at:
            self._previous, self._current = self._current, {}
            self._turn_at = now + self._span
        expiry = self._current.get(digest)
        if expiry is None:
            expiry = self._previous.get(digest)
        if expiry is not None and expiry > now:
            return False
        if len(self._current) + len(self._previous) >= self.max_entries:
            self._make_room(now)
        self._span = max(self._span, ttl)
        self._current[digest] = now + ttl
        self._next_sweep = min(self._next_sweep, now + ttl)
        return True

    def _make_room(self, now: float) -> None:
        if now >= self._next_sweep:
            self._current = {key: at for key, at in self._current.items() if at > now}
            self._previous = {key: at for key, at in self._previous.items() if at > now}
            # No sweep again before the earliest live entry expires: full means full.
            self._next_sweep = min(
                (*self._current.values(), *self._previous.values()), default=math.inf
            )
        if len(self) >= self.max_entries:
            wait = max(self._next_sweep - now, 0)
            raise TemporarilyUnavailable(
                "too many DPoP proofs are being tracked for replay; try again shortly",
                retry_after=math.ceil(wait) or 1,
            )

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


def _digest(key: str) -> bytes:
    """The 16 bytes kept for ``key``: the guard's keys are 256-bit hex digests already, so
    their first half is used as it is; any other key is hashed."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key[:32])
        except ValueError:
            pass
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


async def counted_first_use(store: ReplayStore, key: str, ttl: float, metrics: Metrics) -> bool:
    """``store.first_use(key, ttl)``, its result counted: recorded, replayed or failed."""
    try:
        first = await store.first_use(key, ttl)
    except Exception:
        metrics.replay_store("failed")
        raise
    metrics.replay_store("recorded" if first else "replayed")
    return first


def check_replay_store(value: object, clock: Callable[[], float]) -> ReplayStore:
    """The ``replay_store`` argument: a ``ReplayStore``, or None for one in memory."""
    if value is None:
        return MemoryReplayStore(clock=clock)
    if not isinstance(value, ReplayStore):
        raise ConfigurationError(
            "replay_store must have an async first_use(key, ttl) method (a ReplayStore), "
            "for example oauthguard.redis.RedisReplayStore.from_url('redis://...')"
        )
    return value
