"""Redis for many workers and hosts: ``RedisReplayStore`` (DPoP replay protection) and
``RedisIntrospectionCache`` (introspection answers).

Install with ``pip install '.[redis]'`` from a checkout of oauthguard.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis.client import NEVER_DECODE
from redis.exceptions import RedisError, ResponseError

from oauthguard._http.breaker import CircuitBreaker, Ticket, retry_after
from oauthguard._introspection.shared import MAX_ENTRY_BYTES
from oauthguard._telemetry import TELEMETRY
from oauthguard._wire.errors import ConfigurationError, TemporarilyUnavailable

logger = logging.getLogger("oauthguard")
__all__ = ["RedisIntrospectionCache", "RedisReplayStore"]

_UNAVAILABLE = "DPoP replay protection is unavailable; try again later"
_MAC_BYTES = 32  # HMAC-SHA256


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


class RedisIntrospectionCache:
    """An ``IntrospectionCache`` on Redis, so that N workers or hosts introspect each token
    once: ``Introspection(..., shared_cache=RedisIntrospectionCache.from_url(url))``.

    Each answer is one string, ``SET key value PX ttl`` under ``prefix`` and a SHA-256 of
    the endpoint, the client and the token (never the token), read back with ``GETRANGE``
    so that no more than ``MAX_ENTRY_BYTES`` are ever read. Redis is a cache here, never a
    source of truth: when it fails or takes longer than ``timeout``, the token is
    introspected as without it (logged once per outage, counted in ``failures`` and
    ``outages``), and while it keeps failing it is left alone for a pause (0.5 s, doubling
    up to 30 s) before one request tries it again.

    Whoever can write to this Redis could write answers. ``secret`` (at least 16 bytes, the
    same in every worker and host, as for ``DPoPNonces``) prefixes each entry with an
    HMAC-SHA256 of its key and value: an entry without a valid one (written by anyone
    without the secret, or copied from another key) is a miss, counted in ``rejected``.
    Without it, give Redis the protection you give the replay store.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "oauthguard:introspection:",
        secret: str | bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._secret = _secret(secret)
        if self._secret is None:
            logger.warning(
                "RedisIntrospectionCache without secret=: whoever can write to this Redis can "
                "write introspection answers the guard accepts; give every worker and host "
                "the same secret= (at least 16 bytes)"
            )
        self._overhead = 0 if self._secret is None else _MAC_BYTES
        self._clock = clock
        self._breaker = CircuitBreaker()
        self._down = False
        #: Calls that failed, and outages (a failure after a success, or the first one).
        self.failures = 0
        self.outages = 0
        #: Entries refused for a missing or wrong HMAC (with ``secret``).
        self.rejected = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "oauthguard:introspection:",
        secret: str | bytes | None = None,
        timeout: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> RedisIntrospectionCache:
        """A cache with its own connection pool; ``options`` go to ``redis.asyncio.from_url``.

        ``timeout`` bounds each call: past it, the token is introspected instead."""
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        client = redis.asyncio.from_url(url, **options)
        return cls(client, prefix=prefix, secret=secret, clock=clock)

    async def get(self, key: str) -> bytes | None:
        ticket = self._breaker.admit(self._clock())
        if not isinstance(ticket, Ticket):
            return None  # paused after failures: the authorization server answers
        try:
            # Inclusive end: one byte more than an entry may hold tells a larger one apart.
            end = MAX_ENTRY_BYTES + self._overhead
            # The bytes as stored, even from a client made with decode_responses=True: an
            # HMAC is no UTF-8, and decoding it would fail every read.
            data = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "GETRANGE", self.prefix + key, 0, end, **{NEVER_DECODE: True}
            )
        except ResponseError:  # Redis answered (a key of another type): a miss, no outage
            self._succeeded(ticket)
            return None
        except (RedisError, OSError) as exc:
            self._failed(ticket, exc)
            return None
        else:
            self._succeeded(ticket)
        finally:
            self._breaker.released(ticket)
        if not isinstance(data, bytes) or not data or len(data) > MAX_ENTRY_BYTES + self._overhead:
            return None  # absent (GETRANGE of no key is empty), or larger than we write
        return self._verified(key, data)

    def _verified(self, key: str, data: bytes) -> bytes | None:
        """The value of an entry whose HMAC is right (every entry, without ``secret``)."""
        if self._secret is None:
            return data
        mac, value = data[:_MAC_BYTES], data[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(key, value)):
            self.rejected += 1
            logger.warning(
                "the shared introspection cache holds an entry with a wrong HMAC (key %s...): "
                "ignored; is the same secret set everywhere, and Redis protected?",
                key[:12],
            )
            return None
        return value

    def _mac(self, key: str, value: bytes) -> bytes:
        assert self._secret is not None
        return hmac.new(self._secret, key.encode() + b"\0" + value, hashlib.sha256).digest()

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > MAX_ENTRY_BYTES:
            return
        if self._secret is not None:
            value = self._mac(key, value) + value
        ticket = self._breaker.admit(self._clock())
        if not isinstance(ticket, Ticket):
            return
        try:
            await self.client.set(self.prefix + key, value, px=max(1, math.ceil(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(ticket, exc)
        else:
            self._succeeded(ticket)
        finally:
            self._breaker.released(ticket)

    def _failed(self, ticket: Ticket, exc: BaseException) -> None:
        self.failures += 1
        self._breaker.failed(ticket, self._clock())  # no key: Redis fails for every token
        if not self._down:
            self._down = True
            self.outages += 1
            logger.warning(
                "the shared introspection cache (Redis) failed: %s: %s; tokens are "
                "introspected without it until it answers again",
                type(exc).__name__,
                exc,
            )

    def _succeeded(self, ticket: Ticket) -> None:
        self._breaker.succeeded(ticket)
        if self._down:
            self._down = False
            logger.info("the shared introspection cache (Redis) answers again")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _secret(value: object) -> bytes | None:
    if value is None:
        return None
    key = value.encode() if isinstance(value, str) else value
    if not isinstance(key, bytes) or len(key) < 16:
        raise ConfigurationError(
            "RedisIntrospectionCache(secret=...) needs at least 16 bytes of secret, the same "
            "in every worker and host (for example from an environment variable), or None"
        )
    return key
