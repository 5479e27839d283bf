"""The ``Introspection`` settings group: how opaque tokens are introspected (RFC 7662)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oauthguard._http.client_auth import AUTH_METHODS, SigningKey, client_credentials
from oauthguard._http.urls import INSECURE_HTTP, fetchable
from oauthguard._introspection.shared import IntrospectionCache, check_shared_cache
from oauthguard._wire.config import seconds
from oauthguard._wire.errors import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class Introspection:
    """How to introspect opaque access tokens (RFC 7662), for ``OAuthGuard(introspection=)``.

    ``endpoint`` defaults to the ``introspection_endpoint`` in the authorization server's
    metadata. The resource server authenticates as ``client_id`` with ``auth_method``:
    ``client_secret_basic`` or ``client_secret_post`` (with ``client_secret``) or
    ``private_key_jwt`` (with ``private_key``: a ``cryptography`` private key, PEM or JWK).
    Active results are cached until the token's ``exp`` but at most ``cache_ttl`` seconds
    (the delay after which a revocation is seen), inactive ones ``negative_cache_ttl``.
    ``require_aud=True`` refuses active responses without ``aud`` (RFC 7662 makes it
    optional), ``False`` accepts them; ``None`` leaves it to where the settings are used:
    ``OAuthGuard`` accepts them, ``oauthguard.mcp.protect()`` and
    ``oauthguard.mcp.MCPTokenVerifier`` refuse them (MCP servers must check that a token was
    issued for them). ``jwt_response`` asks for RFC 9701 signed responses and verifies them
    with the issuer's keys. ``token_format="auto"`` verifies JWTs locally and introspects
    the other tokens; ``"opaque"`` introspects every token. ``cache_size`` bounds each of
    this process's caches (of active and of inactive answers). ``shared_cache`` (an
    ``IntrospectionCache``, such as ``oauthguard.redis.RedisIntrospectionCache``) shares the
    answers with every worker and host, behind this process's caches: a token is then
    introspected once for all of them, each answer kept for the same times as here (counted
    from the first introspection) and checked again by every process that reads it.
    """

    endpoint: str | None = None
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: Any = field(default=None, repr=False)
    auth_method: str = "client_secret_basic"
    cache_ttl: float = 60
    negative_cache_ttl: float = 5
    cache_size: int = 10_000
    timeout: float = 5
    require_aud: bool | None = None
    jwt_response: bool = False
    token_format: str = "auto"
    shared_cache: IntrospectionCache | None = field(default=None, repr=False, compare=False)
    signing_key: SigningKey | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.endpoint is not None and not (
            isinstance(self.endpoint, str) and fetchable(self.endpoint)
        ):
            raise ConfigurationError(
                f"Introspection(endpoint=...) must be an https URL, got {self.endpoint!r} "
                f"(http only on loopback, or on any host with {INSECURE_HTTP}=1)"
            )
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ConfigurationError("Introspection(client_id=...) must be a non-empty string")
        if self.auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"Introspection(auth_method=...) must be one of "
                f"{', '.join(AUTH_METHODS)}; got {self.auth_method!r}"
            )
        self._check_credentials()
        if self.token_format not in ("auto", "opaque"):
            raise ConfigurationError(
                "Introspection(token_format=...) must be 'auto' (JWTs checked here, other "
                f"tokens introspected) or 'opaque' (every token introspected); got "
                f"{self.token_format!r}"
            )
        seconds("Introspection(cache_ttl=...)", self.cache_ttl, finite=True)
        seconds("Introspection(negative_cache_ttl=...)", self.negative_cache_ttl, finite=True)
        seconds("Introspection(timeout=...)", self.timeout, positive=True, finite=True)
        if self.require_aud is not None and not isinstance(self.require_aud, bool):
            raise ConfigurationError(
                "Introspection(require_aud=...) must be True, False or "
                f"None; got {self.require_aud!r}"
            )
        if (
            isinstance(self.cache_size, bool)
            or not isinstance(self.cache_size, int)
            or self.cache_size < 0
        ):
            raise ConfigurationError("Introspection(cache_size=...) must be a non-negative integer")
        check_shared_cache(self.shared_cache)

    def _check_credentials(self) -> None:
        key = client_credentials(
            "Introspection", self.auth_method, self.client_secret, self.private_key
        )
        object.__setattr__(self, "signing_key", key)
