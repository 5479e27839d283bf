"""``RedisReplayStore``: DPoP replay protection shared by every worker and host.

Install with ``pip install oauthguard[redis]``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import redis.asyncio
from redis.exceptions import RedisError

from oauthguard.errors import TemporarilyUnavailable

logger = logging.getLogger("oauthguard")


class RedisReplayStore:
    """A ``ReplayStore`` on Redis: one ``SET key 1 NX PX ttl`` per proof.

    >>> store = RedisReplayStore.from_url("redis://localhost:6379/0")
    >>> app.add_middleware(OAuthGuard, ..., replay_store=store)

    When Redis cannot be reached the request is refused with 503 and Retry-After (fail
    closed): a proof is never accepted without being recorded.
    """

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "oauthguard:dpop:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "oauthguard:dpop:", timeout: float = 2.0, **options: Any
    ) -> RedisReplayStore:
        """A store with its own connection pool; ``options`` go to ``redis.asyncio.from_url``."""
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        return cls(redis.asyncio.from_url(url, **options), prefix=prefix)

    async def first_use(self, key: str, ttl: float) -> bool:
        try:
            created = await self.client.set(
                self.prefix + key, b"1", nx=True, px=max(1, math.ceil(ttl * 1000))
            )
        except (RedisError, OSError) as exc:
            logger.warning("the DPoP replay store (Redis) failed: %s: %s", type(exc).__name__, exc)
            raise TemporarilyUnavailable(
                "DPoP replay protection is unavailable; try again later"
            ) from None
        return bool(created)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
