"""``ResourceServer``: every check of an OAuth 2 resource server, without ASGI.

It owns the settings, the HTTP client, discovery, the issuers' key sets, the token verifier,
the DPoP checker and the one cache of verified tokens. ``OAuthGuard`` is its ASGI adapter;
any other code (a WebSocket message handler, a queue consumer, another framework) calls
``authenticate`` or ``verify`` directly.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from oauthguard._core.directory import DirectoryBuilder, default_rules
from oauthguard._core.issuer import Issuer, IssuerEntry, issuers, warn_insecure
from oauthguard._core.requests import (
    Authenticated,
    Headers,
    UserFactory,
    Verified,
    default_user,
    header_pairs,
    request_target,
)
from oauthguard._core.settings import (
    JWT,
    DPoP,
    Limits,
    check_resource,
    resource_identifiers,
    strings,
)
from oauthguard._core.startup import (
    keys_ready,
    require_some_keys,
    warm_key_sets,
    warn_unsafe_defaults,
)
from oauthguard._dpop.nonces import check_nonces
from oauthguard._dpop.proof import DPoPChecker, access_token_hash, check_bearer
from oauthguard._dpop.replay import check_replay_store
from oauthguard._http.cache import ExpiringCache
from oauthguard._http.paths import PathTable
from oauthguard._introspection.auto import AutoVerifier
from oauthguard._introspection.settings import Introspection
from oauthguard._introspection.verifier import IntrospectionVerifier
from oauthguard._telemetry import TELEMETRY
from oauthguard._verify.discovery import AuthorizationServers
from oauthguard._verify.jwt import JWTVerifier
from oauthguard._verify.trust import IssuerDirectory
from oauthguard._wire.config import settings_group
from oauthguard._wire.credentials import Credentials, KnownHeaders, check_token, read_credentials
from oauthguard._wire.errors import ConfigurationError, GuardError, InvalidToken
from oauthguard._wire.redaction import unexpected
from oauthguard._wire.tokens import AccessToken, ReuseLimit, TokenVerifier

logger = logging.getLogger("oauthguard")


class ResourceServer:
    """An OAuth 2 resource server: validates Bearer and DPoP-bound access tokens.

    ``resource`` is this API's identifier (RFC 8707 / RFC 9728), the audience its tokens
    carry unless ``audiences`` names others; ``resources`` are other resources served beside
    it (each needs tokens for itself on its own path). ``authorization_servers``: issuer URLs
    or ``Issuer(...)`` objects. ``jwt`` (``JWT``), ``dpop`` (``DPoP`` or its mode),
    ``introspection`` (``Introspection``, for opaque tokens) and ``limits`` (``Limits``) are
    the groups of settings; ``verifier`` replaces token verification altogether.
    ``http_client`` and ``clock`` are injected collaborators (the server closes only a client
    it created). ``user_factory(token, raw)`` builds the user of each verified token, once.

    ``async with ResourceServer(...) as server:`` fetches the keys on entry and closes the
    HTTP client on exit.
    """

    def __init__(
        self,
        *,
        resource: str,
        authorization_servers: str | Issuer | Iterable[IssuerEntry],
        audiences: str | Iterable[str] | None = None,
        resources: str | Iterable[str] = (),
        jwt: JWT | None = None,
        dpop: DPoP | str | None = None,
        introspection: Introspection | None = None,
        verifier: TokenVerifier | None = None,
        limits: Limits | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
        user_factory: UserFactory | None = None,
    ) -> None:
        TELEMETRY.refresh()
        self.resource = check_resource(resource)
        self.issuers = issuers(authorization_servers)
        self.jwt = settings_group("jwt", jwt, JWT)
        self.dpop = DPoP.of(dpop)
        self.limits = settings_group("limits", limits, Limits)
        if user_factory is not None and not callable(user_factory):
            raise ConfigurationError(
                "ResourceServer(user_factory=...) must be a callable (token, raw) -> user, "
                "or None for the default Starlette user"
            )
        self.user_factory: UserFactory = user_factory or default_user
        self._set_resources(resources, audiences)
        self.clock: Callable[[], float] = clock or time.time
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=self.limits.http_timeout)
        self.servers = AuthorizationServers(
            self.http,
            self.clock,
            timeout=self.limits.http_timeout,
            retry_after=self.jwt.keys_refresh_cooldown,
        )
        self.tokens: ExpiringCache[Verified] = ExpiringCache(self.limits.token_cache_size)
        self.default_rules = default_rules(self.jwt, self.audiences)
        directory = DirectoryBuilder(
            self.jwt, self.limits, self.http, self.clock, self.servers, self.tokens.clear
        )
        #: The trusted issuers by ``iss``, each with its keys and the rules of its tokens.
        self.trusted: IssuerDirectory = directory.build(self.issuers, self.default_rules)
        #: The key sets made up front (a tenant's is made when its first token comes).
        self.key_sets = directory.key_sets
        self.introspection = _check_verification(verifier, introspection, self.issuers)
        self._custom_verifier = verifier is not None
        self._introspection: IntrospectionVerifier | None = None
        self._warned = False
        self.verifier: TokenVerifier = verifier or self._build_verifier()
        self._reuse_limit = self.verifier if isinstance(self.verifier, ReuseLimit) else None
        self.dpop_checker = self._build_dpop_checker()
        self._bearer_allowed = self.dpop.mode != "required"
        #: The ``Bearer`` headers sent again for verified tokens, read at once.
        self.known_headers = KnownHeaders(self.limits.token_cache_size, self.tokens.keys)
        #: ``credentials(headers, query_string)``: the request's credentials (RFC 6750 §2,
        #: RFC 9449 §7) or a ``GuardError``.
        self.credentials: Callable[[list[tuple[bytes, bytes]], bytes], Credentials] = (
            functools.partial(
                read_credentials,
                self.limits.max_token_bytes,
                self.known_headers,
                self.dpop.mode != "disabled",  # DPoP headers mean nothing otherwise
            )
        )

    def _set_resources(
        self, resources: str | Iterable[str], audiences: str | Iterable[str] | None
    ) -> None:
        """The resources served, and the audiences their tokens may name."""
        self.resources = resource_identifiers(self.resource, strings("resources", resources))
        warn_insecure(self.issuers, self.resources)
        own = frozenset(strings("audiences", audiences) or (self.resource,))
        #: Every audience a token of a plain issuer may have: the default resource's
        #: (``audiences`` replace its identifier) and every other resource's.
        self.audiences = own.union(self.resources[1:])
        #: The default resource's audiences: its own, and those an ``Issuer(audiences=)``
        #: names it by (a token of one issuer never passes with another issuer's).
        self.resource_audiences = own.union(*(issuer.audiences for issuer in self.issuers))
        self._by_path: PathTable[str] = PathTable(
            [(None, urlsplit(other).path or "/", other) for other in self.resources[1:]],
            "resources",
        )

    def _build_verifier(self) -> TokenVerifier:
        """JWTs, introspection, or both (``Introspection(token_format="auto")``)."""
        jwt = JWTVerifier(
            self.trusted,
            algorithms=self.jwt.algorithms,
            leeway=self.jwt.leeway,
            strict_typ=self.jwt.strict_typ,
            clock=self.clock,
        )
        settings = self.introspection
        if settings is None:
            return jwt
        introspection = self._introspection = IntrospectionVerifier(
            settings,
            http_client=self.http,
            servers=self.servers,
            key_sets=self.key_sets,
            trusted=self.trusted,
            default_rules=self.default_rules,
            algorithms=self.jwt.algorithms,
            leeway=self.jwt.leeway,
            clock=self.clock,
        )
        return (
            introspection if settings.token_format == "opaque" else AutoVerifier(jwt, introspection)
        )

    def _build_dpop_checker(self) -> DPoPChecker:
        dpop = self.dpop
        return DPoPChecker(
            mode=dpop.mode,
            algorithms=dpop.algorithms,
            max_age=dpop.max_age,
            leeway=self.jwt.leeway,
            nonces=check_nonces(dpop.nonces),
            replay_store=check_replay_store(dpop.replay_store, self.clock),
            clock=self.clock,
        )

    # -- the checks ------------------------------------------------------------------------
    async def authenticate(self, method: str, url: str, headers: Headers) -> AccessToken:
        """The validated token of a request to ``url``, or the ``GuardError`` to answer.

        ``headers`` are the request's (``Authorization``, ``DPoP``); ``url`` its absolute
        target URI, which a DPoP proof's ``htu`` must name (behind a proxy, the URL the
        client used) and whose path picks the resource whose audience the token needs.
        Build it from a host you trust (a checked ``Host``, or your public origin): a
        ``Host`` of ``api.test/orders?`` would make ``/orders`` the path of any request.
        """
        return (await self.check_request(method, url, headers)).token

    async def check_request(self, method: str, url: str, headers: Headers) -> Authenticated:
        """``authenticate``, with the user built for the token and a DPoP nonce to send."""
        path, query, htu = request_target(url, self.dpop.public_origin)
        credentials = self.credentials(header_pairs(headers), query)
        try:
            entry, nonce = await self.check(credentials, method, htu)
        except GuardError:
            raise
        except Exception as exc:  # fail closed: a bug never lets a request through
            raise unexpected(exc, path, credentials) from exc
        if len(self.resources) > 1:
            other = self._by_path.match(None, path)
            audiences = self.resource_audiences if other is None else frozenset({other})
            check_resource_audience(entry.token, audiences, other or self.resource)
        return Authenticated(entry.token, entry.user, nonce)

    def cached_bearer(self, credentials: Credentials) -> Verified | None:
        """The cache's entry for a Bearer request whose token it holds, checked without a
        coroutine (the hot path); None when ``check`` must run."""
        if credentials.dpop_proofs or not self._bearer_allowed or credentials.scheme != "Bearer":
            return None
        found = self.tokens.lookup(credentials.token)
        if found is None or found[1] <= self.clock():
            return None  # not cached, or expired: check() verifies it (and drops the entry)
        entry = found[0]
        if not entry.bearer:
            check_bearer(entry.token)  # RFC 9449 §7.2: raises for this token
        return entry

    async def check(
        self, credentials: Credentials, method: str, htu: str
    ) -> tuple[Verified, str | None]:
        """The cache entry of ``credentials``' token and a DPoP nonce to send; every request,
        cached token or not, goes through the proof and binding checks (RFC 9449 §7)."""
        proof = self.dpop_checker.proof_of(credentials)
        now = self.clock()
        entry = self.tokens.get(credentials.token, now) or await self._verify_and_keep(
            credentials.token, now
        )
        if proof is None:
            if not entry.bearer:
                check_bearer(entry.token)  # RFC 9449 §7.2: raises for this token
            return entry, None
        ath = entry.ath or access_token_hash(credentials.token)
        return entry, await self.dpop_checker.check(method, htu, proof, entry.token, ath)

    async def verify(self, token: str) -> AccessToken:
        """The validated token (no proof checks), from the cache when it is there.

        ``token`` gets the checks a header's token gets before any verifier sees it: not a
        ``b64token`` within ``Limits(max_token_bytes=)``, it is refused (``InvalidToken``).
        An unexpected failure is ``TemporarilyUnavailable``, logged with the token redacted:
        never a pass, never another exception.
        """
        now = self.clock()
        entry = self.tokens.get(token, now) if isinstance(token, str) else None
        if entry is not None:
            return entry.token
        check_token(token, self.limits.max_token_bytes)
        try:
            return (await self._verify_and_keep(token, now)).token
        except GuardError:
            raise
        except Exception as exc:  # fail closed: a bug never lets a token through
            raise unexpected(exc, "(ResourceServer.verify)", Credentials("Bearer", token)) from exc

    async def _verify_and_keep(self, token: str, now: float) -> Verified:
        """Verify a token the cache does not hold, build its user, and keep both while
        the token is valid (and the verifier allows reuse)."""
        metrics = TELEMETRY.metrics
        if metrics is None:
            verified = await self.verifier.verify(token)
        else:
            verified = await metrics.timed_verification(self.verifier.verify, token)
        if verified.raw != token:  # a verifier of the app's own: the string it verified
            verified = dataclasses.replace(verified, raw=token)
        ath = None
        if verified.jkt is not None:  # RFC 9449 §6: usable only with proofs of its key
            verified = dataclasses.replace(verified, scheme="DPoP")
            ath = access_token_hash(token)
        entry = Verified(verified, self.user_factory(verified, token), ath)
        until = math.inf if verified.expires_at is None else verified.expires_at + self.jwt.leeway
        if self._reuse_limit is not None:
            until = min(until, self._reuse_limit.reuse_until(token, verified, now))
        if until != math.inf:
            self.tokens.put(token, entry, until, now)
        return entry

    # -- life cycle ------------------------------------------------------------------------
    async def warm(self) -> None:
        """Fetch every issuer's keys now, for at most twice ``Limits.http_timeout`` (nothing
        with a custom ``verifier``). Failures are logged: requests then get 503 until the
        keys arrive, or, with ``JWT(require_keys_at_startup=True)``, ``StartupError`` is
        raised when no issuer's keys came. Warns, once, of a default that protects one
        process only (DPoP proofs recorded in memory)."""
        if not self._warned:
            self._warned = True
            warn_unsafe_defaults(self.dpop)
        TELEMETRY.refresh()  # an SDK configured since the server was built
        if self._custom_verifier:
            return
        key_sets = list(self.key_sets.values())
        fetched = await warm_key_sets(key_sets, 2 * self.limits.http_timeout)
        if self.jwt.require_keys_at_startup:
            require_some_keys(key_sets, fetched)

    async def ready(self) -> bool:
        """Whether this server can check tokens now, for a readiness check: every issuer's
        keys in hand (those missing are fetched first, for at most ``Limits.http_timeout``)
        and the introspection endpoint, if any, not paused after failures. Always True with
        a custom ``verifier``."""
        if self._custom_verifier:
            return True
        if self._introspection is not None and self._introspection.paused():
            return False
        key_sets = list(self.key_sets.values())
        return await keys_ready(key_sets, self.clock, self.limits.http_timeout)

    async def aclose(self) -> None:
        """Close the HTTP client, if this server created it."""
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> ResourceServer:
        try:
            await self.warm()
        except BaseException:
            await self.aclose()  # no __aexit__ follows a failed __aenter__
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_resource_audience(token: AccessToken, audiences: frozenset[str], resource: str) -> None:
    """RFC 8707 §2 / RFC 9068 §4: the token is meant for the resource of this path."""
    if audiences.isdisjoint(token.audience):
        raise InvalidToken(f"the token is not meant for {resource} (aud)")


def _check_verification(
    verifier: object, settings: object, issuers: tuple[Issuer, ...]
) -> Introspection | None:
    """``introspection``, checked: never beside a verifier of the app's own, and with its
    endpoint where none can be discovered."""
    if settings is None:
        return None
    if verifier is not None:
        raise ConfigurationError(
            "ResourceServer: give either verifier= or introspection=, not both: a verifier "
            "of your own replaces the JWT and introspection checks"
        )
    introspection: Introspection = settings_group("introspection", settings, Introspection)
    if introspection.endpoint is None and (len(issuers) != 1 or issuers[0].is_template):
        raise ConfigurationError(
            "Introspection(endpoint=...) must be given with several authorization servers "
            "or tenants: the endpoint is only discovered from the metadata of a single one"
        )
    return introspection
