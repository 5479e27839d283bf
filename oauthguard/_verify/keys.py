"""``KeySet``: one issuer's signing keys, fetched from its JWKS and cached.

TTL from ``Cache-Control`` within bounds, an immediate refetch on an unknown ``kid`` and at
most one per cooldown after that, last good keys served while the JWKS is failing, and one
fetch shared by concurrent requests.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from oauthguard._http.fetch import FetchFailed, fetch_json
from oauthguard._http.singleflight import SingleFlight
from oauthguard._http.urls import https_or_loopback
from oauthguard._jose.jwk import public_key
from oauthguard._telemetry import TELEMETRY
from oauthguard._verify.discovery import AuthorizationServers, Source
from oauthguard._wire.errors import TemporarilyUnavailable

logger = logging.getLogger("oauthguard")

MIN_TTL, MAX_TTL = 60.0, 86400.0
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)")

# RFC 7518 §3.1 / RFC 8037 §3.1: the key type (and curve) each algorithm needs.
KEY_TYPES: Mapping[str, tuple[str, frozenset[str | None]]] = {
    **{f"{p}{n}": ("RSA", frozenset({None})) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
}


@dataclass(frozen=True, slots=True)
class Key:
    """One usable public verification key from a JWKS."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    public_key: Any
    #: Every algorithm the key fits (read on each fresh token: a set lookup in C).
    algorithms: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fitting = frozenset(alg for alg in KEY_TYPES if self._fits(alg))
        object.__setattr__(self, "algorithms", fitting)

    def fits(self, alg: str) -> bool:
        """RFC 8725 §3.1: the algorithm matches the key's type, curve and declared ``alg``."""
        return alg in self.algorithms

    def _fits(self, alg: str) -> bool:
        expected = KEY_TYPES[alg]
        if self.kty != expected[0] or self.crv not in expected[1]:
            return False
        return self.alg is None or self.alg == alg


def parse_jwk(jwk: Mapping[str, Any]) -> Key:
    """A public ``Key`` from one JWK; ``ValueError`` for symmetric, private, unusable or bad
    keys, and for RSA keys outside the bounds of ``_jwk`` (``WeakKey``)."""
    kty = jwk.get("kty")
    use, ops = jwk.get("use"), jwk.get("key_ops")
    if use not in (None, "sig"):
        raise ValueError(f"use is {use!r}, not 'sig'")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("key_ops does not allow 'verify'")
    kid, alg, crv = jwk.get("kid"), jwk.get("alg"), jwk.get("crv")
    if not all(isinstance(v, (str, type(None))) for v in (kid, alg, crv)):
        raise ValueError("kid, alg and crv must be strings")
    key = public_key(jwk)
    return Key(kid, str(kty), None if kty == "RSA" else crv, alg, key)


def parse_jwks(document: Any) -> list[Key]:
    """Every usable key of a JWKS; invalid individual keys are skipped and logged."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: no 'keys' array")
    keys = []
    for index, jwk in enumerate(document["keys"]):
        try:
            if not isinstance(jwk, dict):
                raise ValueError("not a JSON object")
            keys.append(parse_jwk(jwk))
        except Exception as exc:  # any malformed key is skipped, never fatal
            logger.warning(
                "skipping JWKS key #%d (kid=%r): %s",
                index,
                jwk.get("kid") if isinstance(jwk, dict) else None,
                exc,
            )
    return keys


def cache_ttl(headers: httpx.Headers, default: float) -> float:
    """Seconds to keep a JWKS: ``Cache-Control: max-age`` if given, clamped to [60, 86400]."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    ttl = float(match.group(1)) if match else default
    return min(max(ttl, MIN_TTL), MAX_TTL)


