"""What a resource server does at startup, and what it answers a readiness check."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import anyio

from oauthguard._core.settings import DPoP
from oauthguard._verify.keys import KeySet
from oauthguard._wire.errors import StartupError

logger = logging.getLogger("oauthguard")


def warn_unsafe_defaults(dpop: DPoP) -> None:
    """One WARNING for a default that is safe in one process only: DPoP proofs recorded in
    this process's memory (RFC 9449 §11.1), which a proof replayed to another worker or
    host would pass."""
    if dpop.mode != "disabled" and dpop.replay_store is None:
        logger.warning(
            "DPoP is %s and no replay_store is given: proofs are recorded in this process's "
            "memory, which protects one process only. With several workers or hosts use "
            "DPoP(replay_store=oauthguard.redis.RedisReplayStore.from_url(...)); with one, "
            "pass DPoP(replay_store=oauthguard.MemoryReplayStore()) to say so",
            dpop.mode,
        )


async def warm_key_sets(
    key_sets: Iterable[KeySet], seconds: float, level: int = logging.WARNING
) -> list[KeySet]:
    """Fetch every key set at once, for at most ``seconds``; those that got keys. Failures
    are logged at ``level``, never raised."""
    fetched: list[KeySet] = []

    async def warm_one(key_set: KeySet) -> None:
        try:
            await key_set.warm()
        except Exception as exc:
            logger.log(level, "could not warm the keys of %s: %s", key_set.issuer, exc)
        else:
            fetched.append(key_set)

    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tasks:
            for key_set in key_sets:
                tasks.start_soon(warm_one, key_set)
    return fetched


def require_some_keys(key_sets: list[KeySet], fetched: list[KeySet]) -> None:
    """``JWT(require_keys_at_startup=True)``: ``StartupError`` when there were key sets to
    fetch and none came."""
    if key_sets and not fetched:
        raise StartupError(
            f"no issuer's signing keys could be fetched at startup (of {len(key_sets)} "
            "issuers); JWT(require_keys_at_startup=True) stops the server here (see the "
            "warnings above for each issuer)"
        )


async def keys_ready(key_sets: list[KeySet], clock: Callable[[], float], seconds: float) -> bool:
    """Every key set has keys in hand; those that have none are fetched first (for at most
    ``seconds``, each issuer asked no more often than its cooldown allows), so that a
    server that is not ready, and gets no traffic for it, still becomes ready."""
    now = clock()
    missing = [key_set for key_set in key_sets if not key_set.usable(now)]
    if missing:
        await warm_key_sets(missing, seconds, logging.DEBUG)  # KeySet logs its failures
    now = clock()
    return all(key_set.usable(now) for key_set in key_sets)
