"""Introspection answers shared by every worker and host (``Introspection(shared_cache=)``).

The ``IntrospectionCache`` protocol, its bounded in-memory implementation, the key an answer
is kept under and the one form it is written in. A shared store is outside this process, so
what it gives back is read as untrusted input: bounded in size, parsed strictly, and any
entry that is not exactly what this module writes is a miss (the token is introspected
again), never an answer. ``oauthguard.redis.RedisIntrospectionCache`` is the Redis one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, runtime_checkable

from oauthguard._http.cache import ExpiringCache
from oauthguard._wire.errors import ConfigurationError

#: The largest entry written or read back (an answer's members, as compact JSON).
MAX_ENTRY_BYTES = 64 * 1024
_VERSION = 1
_MEMBERS = frozenset({"v", "until", "members"})


@runtime_checkable
class IntrospectionCache(Protocol):
    """Where introspection answers are shared between processes.

    ``get(key)`` returns the bytes last stored under ``key`` and not expired, or None;
    ``put(key, value, ttl)`` stores ``value`` for ``ttl`` seconds. Keys are SHA-256 hex
    digests (of the token with the introspection endpoint and client, never the token);
    values are at most ``MAX_ENTRY_BYTES`` (64 KiB). A store that cannot be reached answers
    None and stores nothing: the token is then introspected, as without a shared cache.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...


class MemoryIntrospectionCache:
    """An ``IntrospectionCache`` in this process's memory: ``max_entries`` at most, each
    until its ``ttl`` runs out. It shares answers between the ``ResourceServer`` objects of
    one process; several processes need a store they all reach (Redis)."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: ExpiringCache[bytes] = ExpiringCache(max_entries)
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        return self._entries.get(key, self._clock())

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        now = self._clock()
        self._entries.put(key, value, now + ttl, now)

    def __len__(self) -> int:
        return len(self._entries)


def check_shared_cache(value: object) -> IntrospectionCache | None:
    """``Introspection(shared_cache=)``: None, or an object with async ``get`` and ``put``."""
    if value is None or isinstance(value, IntrospectionCache):
        return value
    raise ConfigurationError(
        "Introspection(shared_cache=...) must have async get(key) and put(key, value, ttl) "
        "methods (an IntrospectionCache), for example "
        "oauthguard.redis.RedisIntrospectionCache.from_url('redis://...')"
    )


def namespace(where: str, client_id: str) -> bytes:
    """What separates the answers of one introspection endpoint and client from another's:
    two resource servers sharing one store never read each other's answers."""
    return b"oauthguard introspection v1\0%s\0%s\0" % (where.encode(), client_id.encode())


def shared_key(space: bytes, token: str) -> str:
    """The key of ``token``'s answer: a SHA-256 of the namespace and the token."""
    return hashlib.sha256(space + token.encode()).hexdigest()


def encode_entry(members: Mapping[str, Any], until: float) -> bytes | None:
    """An answer's members and when it stops being usable (seconds since the epoch), as
    compact ASCII JSON; None when it cannot be written or is larger than the limit."""
    try:
        text = json.dumps(
            {"v": _VERSION, "until": until, "members": members},
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError, RecursionError):
        return None
    data = text.encode("ascii")  # ensure_ascii (the default): nothing else is written
    return data if len(data) <= MAX_ENTRY_BYTES else None


def decode_entry(data: object, now: float) -> tuple[dict[str, Any], float] | None:
    """The members and ``until`` of an entry this module wrote and that is still usable at
    ``now``; None for anything else: too large, not ASCII, not JSON, a repeated member, a
    number JSON does not have, another shape or version, an expired or unreadable time."""
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_ENTRY_BYTES:
        return None
    try:
        document = json.loads(
            data.decode("ascii"), object_pairs_hook=_unique, parse_constant=_not_json
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(document, dict) or document.keys() != _MEMBERS:
        return None
    version, until, members = document["v"], document["until"], document["members"]
    if type(version) is not int or version != _VERSION:
        return None
    if type(until) not in (int, float) or not math.isfinite(until) or until <= now:
        return None
    # RFC 7662 §2.2: active is a boolean in every answer.
    if not isinstance(members, dict) or not isinstance(members.get("active"), bool):
        return None
    return members, float(until)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a member is repeated")
    return document


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")
