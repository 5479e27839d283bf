"""``TokenExchange``: the settings of a token exchange, validated when built, and its calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from oauthguard._core.issuer import Issuer
from oauthguard._exchange.answers import DPoPSigner, ExchangedToken
from oauthguard._exchange.client import ActorSource, Exchanger, Policy
from oauthguard._exchange.requests import Target, token_type
from oauthguard._http.client_auth import (
    AUTH_METHODS,
    ClientAuthentication,
    SigningKey,
    client_credentials,
)
from oauthguard._http.urls import INSECURE_HTTP, fetchable
from oauthguard._verify.discovery import Source
from oauthguard._wire.config import seconds
from oauthguard._wire.errors import ConfigurationError

logger = logging.getLogger("oauthguard")


@dataclass(frozen=True, kw_only=True)
class TokenExchange:
    """Exchanges the token a caller sent for one meant for a downstream API (RFC 8693).

    ``issuer``: the authorization server, a URL or an ``Issuer`` (a ``providers`` preset),
    whose metadata names the token endpoint (RFC 8414 §2); or give ``token_endpoint``
    itself. ``providers.entra(...)`` exchanges with Entra's on-behalf-of flow instead of
    RFC 8693, the same call (a multi-tenant preset in the tenant of the caller's ``tid``).
    The exchange authenticates as ``client_id`` like ``Introspection``: ``auth_method``
    ``client_secret_basic`` or ``client_secret_post`` with ``client_secret``, or
    ``private_key_jwt`` with ``private_key`` (a ``cryptography`` key, PEM or JWK).

    ``subject_token_type`` is how the caller's token is described (``"access_token"`` or
    ``"jwt"``), ``requested_token_type`` what is asked for (RFC 8693 §3). ``actor_token``
    (a string, or a function, maybe async, giving one; ``actor_token_type`` its type) asks
    for a delegated token naming that actor (RFC 8693 §4.1 ``act``). ``dpop_key`` (an
    object with ``proof(method, url, token=, nonce=)``, such as
    ``oauthguard.testing.DPoPKey``) asks for DPoP-bound tokens (RFC 9449 §5); the exchanged
    token keeps the key for its downstream proofs.

    Exchanged tokens are cached per subject token, target, scope and requested type (under
    a SHA-256, never the token itself), at most ``cache_size`` of them, each until its
    expiry minus ``cache_margin`` seconds and at most ``cache_ttl`` seconds; concurrent
    identical calls share one request. ``timeout`` bounds each request. ``http_client`` and
    ``clock`` are injected collaborators (a client made here is closed by ``aclose()``).
    """

    issuer: str | Issuer | None = field(default=None, kw_only=False)
    token_endpoint: str | None = None
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: Any = field(default=None, repr=False)
    auth_method: str = "client_secret_basic"
    subject_token_type: str = "access_token"
    requested_token_type: str = "access_token"
    actor_token: ActorSource | None = field(default=None, repr=False)
    actor_token_type: str = "access_token"
    dpop_key: DPoPSigner | None = field(default=None, repr=False)
    cache_size: int = 1000
    cache_margin: float = 30
    cache_ttl: float = 3600
    timeout: float = 5
    http_client: httpx.AsyncClient | None = field(default=None, repr=False, compare=False)
    clock: Callable[[], float] | None = field(default=None, repr=False, compare=False)
    signing_key: SigningKey | None = field(init=False, default=None, repr=False, compare=False)
    exchanger: Exchanger = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        source = self._check_target()
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ConfigurationError("TokenExchange(client_id=...) must be a non-empty string")
        if self.auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"TokenExchange(auth_method=...) must be one of {', '.join(AUTH_METHODS)}; "
                f"got {self.auth_method!r}"
            )
        self._check_credentials()
        subject_type, requested_type, actor_type = (
            token_type(name, getattr(self, name))
            for name in ("subject_token_type", "requested_token_type", "actor_token_type")
        )
        self._check_collaborators()
        clock = self.clock or time.time
        policy = Policy(
            self._flow(),
            subject_type,
            requested_type,
            self.actor_token,
            actor_type,
            self.cache_margin,
            self.cache_ttl,
            self.timeout,
        )
        client = ClientAuthentication(
            self.auth_method,
            self.client_id,
            client_secret=self.client_secret,
            signing_key=self.signing_key,
            clock=clock,
            settings="TokenExchange",
        )
        exchanger = Exchanger(
            policy,
            client,
            source=source,
            token_endpoint=self.token_endpoint,
            dpop_key=self.dpop_key,
            cache_size=self.cache_size,
            http_client=self.http_client or httpx.AsyncClient(timeout=self.timeout),
            clock=clock,
            tenant_allowed=self._tenant_check(),
        )
        object.__setattr__(self, "exchanger", exchanger)

    def _tenant_check(self) -> Callable[[str], bool]:
        """Which tenants a ``{tenant}`` issuer exchanges in: its ``tenants=``."""
        tenants = self.issuer.tenants if isinstance(self.issuer, Issuer) else None
        if tenants is None:
            return lambda tenant: False
        if callable(tenants):
            judge = tenants

            def allowed_by_function(tenant: str) -> bool:
                try:
                    return judge(tenant) is True
                except Exception:  # fail closed, as the guard does for the same function
                    logger.exception("Issuer(tenants=...) failed for the tenant %r", tenant)
                    return False

            return allowed_by_function
        allowed = frozenset(tenants)
        return allowed.__contains__

    def _check_collaborators(self) -> None:
        """The actor token, DPoP key, cache bounds, timeout and clock."""
        actor = self.actor_token
        if not (actor is None or isinstance(actor, str) or callable(actor)):
            raise ConfigurationError(
                "TokenExchange(actor_token=...) must be a token string or a function giving one"
            )
        if self.dpop_key is not None and not callable(getattr(self.dpop_key, "proof", None)):
            raise ConfigurationError(
                "TokenExchange(dpop_key=...) must make DPoP proofs: proof(method, url, token=, "
                "nonce=), as oauthguard.testing.DPoPKey does"
            )
        size = self.cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigurationError("TokenExchange(cache_size=...) must be a non-negative integer")
        seconds("TokenExchange(cache_margin=...)", self.cache_margin, finite=True)
        seconds("TokenExchange(cache_ttl=...)", self.cache_ttl, finite=True)
        seconds("TokenExchange(timeout=...)", self.timeout, positive=True, finite=True)
        if self.clock is not None and not callable(self.clock):
            raise ConfigurationError("TokenExchange(clock=...) must be a function giving seconds")

    def _check_target(self) -> Source | None:
        """The issuer whose metadata names the token endpoint, or the endpoint itself."""
        endpoint = self.token_endpoint
        if endpoint is not None and not (isinstance(endpoint, str) and fetchable(endpoint)):
            raise ConfigurationError(
                f"TokenExchange(token_endpoint=...) must be an https URL, got "
                f"{self.token_endpoint!r} (http only on loopback, or with {INSECURE_HTTP}=1)"
            )
        issuer = self.issuer
        if issuer is None:
            if self.token_endpoint is None:
                raise ConfigurationError(
                    "TokenExchange needs the issuer (its metadata names the token endpoint) "
                    "or token_endpoint="
                )
            return None
        if isinstance(issuer, tuple):
            raise ConfigurationError(
                "TokenExchange(issuer=...) takes one Issuer: for providers.entra(versions=(1, "
                "2)) give the v2.0 one, its [0]"
            )
        if isinstance(issuer, str):
            issuer = Issuer(issuer)
        if not isinstance(issuer, Issuer):
            raise ConfigurationError(
                f"TokenExchange(issuer=...) must be an issuer URL or an Issuer, got "
                f"{type(issuer).__name__}"
            )
        object.__setattr__(self, "issuer", issuer)
        if issuer.is_template and issuer.token_exchange != "entra_obo" and not self.token_endpoint:
            raise ConfigurationError(
                f"TokenExchange: the issuer {issuer.url!r} holds {{tenant}}; give token_endpoint="
            )
        return Source(issuer.url, issuer.internal_url, issuer.discovery, issuer.http_allowed)

    def _flow(self) -> str:
        flow = self.issuer.token_exchange if isinstance(self.issuer, Issuer) else "rfc8693"
        if flow == "entra_obo" and (self.dpop_key is not None or self.actor_token is not None):
            raise ConfigurationError(
                "TokenExchange with an Entra issuer: its on-behalf-of flow binds no DPoP key "
                "and takes no actor_token; leave dpop_key= and actor_token= out"
            )
        return flow

    def _check_credentials(self) -> None:
        key = client_credentials(
            "TokenExchange", self.auth_method, self.client_secret, self.private_key
        )
        object.__setattr__(self, "signing_key", key)

    async def token_for(
        self,
        subject: object,
        *,
        resource: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        scope: str | Iterable[str] | None = None,
    ) -> ExchangedToken:
        """A token for the downstream API ``resource`` (RFC 8707) or ``audience``, with
        ``scope``, on behalf of ``subject``: the ``AccessToken`` the guard validated
        (``request.auth``; inside an MCP tool the one ``get_access_token()`` returns).

        Raises ``ExchangeRefused`` (a 403 with the server's ``error``) when the server
        refuses, ``TemporarilyUnavailable`` (a 503) when no answer can be had.
        """
        return await self.exchanger.token_for(subject, Target.of(resource, audience, scope))

    @property
    def calls(self) -> int:
        """How many requests were sent to the token endpoint."""
        return self.exchanger.calls

    async def aclose(self) -> None:
        """Close the HTTP client, if this exchange made it."""
        if self.http_client is None:
            await self.exchanger.http.aclose()

    async def __aenter__(self) -> TokenExchange:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
