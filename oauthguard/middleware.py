"""``OAuthGuard``: the pure-ASGI middleware. Wiring only; each check lives in its module."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio
import httpx

from oauthguard._asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    deny_websocket,
    send_response,
)
from oauthguard._cache import ExpiringCache
from oauthguard._endpoints import answer_refusals
from oauthguard._paths import method_problem, path_problem, routed_path
from oauthguard._redaction import token_digest, unexpected
from oauthguard._resources import served_resources
from oauthguard.challenge import Challenger
from oauthguard.config import DEFAULT_ALGORITHMS, GuardConfig, build_config
from oauthguard.credentials import Credentials, extract
from oauthguard.discovery import AuthorizationServers
from oauthguard.dpop import DEFAULT_DPOP_ALGORITHMS, DPoPChecker, check_bearer
from oauthguard.errors import ConfigurationError, GuardError, InvalidRequest
from oauthguard.introspection import AutoVerifier, Introspection, IntrospectionVerifier
from oauthguard.jwt import JWTVerifier
from oauthguard.keys import KeySet
from oauthguard.metadata import MetadataEndpoint, build_document, metadata_path, metadata_url
from oauthguard.nonces import DPoPNonces, check_nonces, sending_nonce
from oauthguard.policy import RULE, Requirement
from oauthguard.replay import ReplayStore, check_replay_store
from oauthguard.tokens import (
    AccessToken,
    AnonymousUser,
    AuthenticatedUser,
    ReuseLimit,
    TokenVerifier,
)

logger = logging.getLogger("oauthguard")

#: Builds ``request.user`` from a validated token and the token string.
UserFactory = Callable[[AccessToken, str], Any]
#: What the cache of verified tokens holds for a token: the token and its user.
Authenticated = tuple[AccessToken, Any]


def default_user(token: AccessToken, raw: str) -> AuthenticatedUser:
    """``request.user`` unless ``user_factory`` says otherwise."""
    return AuthenticatedUser(token)


class OAuthGuard:
    """Makes an ASGI app an OAuth 2 resource server.

    Every HTTP request and WebSocket connection outside ``public_paths`` needs a valid
    access token; refused ones get the RFC 6750 / RFC 9449 challenge. The RFC 9728
    protected-resource metadata is served at its well-known URL. ``request.auth`` is the
    validated ``AccessToken`` and ``request.user`` a Starlette-compatible user. A request
    whose path is not in normal form (dot or empty segments, an encoded ``/``, ...) is
    refused with 400 before anything is matched: the app could read it as another path.

    Per-route policy: ``rules`` maps path prefixes (or ``(method, path)``) to
    ``require(...)``; ``resources`` names the other resources the app serves (each gets its
    own metadata document, and its paths need tokens meant for it); ``scope_implies`` lets
    broader scopes satisfy narrower ones.

    ``user_factory(token, raw)`` builds ``request.user`` (default: ``AuthenticatedUser``);
    it is called once per token, not per request, since the user is cached with the token.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resource: str,
        authorization_servers: str | Iterable[str],
        audiences: str | Iterable[str] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30,
        jwks_uri: str | None = None,
        jwks_cache_ttl: float = 600,
        jwks_refresh_cooldown: float = 30,
        jwks_max_stale: float = 86400,
        strict_typ: bool = False,
        scopes_claim: str | Iterable[str] = ("scope", "scp"),
        public_paths: Iterable[str] = (),
        scopes_supported: Iterable[str] | None = None,
        resource_name: str | None = None,
        resource_documentation: str | None = None,
        max_token_bytes: int = 16 * 1024,
        token_cache_size: int = 10_000,
        realm: str | None = None,
        dpop: str = "allowed",
        dpop_algorithms: Iterable[str] = DEFAULT_DPOP_ALGORITHMS,
        dpop_max_age: float = 60,
        dpop_nonce: DPoPNonces | bool = False,
        replay_store: ReplayStore | None = None,
        trusted_proxies: str | Iterable[str] = (),
        public_origin: str | None = None,
        http_timeout: float = 5.0,
        verifier: TokenVerifier | None = None,
        introspection: Introspection | None = None,
        token_format: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
        rules: Mapping[str | tuple[str, str], Requirement] | None = None,
        resources: str | Iterable[str] = (),
        scope_implies: Mapping[str, Iterable[str]] | None = None,
        user_factory: UserFactory | None = None,
    ) -> None:
        self.app = app
        if user_factory is not None and not callable(user_factory):
            raise ConfigurationError("user_factory must be a callable (token, raw) -> user")
        self.user_factory: UserFactory = user_factory or default_user
        answer_refusals(app)
        self.config: GuardConfig = build_config(
            resource=resource,
            authorization_servers=authorization_servers,
            audiences=audiences,
            algorithms=algorithms,
            leeway=leeway,
            jwks_uri=jwks_uri,
            jwks_cache_ttl=jwks_cache_ttl,
            jwks_refresh_cooldown=jwks_refresh_cooldown,
            jwks_max_stale=jwks_max_stale,
            strict_typ=strict_typ,
            scopes_claim=scopes_claim,
            public_paths=public_paths,
            scopes_supported=scopes_supported,
            resource_name=resource_name,
            resource_documentation=resource_documentation,
            max_token_bytes=max_token_bytes,
            token_cache_size=token_cache_size,
            realm=realm,
            dpop=dpop,
            dpop_algorithms=dpop_algorithms,
            dpop_max_age=dpop_max_age,
            trusted_proxies=trusted_proxies,
            rules=rules,
            resources=resources,
            public_origin=public_origin,
            scope_implies=scope_implies,
            http_timeout=http_timeout,
            introspection=introspection,
            token_format=token_format,
        )
        config = self.config
        self.clock: Callable[[], float] = clock or time.time
        self.http = http_client or httpx.AsyncClient(timeout=config.http_timeout)
        self.servers = AuthorizationServers(
            self.http,
            self.clock,
            timeout=config.http_timeout,
            retry_after=config.jwks_refresh_cooldown,
        )
        self.tokens: ExpiringCache[Authenticated] = ExpiringCache(config.token_cache_size)
        self.key_sets = self._build_key_sets()
        if verifier is not None and config.introspection is not None:
            raise ConfigurationError("give either verifier= or introspection=, not both")
        #: Key sets warmed on startup: none when a custom ``verifier`` leaves them unused.
        self._warm_key_sets = list(self.key_sets.values()) if verifier is None else []
        self.verifier: TokenVerifier = verifier or self._build_verifier()
        self._reuse_limit = self.verifier if isinstance(self.verifier, ReuseLimit) else None
        self.dpop = self._build_dpop(dpop_nonce, replay_store)
        dpop_on = config.dpop != "disabled"
        self.challenger = Challenger(
            metadata_url(config.resource),
            realm=config.realm,
            dpop_algs=config.dpop_algorithms if dpop_on else (),
            bearer=config.dpop != "required",
        )
        self.metadata = {
            metadata_path(resource): MetadataEndpoint(self._document(resource))
            for resource in config.resources
        }
        self.rules = config.rules
        self._default, self.served = served_resources(config, self.challenger)
        self._several_resources = len(config.resources) > 1
        self._public_exact = frozenset(p for p in config.public_paths if not p.endswith("*"))
        self._public_prefixes = tuple(p[:-1] for p in config.public_paths if p.endswith("*"))

    def _build_key_sets(self) -> dict[str, KeySet]:
        """One ``KeySet`` per issuer, sharing the client and the discovered metadata; a key
        leaving a JWKS empties the cache of verified tokens."""
        config = self.config
        return {
            issuer: KeySet(
                issuer,
                self.http,
                self.clock,
                self.servers,
                jwks_uri=config.jwks_uri,
                cache_ttl=config.jwks_cache_ttl,
                refresh_cooldown=config.jwks_refresh_cooldown,
                max_stale=config.jwks_max_stale,
                timeout=config.http_timeout,
                on_keys_removed=self.tokens.clear,
            )
            for issuer in config.authorization_servers
        }

    def _build_verifier(self) -> TokenVerifier:
        """The verifier for ``token_format``: JWTs, introspection, or both (``auto``)."""
        config = self.config
        jwt = JWTVerifier(
            self.key_sets,
            audiences=config.audiences,
            algorithms=config.algorithms,
            leeway=config.leeway,
            strict_typ=config.strict_typ,
            scopes_claim=config.scopes_claim,
            clock=self.clock,
        )
        if config.introspection is None:
            return jwt
        introspection = IntrospectionVerifier(
            config.introspection,
            http_client=self.http,
            servers=self.servers,
            key_sets=self.key_sets,
            audiences=config.audiences,
            algorithms=config.algorithms,
            leeway=config.leeway,
            clock=self.clock,
        )
        return (
            introspection if config.token_format == "opaque" else AutoVerifier(jwt, introspection)
        )

    def _build_dpop(self, nonces: object, replay_store: object) -> DPoPChecker:
        """The RFC 9449 checks, with the nonces and replay store as configured."""
        config = self.config
        return DPoPChecker(
            mode=config.dpop,
            algorithms=config.dpop_algorithms,
            max_age=config.dpop_max_age,
            leeway=config.leeway,
            nonces=check_nonces(nonces),
            replay_store=check_replay_store(replay_store, self.clock),
            trusted_proxies=config.trusted_proxies,
            public_origin=config.public_origin,
            clock=self.clock,
        )

    def _document(self, resource: str) -> dict[str, Any]:
        config = self.config
        return build_document(
            resource,
            {
                "authorization_servers": config.authorization_servers,
                "scopes_supported": config.scopes_supported,
                "bearer_methods_supported": ["header"],
                "resource_name": config.resource_name,
                "resource_documentation": config.resource_documentation,
                # RFC 9728 §2 (fields defined by RFC 9449).
                "dpop_signing_alg_values_supported": config.dpop_algorithms
                if config.dpop != "disabled"
                else None,
                "dpop_bound_access_tokens_required": config.dpop == "required",
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root_path = scope.get("root_path")
        # Before anything is matched: a path (or a method, where rules name methods) that the
        # app may read otherwise than the guard would match it is refused (RFC 6750 §3.1).
        problem = path_problem(path, scope.get("raw_path"), root_path)
        if problem is None and self.rules.by_method:
            problem = method_problem(scope.get("method"))
        if problem is not None:
            await self.refuse(scope, receive, send, InvalidRequest(problem), None)
            return
        endpoint = self.metadata.get(path)
        if endpoint is not None and kind == "http":
            await endpoint(scope, receive, send)
            return
        routed = routed_path(path, root_path) if root_path else path
        rule = self.rule_for(scope.get("method"), path, routed) if self.rules else None
        # What require(...) inside the app reads: this guard, and the path rule it applied.
        scope["oauthguard"], scope[RULE] = self, rule
        if self.is_public(routed):
            scope["auth"], scope["user"] = None, AnonymousUser()
            await self.call_app(scope, receive, send)
            return
        credentials: Credentials | None = None
        try:
            credentials = extract(
                scope["headers"],
                scope.get("query_string", b""),
                self.config.max_token_bytes,
                self.tokens,
            )
            proof = self.dpop.proof_of(credentials)
            # A cache hit is answered here, without a coroutine for the verifier.
            now = self.clock()
            verified, user = self.tokens.get(
                credentials.token, now
            ) or await self._authenticate_new(credentials.token, now)
            # Every request, cached token or not, goes through the proof and binding checks.
            if proof is None:
                check_bearer(verified)  # the checker's Bearer case, without a coroutine
                token, nonce = verified, None
            else:
                token, nonce = await self.dpop.check(scope, credentials.token, proof, verified)
                user = self.user_factory(token, credentials.token)  # of the DPoP-bound token
            self.check_route(token, path, rule)
        except GuardError as error:
            await self.refuse(
                scope,
                receive,
                send,
                error,
                credentials,
                rule.challenge_scope if rule is not None else None,
            )
            return
        except Exception as exc:
            # Fail closed: a bug or an unexpected failure never lets a request through.
            await self.refuse(scope, receive, send, unexpected(exc, path, credentials), credentials)
            return
        scope["auth"], scope["user"] = token, user
        if nonce is not None and kind == "http":
            send = sending_nonce(send, nonce)
        await self.call_app(scope, receive, send)

    def rule_for(self, method: str | None, path: str, routed: str) -> Requirement | None:
        """The path rule of a request. Rules name the paths the app routes (``routed``,
        without the ``root_path``), so the rule for the routed path wins; a rule for the full
        path (``protect()`` makes one from the resource URL) applies where none covers it."""
        if routed != path:
            rule = self.rules.match(method, routed)
            if rule is not None:
                return rule
        return self.rules.match(method, path)

    def is_public(self, path: str) -> bool:
        """``path`` (the routed path, without the ``root_path``, in normal form) is in
        ``public_paths``."""
        return path in self._public_exact or path.startswith(self._public_prefixes)

    def check_route(self, token: AccessToken, path: str, rule: Requirement | None) -> None:
        """The audience of the path's resource (with several), then the path rule."""
        if self._several_resources:
            (self.served.match(None, path) or self._default).check(token)
        if rule is not None:
            rule.check(token, now=self.clock(), implies=self.config.scope_implies)

    async def call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app. A ``GuardError`` it raises before responding (a FastAPI
        ``Depends(require(...))``, or one raised by hand) is answered like the guard's own."""
        started = False

        def send_and_track(message: Message) -> Awaitable[None]:
            nonlocal started
            started = True
            return send(message)  # awaited by the app: no coroutine of our own per message

        try:
            await self.app(scope, receive, send_and_track)
        except GuardError as error:
            if started:
                raise
            await self.refuse(scope, receive, send, error, None)

    async def verify(self, token: str) -> AccessToken:
        """The validated token, from the cache of verified tokens when it is there."""
        now = self.clock()
        return (self.tokens.get(token, now) or await self._authenticate_new(token, now))[0]

    async def _authenticate_new(self, token: str, now: float) -> Authenticated:
        """Verify a token the cache does not hold, build its user, and keep both while
        the token is valid (and the verifier allows reuse)."""
        verified = await self.verifier.verify(token)
        entry = (verified, self.user_factory(verified, token))
        until = (
            math.inf if verified.expires_at is None else verified.expires_at + self.config.leeway
        )
        if self._reuse_limit is not None:
            until = min(until, self._reuse_limit.reuse_until(token, verified, now))
        if until != math.inf:
            self.tokens.put(token, entry, until, now)
        return entry

    async def refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        error: GuardError,
        credentials: Credentials | None,
        challenge_scope: str | None = None,
    ) -> None:
        """Answer with the challenge for ``error`` (an HTTP response or a WebSocket denial).

        Without ``credentials`` (a refusal by ``require(...)``) the error goes in the
        challenge of the scheme the validated token came with.
        """
        token = scope.get("auth")
        scheme = error.scheme or (
            credentials.scheme
            if credentials is not None
            else (token.scheme if isinstance(token, AccessToken) else None)
        )
        if credentials is not None:
            # %r: the path is the client's, and must not forge log lines.
            logger.info(
                "refused %s %r: %s (token sha256:%s)",
                scope.get("method", "WS"),
                scope["path"],
                error.description,
                token_digest(credentials.token),
            )
        else:
            logger.info(
                "refused %s %r: %s",
                scope.get("method", "WS"),
                scope["path"],
                error.description or "no credentials",
            )
        served = self.served.match(None, scope["path"]) or self._default
        status, headers, body = served.challenger.response(error, scheme, challenge_scope)
        if scope["type"] == "websocket":
            await deny_websocket(scope, receive, send, status, headers, body)
        else:
            await send_response(send, status, headers, body)

    async def warm(self) -> None:
        """Fetch every issuer's keys now, for at most twice ``http_timeout`` (nothing with a
        custom ``verifier``, which does not use them).

        Failures are logged, never raised: the guard then answers 503 until keys arrive.
        """

        async def warm_one(key_set: KeySet) -> None:
            try:
                await key_set.warm()
            except Exception as exc:
                logger.warning("could not warm the keys of %s: %s", key_set.issuer, exc)

        with anyio.move_on_after(2 * self.config.http_timeout):
            async with anyio.create_task_group() as tasks:
                for key_set in self._warm_key_sets:
                    tasks.start_soon(warm_one, key_set)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_and_warm() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Bounded, and never failing: a server is ready with its keys in hand.
                await self.warm()
            return message

        await self.app(scope, receive_and_warm, send)
