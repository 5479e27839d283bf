"""``Exchanger``: the token endpoint calls of a ``TokenExchange``, cached and shared.

An exchanged token is kept under a SHA-256 of the subject token and what was asked for,
until its expiry minus a margin (never past the subject token's own expiry, never longer
than the cache's time bound), in a cache bounded in size; concurrent identical calls share
one request (single-flight).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from oauthguard._exchange.answers import (
    DPoPSigner,
    ExchangedToken,
    ExchangeRefused,
    ExchangeUnavailable,
    error_answer,
    json_object,
    malformed,
    read_issued,
    transport_failure,
)
from oauthguard._exchange.requests import Target, entra_form, rfc8693_form
from oauthguard._http.breaker import CircuitBreaker, Ticket, retry_after
from oauthguard._http.cache import ExpiringCache
from oauthguard._http.client_auth import ClientAuthentication
from oauthguard._http.fetch import Fetched, UnreadableBody, fetch_document
from oauthguard._http.singleflight import SingleFlight
from oauthguard._verify.discovery import AuthorizationServers, Source
from oauthguard._verify.trust import (
    TENANT,
    TENANT_CACHE_SIZE,
    TENANT_CACHE_TTL,
    TENANT_SYNTAX,
)
from oauthguard._wire.errors import ConfigurationError, GuardError
from oauthguard._wire.redaction import token_digest

logger = logging.getLogger("oauthguard")

#: Where the actor token of a delegation comes from: a string, or a function giving one.
ActorSource = str | Callable[[], str | Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Policy:
    """What a ``TokenExchange``'s settings decide for every call."""

    flow: str  # "rfc8693" or "entra_obo"
    subject_token_type: str
    requested_token_type: str
    actor_token: ActorSource | None = field(repr=False)  # a token: never in a repr
    actor_token_type: str
    cache_margin: float
    cache_ttl: float
    timeout: float


def subject_parts(subject: object) -> tuple[str, Mapping[str, Any], float | None]:
    """The token string, claims and expiry of ``subject``: an ``oauthguard.AccessToken``
    (its ``raw``), the MCP SDK's ``AccessToken`` (its ``token``), or the token string."""
    if isinstance(subject, str):
        return subject, {}, None
    raw = getattr(subject, "raw", None) or getattr(subject, "token", None)
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError(
            f"token_for(subject=...) takes the AccessToken the guard validated (or the MCP "
            f"SDK's, or the token string); {type(subject).__name__} carries no token string"
        )
    claims = getattr(subject, "claims", None)
    expires = getattr(subject, "expires_at", None)
    return (
        raw,
        claims if isinstance(claims, Mapping) else {},
        float(expires) if isinstance(expires, (int, float)) else None,
    )


class _Breaker(CircuitBreaker):
    """The breaker of one token endpoint, and the failure that last opened it."""

    paused_by: ExchangeUnavailable | None = None


