"""``RedisReplayStore``: DPoP replay protection shared by every worker and host.

Install with ``pip install oauthguard[redis]``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis.exceptions import RedisError

from oauthguard._http.breaker import CircuitBreaker, Ticket, retry_after
from oauthguard._telemetry import TELEMETRY
from oauthguard._wire.errors import TemporarilyUnavailable

logger = logging.getLogger("oauthguard")
__all__ = ["RedisReplayStore"]

_UNAVAILABLE = "DPoP replay protection is unavailable; try again later"


class RedisReplayStore:
    """A ``ReplayStore`` on Redis: one ``SET key 1 NX PX ttl`` per proof.

    >>> store = RedisReplayStore.from_url("redis://localhost:6379/0")
    >>> app.add_middleware(OAuthGuard, ..., replay_store=store)

    When Redis cannot be reached the request is refused with 503 and Retry-After (fail
    closed): a proof is never accepted without being recorded. After three failures in a
    row, proofs are refused at once, without waiting for Redis, while one request at a time
    tries it again (``oauthguard._http.breaker``: 0.5 s, doubling up to 30 s).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "oauthguard:dpop:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock
        self._breaker = CircuitBreaker(name="dpop_replay_store")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "oauthguard:dpop:",
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> RedisReplayStore:
        """A store with its own connection pool; ``options`` go to ``redis.asyncio.from_url``."""
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        return cls(redis.asyncio.from_url(url, **options), prefix=prefix, clock=clock)

    async def first_use(self, key: str, ttl: float) -> bool:
        ticket = self._breaker.admit(self._clock())
        if not isinstance(ticket, Ticket):
            raise TemporarilyUnavailable(_UNAVAILABLE, retry_after=retry_after(ticket))
        try:
            with TELEMETRY.redis_span("oauthguard dpop replay", "SET"):
                created = await self.client.set(
                    self.prefix + key, b"1", nx=True, px=max(1, math.ceil(ttl * 1000))
                )
        except (RedisError, OSError) as exc:
            logger.warning("the DPoP replay store (Redis) failed: %s: %s", type(exc).__name__, exc)
            # Keys are digests of distinct proofs: three failing in a row is Redis failing.
            now = self._clock()
            if self._breaker.failed(ticket, now, key=key):
                logger.warning("the DPoP replay store is paused for %.1fs", self._breaker.wait(now))
            raise TemporarilyUnavailable(
                _UNAVAILABLE, retry_after=retry_after(self._breaker.wait(now))
            ) from None
        else:
            self._breaker.succeeded(ticket)
        finally:
            self._breaker.released(ticket)  # cancelled: no word on Redis
        return bool(created)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