class KeySet:
    """The signing keys of one issuer."""

    def __init__(
        self,
        issuer: str,
        http_client: httpx.AsyncClient,
        clock: Callable[[], float],
        servers: AuthorizationServers,
        *,
        jwks_uri: str | None = None,
        source: Source | None = None,
        cache_ttl: float = 600,
        refresh_cooldown: float = 30,
        max_stale: float = 86400,
        timeout: float = 5.0,
        on_keys_removed: Callable[[], None] | None = None,
    ) -> None:
        self.issuer = issuer
        self._http = http_client
        self._clock = clock
        self._servers = servers
        #: Where the issuer's metadata and keys are fetched from (``Source``).
        self.source = source or Source(issuer)
        self._jwks_uri = None if jwks_uri is None else self.source.fetched_at(jwks_uri)
        self._default_ttl = cache_ttl
        self._cooldown = refresh_cooldown
        self._max_stale = max_stale
        self._timeout = timeout
        self._on_keys_removed = on_keys_removed
        self._by_kid: dict[str | None, list[Key]] | None = None
        self._all: list[Key] = []
        #: When the keys are due to be fetched again (0 before the first fetch).
        self.fresh_until = 0.0
        self._usable_until = 0.0
        self._last_miss_refresh: float | None = None
        self._failed_at: float | None = None
        self._flight: SingleFlight[None] = SingleFlight()
        #: How many times the JWKS was fetched (successfully or not).
        self.fetches = 0

    def cached(self, kid: str | None) -> list[Key] | None:
        """Keys for ``kid`` from a fresh cache without any I/O, or None."""
        by_kid = self._by_kid
        if by_kid is None or self._clock() >= self.fresh_until:
            return None
        return (self._all if kid is None else by_kid.get(kid)) or None  # _select's reading

    async def get(self, kid: str | None) -> list[Key]:
        """Candidate keys for ``kid`` (all keys when the token has none); may fetch.

        An unknown ``kid`` is ``[]`` once the JWKS was fetched and lacks it, but
        ``TemporarilyUnavailable`` while the last fetch failed: the kid may belong to a key
        the issuer rotated in, and a 401 would make the client discard a good token.
        """
        now = self._clock()
        if self._by_kid is None or now >= self.fresh_until:
            await self._refresh_or_stale(now)
        elif not self._select(kid) and kid is not None:
            if self._may_refetch_for_miss(now):
                # An unknown kid usually means the issuer rotated: refetch now, then rate-limit.
                self._last_miss_refresh = now
                await self._refresh_or_stale(now)
            else:  # a refetch under way may be bringing this very kid
                await self._flight.wait("jwks")
        found = self._select(kid)
        if not found and self._failed_at is not None:
            wait = self._failed_at + self._cooldown - now
            raise TemporarilyUnavailable(
                f"the signing keys of {self.issuer} cannot be fetched to look for the token's kid",
                retry_after=max(1, math.ceil(wait)),
            )
        return found

    def _may_refetch_for_miss(self, now: float) -> bool:
        last = self._last_miss_refresh
        return last is None or now - last >= self._cooldown

    def usable(self, now: float) -> bool:
        """Whether keys are in hand at ``now`` (fresh, or stale but still within
        ``max_stale``)."""
        return self._by_kid is not None and now < self._usable_until

    async def warm(self) -> None:
        """Fetch the keys now (on startup); raises ``TemporarilyUnavailable`` on failure."""
        await self._refresh_or_stale(self._clock())

    def _select(self, kid: str | None) -> list[Key]:
        if self._by_kid is None:
            return []
        return self._all if kid is None else self._by_kid.get(kid, [])

    async def _refresh_or_stale(self, now: float) -> None:
        if self._failed_at is not None and not self.usable(now):
            wait = self._failed_at + self._cooldown - now
            # A failing issuer is asked at most once per cooldown, with no keys ever or with
            # only keys past max_stale: else every request (or readiness check) is a fetch.
            if wait > 0:
                raise TemporarilyUnavailable(
                    f"the signing keys of {self.issuer} cannot be fetched",
                    retry_after=math.ceil(wait),
                )
        try:
            await self._flight.run("jwks", self._fetch)
        except TemporarilyUnavailable:
            self._failed_at = now
            if self._by_kid is None or now >= self._usable_until:
                raise
            # Serve the last good keys; try again after the cooldown, not on every request.
            self.fresh_until = min(now + self._cooldown, self._usable_until)

    async def _fetch(self) -> None:
        """Fetch the keys (once, for every caller waiting on the single flight), the
        result counted: ok, failed, or stale when the last good keys are served instead."""
        metrics = TELEMETRY.refresh()
        try:
            await self._fetch_keys()
        except TemporarilyUnavailable:
            if metrics is not None:
                now = self._clock()
                stale = self._by_kid is not None and now < self._usable_until
                metrics.jwks_fetch("stale" if stale else "failed", self.issuer)
            raise
        if metrics is not None:
            metrics.jwks_fetch("ok", self.issuer)

    async def _fetch_keys(self) -> None:
        uri = self._jwks_uri or await self._discovered_jwks_uri()
        self.fetches += 1
        try:
            document, headers = await fetch_json(
                self._http, uri, timeout=self._timeout, span="oauthguard jwks", issuer=self.issuer
            )
            keys = parse_jwks(document)
        except (FetchFailed, ValueError) as exc:
            raise self._failure(uri, str(exc)) from None
        if not keys:
            # Nothing usable is a broken JWKS, not a rotation to no keys: keep the last good.
            raise self._failure(uri, "the JWKS has no usable signing key")
        now = self._clock()
        ttl = cache_ttl(headers, self._default_ttl)
        by_kid: dict[str | None, list[Key]] = {}
        for key in keys:
            by_kid.setdefault(key.kid, []).append(key)
        removed = [key.kid for key in self._all if key not in keys]
        self._by_kid, self._all = by_kid, keys
        if removed:
            # A key left the JWKS (rotation, or revocation of a compromised key): what it
            # verified before must not outlive it in any cache.
            logger.info("keys %s of %s left its JWKS", removed, self.issuer)
            if TELEMETRY.metrics is not None:
                TELEMETRY.metrics.keys_removed(len(removed), self.issuer)
            if self._on_keys_removed is not None:
                self._on_keys_removed()
        self._failed_at = None
        self.fresh_until = now + ttl
        self._usable_until = now + ttl + self._max_stale
        logger.info("fetched %d keys of %s from %s (ttl %ds)", len(keys), self.issuer, uri, ttl)

    async def _discovered_jwks_uri(self) -> str:
        document = await self._servers.get(self.source)
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise TemporarilyUnavailable(f"the metadata of {self.issuer} has no jwks_uri")
        return uri

    def _failure(self, uri: str, reason: str) -> TemporarilyUnavailable:
        logger.warning("cannot fetch the JWKS of %s from %s: %s", self.issuer, uri, reason)
        return TemporarilyUnavailable(
            f"the signing keys of {self.issuer} cannot be fetched",
            retry_after=max(1, math.ceil(self._cooldown)),
        )


def check_jwks_uri(uri: str) -> bool:
    """A JWKS URL we are willing to fetch: https, or http on loopback."""
    return https_or_loopback(uri)