class Exchanger:
    """Exchanges subject tokens at one authorization server's token endpoint."""

    def __init__(
        self,
        policy: Policy,
        client: ClientAuthentication,
        *,
        source: Source | None,
        token_endpoint: str | None,
        dpop_key: DPoPSigner | None,
        cache_size: int,
        http_client: httpx.AsyncClient,
        clock: Callable[[], float],
        tenant_allowed: Callable[[str], bool] = lambda tenant: False,
    ) -> None:
        self.policy = policy
        self._tenant_allowed = tenant_allowed
        self._client = client
        self._source = source
        self._endpoint = token_endpoint
        self._dpop_key = dpop_key
        #: The HTTP client the requests are sent with.
        self.http = http_client
        self._clock = clock
        self._servers = AuthorizationServers(http_client, clock, timeout=policy.timeout)
        # A {tenant} issuer's metadata per tenant, bounded as the guard bounds their keys.
        self._tenant_servers: ExpiringCache[AuthorizationServers] = ExpiringCache(TENANT_CACHE_SIZE)
        self._cache: ExpiringCache[ExchangedToken] = ExpiringCache(cache_size)
        self._flight: SingleFlight[ExchangedToken] = SingleFlight()
        self._nonces: dict[str, str] = {}  # token endpoint -> its last DPoP-Nonce (RFC 9449 §8)
        # Failures of a token endpoint pause the exchanges there (oauthguard._http.breaker):
        # one breaker per endpoint, so one tenant's failing endpoint pauses no other tenant.
        self._breakers: ExpiringCache[_Breaker] = ExpiringCache(TENANT_CACHE_SIZE)
        #: How many requests were sent to the token endpoint.
        self.calls = 0

    async def token_for(self, subject: object, target: Target) -> ExchangedToken:
        """The exchanged token for ``subject`` and ``target``, from the cache when it is
        there; ``ExchangeRefused`` or ``ExchangeUnavailable`` otherwise."""
        raw, claims, subject_expiry = subject_parts(subject)
        actor = await self._actor()
        policy = self.policy
        key = target.cache_key(
            raw,
            policy.flow,
            policy.subject_token_type,
            policy.requested_token_type,
            "" if actor is None else hashlib.sha256(actor[0].encode()).hexdigest(),
        )
        cached = self._cache.get(key, self._clock())
        if cached is not None:
            return cached
        return await self._flight.run(
            key, lambda: self._exchange(raw, claims, subject_expiry, target, actor, key)
        )

    async def _actor(self) -> tuple[str, str] | None:
        source = self.policy.actor_token
        if source is None:
            return None
        token = source() if callable(source) else source
        if not isinstance(token, str):
            token = await token
        if not isinstance(token, str) or not token:
            raise ConfigurationError("TokenExchange(actor_token=...) gave no token string")
        return token, self.policy.actor_token_type

    async def _exchange(
        self,
        raw: str,
        claims: Mapping[str, Any],
        subject_expiry: float | None,
        target: Target,
        actor: tuple[str, str] | None,
        key: str,
    ) -> ExchangedToken:
        endpoint = await self.endpoint(claims)
        policy = self.policy
        if policy.flow == "entra_obo":
            form = entra_form(raw, target)
        else:
            form = rfc8693_form(
                raw, policy.subject_token_type, target, policy.requested_token_type, actor
            )
        exchanged = await self._call(endpoint, form, target, key, raw)
        now = self._clock()
        until = now + policy.cache_ttl
        if exchanged.expires_at is not None:
            until = min(until, exchanged.expires_at - policy.cache_margin)
        else:
            until = now  # no lifetime said: not kept, it could expire at any time
        if subject_expiry is not None:
            until = min(until, subject_expiry)
        self._cache.put(key, exchanged, until, now)
        logger.info(
            "exchanged token sha256:%s for %s at %s", token_digest(raw), target.named, endpoint
        )
        return exchanged

    async def _call(
        self, endpoint: str, form: list[tuple[str, str]], target: Target, key: str, raw: str
    ) -> ExchangedToken:
        """The token endpoint called with the breaker's leave (a 503 at once while it is
        open), the outcome told to it: a refusal is the service answering, a failure counts."""
        breaker = self._breaker_of(endpoint)
        ticket = self._admit(breaker)
        try:
            exchanged = await self._request(endpoint, form, target)
        except ExchangeUnavailable as failure:
            self._failed(breaker, ticket, failure, key, endpoint)
            self._log_failure(failure, raw, target, endpoint)
            raise
        except GuardError as failure:
            breaker.succeeded(ticket)  # the server answered, about this request
            self._log_failure(failure, raw, target, endpoint)
            raise
        else:
            breaker.succeeded(ticket)
        finally:
            breaker.released(ticket)  # cancelled: no word on the service
        return exchanged

    def _breaker_of(self, endpoint: str) -> _Breaker:
        now = self._clock()
        breaker = self._breakers.get(endpoint, now)
        if breaker is None:
            breaker = _Breaker(name="token_exchange")
            self._breakers.put(endpoint, breaker, now + TENANT_CACHE_TTL, now)
        return breaker

    def _admit(self, breaker: _Breaker) -> Ticket:
        admitted = breaker.admit(self._clock())
        if isinstance(admitted, Ticket):
            return admitted
        paused = breaker.paused_by
        raise ExchangeUnavailable(
            f"{paused.summary}, and exchanges are paused" if paused else "is paused",
            paused.reason if paused else "",
            paused.setting if paused else "",
            retry_after=retry_after(admitted),
        )

    def _failed(
        self,
        breaker: _Breaker,
        ticket: Ticket,
        failure: ExchangeUnavailable,
        key: str,
        endpoint: str,
    ) -> None:
        """Count a failure of the token endpoint; its 503 asks to wait out any pause."""
        now = self._clock()
        per_request = key if failure.per_request else None
        if breaker.failed(ticket, now, key=per_request, wait=failure.wait):
            breaker.paused_by = failure
            logger.warning(
                "token exchange at %s paused for %.1fs: exchanges get 503 until the token "
                "endpoint answers a probe",
                endpoint,
                breaker.wait(now),
            )
        failure.retry_after = max(failure.retry_after, retry_after(breaker.wait(now)))

    async def _request(
        self, endpoint: str, form: list[tuple[str, str]], target: Target
    ) -> ExchangedToken:
        """POST the form; one retry with the server's DPoP nonce when it asks (RFC 9449 §8)."""
        response = await self._post(endpoint, form)
        if (
            response.status_code == 400
            and self._dpop_key is not None
            and (json_object(response.body) or {}).get("error") == "use_dpop_nonce"
            and endpoint in self._nonces
        ):
            response = await self._post(endpoint, form)
        if response.status_code != 200:
            raise error_answer(response, target.named, self._clock())
        members = json_object(response.body)
        if members is None:
            raise malformed("the answer is not a JSON object")
        return read_issued(
            members,
            now=self._clock(),
            requested_scope=target.scope,
            issued_type_required=self.policy.flow == "rfc8693",
            dpop_key=self._dpop_key,
        )

    async def _post(self, endpoint: str, form: list[tuple[str, str]]) -> Fetched:
        fields: dict[str, Any] = {}
        for name, value in form:
            fields.setdefault(name, []).append(value)
        credentials: dict[str, str] = {}
        headers: dict[str, str] = {}
        # RFC 7523 §3 and RFC 9449 §4.2: the assertion's aud and the proof's htu name the
        # endpoint as the issuer does, also when it is reached at an internal URL.
        public = self._source.public_of(endpoint) if self._source is not None else endpoint
        self._client.apply(credentials, headers, public)  # RFC 8693 §2.1: as at /token
        fields.update(credentials)
        if self._dpop_key is not None:  # RFC 9449 §5: a proof of the key to bind to
            headers["dpop"] = self._dpop_key.proof("POST", public, nonce=self._nonces.get(endpoint))
        self.calls += 1
        try:
            response = await fetch_document(
                self.http,
                endpoint,
                timeout=self.policy.timeout,
                form=fields,
                headers=headers,
                read_statuses=(200, 400, 401, 403),
            )
        except httpx.HTTPError as exc:
            raise transport_failure(exc, self.policy.timeout) from None
        except UnreadableBody as exc:
            raise ExchangeUnavailable(
                "sent a response we cannot read", str(exc), per_request=True
            ) from None
        nonce = response.headers.get("dpop-nonce")
        if nonce and self._dpop_key is not None and len(nonce) <= 512 and nonce.isprintable():
            self._nonces[endpoint] = nonce  # one per endpoint: bounded by the settings
        return response

    async def endpoint(self, claims: Mapping[str, Any]) -> str:
        """The token endpoint: given, or the issuer's (RFC 8414 §2 ``token_endpoint``); for a
        multi-tenant Entra issuer, the tenant of the subject token (its ``tid``)."""
        if self._endpoint is not None:
            return self._endpoint
        source = self._source
        if source is None:  # the settings give one or the other
            raise ConfigurationError("TokenExchange needs an issuer or token_endpoint=")
        servers = self._servers
        if TENANT in source.issuer:
            tid = self._tenant_of(claims)
            source = Source(
                source.issuer.replace(TENANT, tid),
                source.internal,
                source.discovery,
                source.allow_http,
            )
            servers = self._servers_of(tid)
        document = await servers.get(source)
        endpoint = document.get("token_endpoint")
        if not isinstance(endpoint, str) or not source.usable(endpoint):
            raise ExchangeUnavailable(
                "is not named in the issuer's metadata",
                f"the metadata of {source.issuer} has no usable token_endpoint",
            )
        return endpoint

    def _tenant_of(self, claims: Mapping[str, Any]) -> str:
        """The tenant of a multi-tenant issuer's token (its ``tid``), if the issuer's."""
        tid = claims.get("tid")
        if not isinstance(tid, str) or not TENANT_SYNTAX.fullmatch(tid):
            raise ExchangeRefused(
                "invalid_request", "the token names no tenant (tid) to exchange it in"
            )
        if not self._tenant_allowed(tid):  # the issuer's tenants=, as the guard checks
            raise ExchangeRefused(
                "invalid_request", "the token's tenant (tid) is not one of the issuer's"
            )
        return tid

    def _servers_of(self, tenant: str) -> AuthorizationServers:
        now = self._clock()
        servers = self._tenant_servers.get(tenant, now)
        if servers is None:
            servers = AuthorizationServers(self.http, self._clock, timeout=self.policy.timeout)
            self._tenant_servers.put(tenant, servers, now + TENANT_CACHE_TTL, now)
        return servers

    def _log_failure(self, failure: GuardError, raw: str, target: Target, endpoint: str) -> None:
        if isinstance(failure, ExchangeUnavailable):
            logger.warning(
                "token exchange at %s failed for token sha256:%s: %s; check %s",
                endpoint,
                token_digest(raw),
                failure.reason,
                failure.setting,
            )
        else:
            logger.info(
                "token exchange at %s for %s refused (token sha256:%s): %s",
                endpoint,
                target.named,
                token_digest(raw),
                failure.description,
            )

    def cache_keys(self) -> list[str]:
        """The keys of the tokens in the cache (SHA-256 digests, never a token)."""
        return [str(key) for key in self._cache.keys]

    def clear(self) -> None:
        """Forget every exchanged token (the cache)."""
        self._cache.clear()
